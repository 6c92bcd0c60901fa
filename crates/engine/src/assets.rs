//! The eight asset classes of the model and the capital-market assumptions
//! (drift, volatility, correlation) that drive them.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Number of asset classes. The index order of [`AssetClass::ALL`] is part of the model.
pub const K: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssetClass {
    UsEquity,
    IntlEquity,
    EmEquity,
    GovtBonds,
    CorpBonds,
    RealEstate,
    Commodities,
    Cash,
}

impl AssetClass {
    pub const ALL: [AssetClass; K] = [
        AssetClass::UsEquity,
        AssetClass::IntlEquity,
        AssetClass::EmEquity,
        AssetClass::GovtBonds,
        AssetClass::CorpBonds,
        AssetClass::RealEstate,
        AssetClass::Commodities,
        AssetClass::Cash,
    ];

    /// Position of the class in every per-class array of the model.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The key used on the wire (`asset_class` of a holding).
    pub fn key(self) -> &'static str {
        match self {
            AssetClass::UsEquity => "us_equity",
            AssetClass::IntlEquity => "intl_equity",
            AssetClass::EmEquity => "em_equity",
            AssetClass::GovtBonds => "govt_bonds",
            AssetClass::CorpBonds => "corp_bonds",
            AssetClass::RealEstate => "real_estate",
            AssetClass::Commodities => "commodities",
            AssetClass::Cash => "cash",
        }
    }

    pub fn from_key(key: &str) -> Option<AssetClass> {
        AssetClass::ALL.into_iter().find(|class| class.key() == key)
    }

    pub fn is_equity(self) -> bool {
        matches!(
            self,
            AssetClass::UsEquity | AssetClass::IntlEquity | AssetClass::EmEquity
        )
    }

    pub fn is_bond(self) -> bool {
        matches!(self, AssetClass::GovtBonds | AssetClass::CorpBonds)
    }
}

/// The benchmark portfolio of the model: initial market value per class.
pub const BENCHMARK_PORTFOLIO: [f64; K] = [
    40000.0, 10000.0, 5000.0, 15000.0, 10000.0, 10000.0, 2000.0, 8000.0,
];

/// Capital-market assumptions: annual continuously compounded drift `mu`,
/// annual volatility `sigma` and the correlation matrix of the classes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assumptions {
    pub mu: [f64; K],
    pub sigma: [f64; K],
    pub correlation: [[f64; K]; K],
}

impl Default for Assumptions {
    fn default() -> Self {
        Assumptions {
            mu: [0.070, 0.065, 0.080, 0.030, 0.040, 0.060, 0.035, 0.020],
            sigma: [0.16, 0.17, 0.22, 0.05, 0.07, 0.18, 0.20, 0.01],
            correlation: [
                [1.00, 0.80, 0.70, -0.20, 0.20, 0.65, 0.30, 0.00],
                [0.80, 1.00, 0.80, -0.15, 0.25, 0.60, 0.35, 0.00],
                [0.70, 0.80, 1.00, -0.10, 0.30, 0.55, 0.45, 0.00],
                [-0.20, -0.15, -0.10, 1.00, 0.70, 0.10, -0.10, 0.20],
                [0.20, 0.25, 0.30, 0.70, 1.00, 0.35, 0.10, 0.10],
                [0.65, 0.60, 0.55, 0.10, 0.35, 1.00, 0.25, 0.00],
                [0.30, 0.35, 0.45, -0.10, 0.10, 0.25, 1.00, 0.05],
                [0.00, 0.00, 0.00, 0.20, 0.10, 0.00, 0.05, 1.00],
            ],
        }
    }
}

/// Smallest Cholesky pivot of the correlation matrix accepted as positive definite.
const MIN_PIVOT: f64 = 1e-10;

impl Assumptions {
    /// Checks every rule and returns the lower Cholesky factor of the annual
    /// covariance `S = diag(sigma) R diag(sigma)`.
    pub fn validate(&self) -> Result<[[f64; K]; K]> {
        for (k, class) in AssetClass::ALL.iter().enumerate() {
            let mu = self.mu[k];
            if !mu.is_finite() || !(-1.0..=1.0).contains(&mu) {
                return Err(Error::invalid(
                    format!("mu.{}", class.key()),
                    format!("must be a finite annual drift between -1 and 1, got {mu}"),
                ));
            }
            let sigma = self.sigma[k];
            if !sigma.is_finite() || !(0.0..=2.0).contains(&sigma) {
                return Err(Error::invalid(
                    format!("sigma.{}", class.key()),
                    format!("must be a finite annual volatility between 0 and 2, got {sigma}"),
                ));
            }
        }
        self.validate_correlation()?;
        let mut covariance = [[0.0; K]; K];
        for i in 0..K {
            for j in 0..K {
                covariance[i][j] = (self.sigma[i] * self.sigma[j]) * self.correlation[i][j];
            }
        }
        Ok(cholesky(&covariance))
    }

    fn validate_correlation(&self) -> Result<()> {
        let r = &self.correlation;
        for i in 0..K {
            for j in 0..K {
                let field = || format!("correlation[{i}][{j}]");
                let value = r[i][j];
                if !value.is_finite() || !(-1.0..=1.0).contains(&value) {
                    return Err(Error::invalid(
                        field(),
                        format!("must be a finite number between -1 and 1, got {value}"),
                    ));
                }
                if i == j && value != 1.0 {
                    return Err(Error::invalid(
                        field(),
                        format!("the diagonal of a correlation matrix must be 1, got {value}"),
                    ));
                }
                if (value - r[j][i]).abs() > 1e-12 {
                    return Err(Error::invalid(
                        field(),
                        format!(
                            "the matrix must be symmetric, but it is {value} while correlation[{j}][{i}] is {}",
                            r[j][i]
                        ),
                    ));
                }
            }
        }
        let factor = cholesky(r);
        if let Some(k) = (0..K).find(|&k| factor[k][k].is_nan() || factor[k][k] < MIN_PIVOT) {
            return Err(Error::invalid(
                "correlation",
                format!(
                    "must be positive definite, but the Cholesky pivot of row {k} ({}) is not positive; \
                     make sure no class is a linear combination of the others",
                    AssetClass::ALL[k].key()
                ),
            ));
        }
        Ok(())
    }
}

/// Lower Cholesky factor by the Cholesky–Banachiewicz algorithm (row by row), as
/// the model specifies. A zero pivot (a class with zero volatility has a zero row
/// and column) yields a zero column, which is the valid factor of such a
/// positive semi-definite matrix. A negative pivot yields NaN, which callers reject.
pub fn cholesky(matrix: &[[f64; K]; K]) -> [[f64; K]; K] {
    let mut factor = [[0.0; K]; K];
    for i in 0..K {
        for j in 0..=i {
            // Subtracting term by term (not subtracting a sum) is the order
            // that reproduces the model's printed factor to the last bit.
            let mut remainder = matrix[i][j];
            for p in 0..j {
                remainder -= factor[i][p] * factor[j][p];
            }
            factor[i][j] = if i == j {
                remainder.sqrt()
            } else if factor[j][j] == 0.0 {
                0.0
            } else {
                remainder / factor[j][j]
            };
        }
    }
    factor
}

#[cfg(test)]
mod tests {
    use super::*;

    /// MODEL.md section 2, printed as shortest round-trip doubles.
    const REFERENCE_FACTOR: [&[f64]; K] = [
        &[0.16],
        &[0.136, 0.10200000000000002],
        &[0.154, 0.088, 0.13015375522819153],
        &[
            -0.01,
            0.0008333333333333332,
            0.0028171808490950545,
            0.04890162622673246,
        ],
        &[
            0.014000000000000002,
            0.0105,
            0.011832159566199239,
            0.052102902567150784,
            0.04170176907611945,
        ],
        &[
            0.117,
            0.023999999999999983,
            0.012677313820927774,
            0.04119056705694153,
            0.00536792330171606,
            0.1274708135191747,
        ],
        &[
            0.05999999999999999,
            0.03666666666666668,
            0.056343616981901136,
            -0.012050431851764819,
            0.0032659480164815837,
            0.006782313728464543,
            0.17798616035293494,
        ],
        &[
            0.0,
            0.0,
            0.0,
            0.0020449217687843317,
            -0.0008763743238256041,
            -0.0006238853812402992,
            0.0007401461412868875,
            0.009701196509951953,
        ],
    ];

    #[test]
    fn default_factor_matches_the_model_bit_for_bit() {
        let factor = Assumptions::default().validate().unwrap();
        for (i, row) in REFERENCE_FACTOR.iter().enumerate() {
            for (j, expected) in row.iter().enumerate() {
                assert_eq!(factor[i][j].to_bits(), expected.to_bits(), "L[{i}][{j}]");
            }
            for j in row.len()..K {
                assert_eq!(factor[i][j], 0.0);
            }
        }
    }

    #[test]
    fn rejects_a_matrix_that_is_not_positive_definite() {
        let mut assumptions = Assumptions::default();
        // Perfectly correlated US and international equity: rank-deficient.
        assumptions.correlation[0][1] = 1.0;
        assumptions.correlation[1][0] = 1.0;
        let error = assumptions.validate().unwrap_err();
        assert_eq!(error.field(), Some("correlation"));
        assert!(error.to_string().contains("positive definite"), "{error}");
    }

    #[test]
    fn rejects_negative_volatility_asymmetry_and_bad_diagonal() {
        let mut negative = Assumptions::default();
        negative.sigma[3] = -0.05;
        assert_eq!(
            negative.validate().unwrap_err().field(),
            Some("sigma.govt_bonds")
        );

        let mut asymmetric = Assumptions::default();
        asymmetric.correlation[2][5] = 0.1;
        assert_eq!(
            asymmetric.validate().unwrap_err().field(),
            Some("correlation[2][5]")
        );

        let mut diagonal = Assumptions::default();
        diagonal.correlation[4][4] = 0.9;
        assert!(
            diagonal
                .validate()
                .unwrap_err()
                .to_string()
                .contains("diagonal")
        );

        let mut nan = Assumptions::default();
        nan.mu[7] = f64::NAN;
        assert_eq!(nan.validate().unwrap_err().field(), Some("mu.cash"));
    }

    #[test]
    fn zero_volatility_gives_a_zero_column_not_nan() {
        let assumptions = Assumptions {
            sigma: [0.0; K],
            ..Assumptions::default()
        };
        let factor = assumptions.validate().unwrap();
        assert!(factor.iter().flatten().all(|&value| value == 0.0));
    }

    #[test]
    fn class_keys_round_trip() {
        for class in AssetClass::ALL {
            assert_eq!(AssetClass::from_key(class.key()), Some(class));
            assert_eq!(AssetClass::ALL[class.index()], class);
        }
        assert_eq!(AssetClass::from_key("crypto"), None);
    }
}
