//! The request for one projection and the first stage that turns it into the
//! model's inputs.

use serde::{Deserialize, Serialize};

use crate::allocation::{RiskProfile, validate_weights, weights_by_year};
use crate::assets::{AssetClass, Assumptions, K};
use crate::error::{Error, Result};

pub const MAX_HORIZON_YEARS: u32 = 50;
pub const MAX_PATHS: u32 = 1_000_000;
const MAX_CONTRIBUTION: f64 = 1e12;

/// What a client asks for. Optional fields take the model's defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProjectionParams {
    pub time_horizon_years: u32,
    pub risk_profile: RiskProfile,
    /// Number of Monte Carlo paths `N`.
    pub paths: u32,
    /// Contribution `C` added every month, pro rata to the year's target weights.
    pub monthly_contribution: f64,
    /// Annual fee `f`, charged monthly as `1 - f/12`.
    pub annual_fee: f64,
    /// Annual inflation used for the real (deflated) percentiles.
    pub inflation: f64,
    pub glide_path: bool,
    pub rebalance: bool,
    /// Seed of the random shocks; derived from the request when absent.
    pub seed: Option<u64>,
    /// Target weights by class, overriding those of the risk profile.
    pub target_weights: Option<[f64; K]>,
}

impl Default for ProjectionParams {
    fn default() -> Self {
        ProjectionParams {
            time_horizon_years: 30,
            risk_profile: RiskProfile::Balanced,
            paths: 10_000,
            monthly_contribution: 500.0,
            annual_fee: 0.005,
            inflation: 0.025,
            glide_path: true,
            rebalance: true,
            seed: None,
            target_weights: None,
        }
    }
}

/// Output of the first stage: everything the simulation needs, validated and
/// precomputed. Serialisable so that a worker can cache it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInputs {
    pub initial_values: [f64; K],
    pub horizon_years: u32,
    pub paths: u32,
    pub seed: u64,
    /// Target weights for year indices `0..=horizon_years`.
    pub weights_by_year: Vec<[f64; K]>,
    /// `L / sqrt(12)`, the monthly Cholesky factor.
    pub monthly_cholesky: [[f64; K]; K],
    /// `(mu - sigma^2 / 2) / 12` by class.
    pub monthly_drift: [f64; K],
    pub monthly_contribution: f64,
    /// `1 - f / 12`.
    pub fee_multiplier: f64,
    pub inflation: f64,
    pub rebalance: bool,
}

impl ModelInputs {
    pub fn months(&self) -> usize {
        12 * self.horizon_years as usize
    }

    /// Initial investment plus every contribution.
    pub fn total_contributions(&self) -> f64 {
        self.initial_values.iter().sum::<f64>() + self.monthly_contribution * self.months() as f64
    }
}

/// Sums holdings `(asset_class, market_value)` into initial values by class.
pub fn initial_values_by_class<'a>(
    holdings: impl IntoIterator<Item = (&'a str, f64)>,
) -> Result<[f64; K]> {
    let mut values = [0.0; K];
    for (position, (class_key, market_value)) in holdings.into_iter().enumerate() {
        let class = AssetClass::from_key(class_key).ok_or_else(|| {
            let known: Vec<&str> = AssetClass::ALL.iter().map(|class| class.key()).collect();
            Error::invalid(
                format!("assets[{position}].asset_class"),
                format!(
                    "unknown asset class {class_key:?}; use one of {}",
                    known.join(", ")
                ),
            )
        })?;
        if !market_value.is_finite() || market_value < 0.0 {
            return Err(Error::invalid(
                format!("assets[{position}].market_value"),
                format!("must be a finite, non-negative amount, got {market_value}"),
            ));
        }
        values[class.index()] += market_value;
        if !values[class.index()].is_finite() {
            return Err(Error::invalid(
                format!("assets[{position}].market_value"),
                format!(
                    "the holdings of class {class_key:?} add up to more than the largest representable amount"
                ),
            ));
        }
    }
    Ok(values)
}

/// Stage one: validates the request and derives the model inputs.
pub fn model_inputs(
    initial_values: &[f64; K],
    params: &ProjectionParams,
    assumptions: &Assumptions,
) -> Result<ModelInputs> {
    validate(initial_values, params)?;
    let factor = assumptions.validate()?;
    let base_weights = params
        .target_weights
        .unwrap_or_else(|| params.risk_profile.base_weights());
    let sqrt_12 = 12f64.sqrt();
    let monthly_cholesky = factor.map(|row| row.map(|value| value / sqrt_12));
    let monthly_drift = std::array::from_fn(|k| {
        (assumptions.mu[k] - assumptions.sigma[k] * assumptions.sigma[k] / 2.0) / 12.0
    });
    Ok(ModelInputs {
        initial_values: *initial_values,
        horizon_years: params.time_horizon_years,
        paths: params.paths,
        seed: params
            .seed
            .unwrap_or_else(|| derive_seed(initial_values, params, assumptions)),
        weights_by_year: weights_by_year(
            &base_weights,
            params.time_horizon_years,
            params.glide_path,
        ),
        monthly_cholesky,
        monthly_drift,
        monthly_contribution: params.monthly_contribution,
        fee_multiplier: 1.0 - params.annual_fee / 12.0,
        inflation: params.inflation,
        rebalance: params.rebalance,
    })
}

fn validate(initial_values: &[f64; K], params: &ProjectionParams) -> Result<()> {
    params.validate()?;
    for (class, &value) in AssetClass::ALL.iter().zip(initial_values) {
        if !value.is_finite() || value < 0.0 {
            return Err(Error::invalid(
                format!("portfolio.{}", class.key()),
                format!("must be a finite, non-negative market value, got {value}"),
            ));
        }
    }
    if initial_values.iter().sum::<f64>() <= 0.0 {
        return Err(Error::invalid(
            "portfolio",
            "has no market value: a projection needs at least one holding worth more than 0",
        ));
    }
    Ok(())
}

impl ProjectionParams {
    /// Checks every rule on the request alone (the portfolio is checked later).
    pub fn validate(&self) -> Result<()> {
        validate_params(self)?;
        if let Some(weights) = &self.target_weights {
            validate_weights("target_weights", weights)?;
        }
        Ok(())
    }
}

fn validate_params(params: &ProjectionParams) -> Result<()> {
    if !(1..=MAX_HORIZON_YEARS).contains(&params.time_horizon_years) {
        return Err(Error::invalid(
            "time_horizon_years",
            format!(
                "must be between 1 and {MAX_HORIZON_YEARS}, got {}",
                params.time_horizon_years
            ),
        ));
    }
    if !(1..=MAX_PATHS).contains(&params.paths) {
        return Err(Error::invalid(
            "paths",
            format!("must be between 1 and {MAX_PATHS}, got {}", params.paths),
        ));
    }
    let contribution = params.monthly_contribution;
    if !contribution.is_finite() || !(0.0..=MAX_CONTRIBUTION).contains(&contribution) {
        return Err(Error::invalid(
            "monthly_contribution",
            format!("must be a finite amount between 0 and {MAX_CONTRIBUTION}, got {contribution}"),
        ));
    }
    let fee = params.annual_fee;
    if !fee.is_finite() || !(0.0..1.0).contains(&fee) {
        return Err(Error::invalid(
            "annual_fee",
            format!("must be a fraction in [0, 1) such as 0.005 for 0.5%, got {fee}"),
        ));
    }
    let inflation = params.inflation;
    if !inflation.is_finite() || !(-0.5..=1.0).contains(&inflation) {
        return Err(Error::invalid(
            "inflation",
            format!("must be an annual rate between -0.5 and 1 such as 0.025, got {inflation}"),
        ));
    }
    Ok(())
}

/// A stable seed from the request, so that the same request gives the same report
/// on any machine and in any release (a fixed hash, not `std`'s randomised one).
fn derive_seed(
    initial_values: &[f64; K],
    params: &ProjectionParams,
    assumptions: &Assumptions,
) -> u64 {
    let weights = params
        .target_weights
        .unwrap_or_else(|| params.risk_profile.base_weights());
    let rates = [
        params.monthly_contribution,
        params.annual_fee,
        params.inflation,
    ];
    let words = initial_values
        .iter()
        .chain(&weights)
        .chain(&assumptions.mu)
        .chain(&assumptions.sigma)
        .chain(assumptions.correlation.iter().flatten())
        .chain(&rates)
        .map(|value| value.to_bits())
        .chain([
            u64::from(params.time_horizon_years),
            u64::from(params.paths),
            u64::from(params.glide_path) | u64::from(params.rebalance) << 1,
        ]);
    words.fold(0x5052_4f4a_4543_544f, |hash, word| {
        crate::rng::mix64(hash ^ crate::rng::mix64(word))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assets::BENCHMARK_PORTFOLIO;

    fn inputs(params: &ProjectionParams) -> Result<ModelInputs> {
        model_inputs(&BENCHMARK_PORTFOLIO, params, &Assumptions::default())
    }

    #[test]
    fn rejects_each_rule_with_the_field_named() {
        let cases: [(ProjectionParams, &str); 7] = [
            (
                ProjectionParams {
                    time_horizon_years: 0,
                    ..Default::default()
                },
                "time_horizon_years",
            ),
            (
                ProjectionParams {
                    time_horizon_years: 51,
                    ..Default::default()
                },
                "time_horizon_years",
            ),
            (
                ProjectionParams {
                    paths: 0,
                    ..Default::default()
                },
                "paths",
            ),
            (
                ProjectionParams {
                    monthly_contribution: f64::NAN,
                    ..Default::default()
                },
                "monthly_contribution",
            ),
            (
                ProjectionParams {
                    annual_fee: 1.5,
                    ..Default::default()
                },
                "annual_fee",
            ),
            (
                ProjectionParams {
                    inflation: f64::INFINITY,
                    ..Default::default()
                },
                "inflation",
            ),
            (
                ProjectionParams {
                    target_weights: Some([0.5; K]),
                    ..Default::default()
                },
                "target_weights",
            ),
        ];
        for (params, field) in cases {
            assert_eq!(
                inputs(&params).unwrap_err().field(),
                Some(field),
                "{params:?}"
            );
        }
        let empty = model_inputs(
            &[0.0; K],
            &ProjectionParams::default(),
            &Assumptions::default(),
        );
        assert_eq!(empty.unwrap_err().field(), Some("portfolio"));
    }

    #[test]
    fn derived_seed_is_stable_and_depends_on_the_request() {
        let first = inputs(&ProjectionParams::default()).unwrap().seed;
        assert_eq!(first, inputs(&ProjectionParams::default()).unwrap().seed);
        let longer = ProjectionParams {
            time_horizon_years: 31,
            ..Default::default()
        };
        assert_ne!(first, inputs(&longer).unwrap().seed);
        let pinned = ProjectionParams {
            seed: Some(7),
            ..Default::default()
        };
        assert_eq!(inputs(&pinned).unwrap().seed, 7);
    }

    #[test]
    fn sums_holdings_by_class_and_names_a_bad_one() {
        let values =
            initial_values_by_class([("cash", 10.0), ("us_equity", 5.0), ("cash", 2.5)]).unwrap();
        assert_eq!(values[7], 12.5);
        assert_eq!(values[0], 5.0);
        let error = initial_values_by_class([("cash", 1.0), ("gold", 1.0)]).unwrap_err();
        assert_eq!(error.field(), Some("assets[1].asset_class"));
        let negative = initial_values_by_class([("cash", -1.0)]).unwrap_err();
        assert_eq!(negative.field(), Some("assets[0].market_value"));
    }

    #[test]
    fn benchmark_totals() {
        let inputs = inputs(&ProjectionParams::default()).unwrap();
        assert_eq!(inputs.total_contributions(), 280000.0);
        assert_eq!(inputs.months(), 360);
        assert_eq!(inputs.weights_by_year.len(), 31);
    }
}
