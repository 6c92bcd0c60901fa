//! Target weights: the three risk profiles and the glide path that moves a
//! share of the equity weight into bonds year by year.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::assets::{AssetClass, K};
use crate::error::{Error, Result};

/// Yearly shift from equity to bonds when the glide path is on.
pub const GLIDE_STEP: f64 = 0.01;

/// Largest distance from 1 that a sum of target weights may have.
const WEIGHT_SUM_TOLERANCE: f64 = 1e-9;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RiskProfile {
    Conservative,
    Balanced,
    Aggressive,
}

impl RiskProfile {
    pub const ALL: [RiskProfile; 3] = [
        RiskProfile::Conservative,
        RiskProfile::Balanced,
        RiskProfile::Aggressive,
    ];

    pub fn name(self) -> &'static str {
        match self {
            RiskProfile::Conservative => "conservative",
            RiskProfile::Balanced => "balanced",
            RiskProfile::Aggressive => "aggressive",
        }
    }

    /// Base target weights by class (each row sums to 1).
    pub fn base_weights(self) -> [f64; K] {
        match self {
            RiskProfile::Conservative => [0.15, 0.08, 0.02, 0.35, 0.20, 0.05, 0.02, 0.13],
            RiskProfile::Balanced => [0.30, 0.15, 0.05, 0.20, 0.15, 0.07, 0.03, 0.05],
            RiskProfile::Aggressive => [0.45, 0.20, 0.10, 0.08, 0.05, 0.07, 0.03, 0.02],
        }
    }
}

impl fmt::Display for RiskProfile {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.name())
    }
}

impl FromStr for RiskProfile {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        RiskProfile::ALL
            .into_iter()
            .find(|profile| profile.name() == text)
            .ok_or_else(|| {
                Error::invalid(
                    "risk_profile",
                    format!("must be one of conservative, balanced, aggressive, got {text:?}"),
                )
            })
    }
}

/// Checks that weights are finite, within [0, 1] and sum to 1.
pub fn validate_weights(field: &str, weights: &[f64; K]) -> Result<()> {
    for (class, &weight) in AssetClass::ALL.iter().zip(weights) {
        if !weight.is_finite() || !(0.0..=1.0).contains(&weight) {
            return Err(Error::invalid(
                format!("{field}.{}", class.key()),
                format!("must be a weight between 0 and 1, got {weight}"),
            ));
        }
    }
    let sum: f64 = weights.iter().sum();
    if (sum - 1.0).abs() > WEIGHT_SUM_TOLERANCE {
        return Err(Error::invalid(
            field,
            format!("weights must sum to 1, but they sum to {sum}"),
        ));
    }
    Ok(())
}

/// Target weights for year indices `0..=horizon_years`.
///
/// The glide path moves `min(step * y, Eb)` from the equity classes (in
/// proportion to their base weights) to the bond classes (likewise). With no
/// bond weight there is nowhere to move it, so the weights stay at their base.
pub fn weights_by_year(base: &[f64; K], horizon_years: u32, glide_path: bool) -> Vec<[f64; K]> {
    let equity_base: f64 = sum_where(base, AssetClass::is_equity);
    let bond_base: f64 = sum_where(base, AssetClass::is_bond);
    let can_shift = equity_base > 0.0 && bond_base > 0.0;
    let step = if glide_path && can_shift {
        GLIDE_STEP
    } else {
        0.0
    };
    (0..=horizon_years)
        .map(|year| {
            let shift = (step * f64::from(year)).min(equity_base);
            let mut weights = *base;
            if !can_shift {
                return weights;
            }
            // The model's formula is applied even for a zero shift so that the
            // weights match it to the last bit.
            for (class, weight) in AssetClass::ALL.iter().zip(weights.iter_mut()) {
                if class.is_equity() {
                    *weight = *weight * (equity_base - shift) / equity_base;
                } else if class.is_bond() {
                    *weight += shift * *weight / bond_base;
                }
            }
            weights
        })
        .collect()
}

fn sum_where(weights: &[f64; K], keep: fn(AssetClass) -> bool) -> f64 {
    AssetClass::ALL
        .iter()
        .zip(weights)
        .filter(|(class, _)| keep(**class))
        .map(|(_, weight)| weight)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn base_weights_are_valid() {
        for profile in RiskProfile::ALL {
            validate_weights("weights", &profile.base_weights()).unwrap();
            assert_eq!(profile.name().parse::<RiskProfile>().unwrap(), profile);
        }
        let error = "reckless".parse::<RiskProfile>().unwrap_err();
        assert_eq!(error.field(), Some("risk_profile"));
    }

    #[test]
    fn balanced_glide_moves_from_50_35_to_20_65_in_30_years() {
        let weights = weights_by_year(&RiskProfile::Balanced.base_weights(), 40, true);
        let equity = |y: usize| sum_where(&weights[y], AssetClass::is_equity);
        let bonds = |y: usize| sum_where(&weights[y], AssetClass::is_bond);
        assert!((equity(0) - 0.50).abs() < 1e-15 && (bonds(0) - 0.35).abs() < 1e-15);
        assert!((equity(30) - 0.20).abs() < 1e-12 && (bonds(30) - 0.65).abs() < 1e-12);
        // The shift is proportional: US equity keeps 60% of the equity share.
        assert!((weights[30][0] / equity(30) - 0.6).abs() < 1e-12);
        // Shift is capped at the whole equity weight (after 50 years at 1%/yr).
        let long = weights_by_year(&RiskProfile::Balanced.base_weights(), 50, true);
        assert!(sum_where(&long[50], AssetClass::is_equity).abs() < 1e-15);
    }

    #[test]
    fn no_glide_keeps_the_base() {
        let base = RiskProfile::Aggressive.base_weights();
        let weights = weights_by_year(&base, 10, false);
        assert!(weights.iter().all(|w| w == &weights[0]));
        assert!(
            weights[0]
                .iter()
                .zip(&base)
                .all(|(w, b)| (w - b).abs() < 1e-16)
        );
    }

    #[test]
    fn rejects_weights_that_do_not_sum_to_one() {
        let mut weights = RiskProfile::Balanced.base_weights();
        weights[7] += 0.01;
        let error = validate_weights("target_weights", &weights).unwrap_err();
        assert_eq!(error.field(), Some("target_weights"));
        assert!(error.to_string().contains("sum to 1"), "{error}");
        weights[7] = -0.01;
        assert_eq!(
            validate_weights("target_weights", &weights)
                .unwrap_err()
                .field(),
            Some("target_weights.cash")
        );
    }

    fn any_weights() -> impl Strategy<Value = [f64; K]> {
        proptest::array::uniform8(0.0..1.0f64).prop_filter_map("positive mass", |raw| {
            let total: f64 = raw.iter().sum();
            (total > 1e-3).then(|| raw.map(|value| value / total))
        })
    }

    proptest! {
        #[test]
        fn glide_path_weights_sum_to_one_every_year(base in any_weights(), horizon in 1u32..=50) {
            for weights in weights_by_year(&base, horizon, true) {
                let sum: f64 = weights.iter().sum();
                prop_assert!((sum - 1.0).abs() < 1e-12, "sum {}", sum);
                prop_assert!(weights.iter().all(|&w| w >= 0.0));
            }
        }
    }
}
