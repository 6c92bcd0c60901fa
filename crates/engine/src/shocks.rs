//! Where the monthly standard-normal shocks come from: the seeded generator,
//! a scenario supplied by the user, or zero (the degenerate scenario).

use serde::{Deserialize, Serialize};

use crate::assets::K;
use crate::error::{Error, Result};
use crate::params::ModelInputs;

#[derive(Debug, Clone, PartialEq)]
pub enum Shocks {
    /// Drawn from the seeded generator (see [`crate::rng`]).
    Random,
    /// z = 0 everywhere: every path is the deterministic one.
    Zero,
    /// Given by the user, for stress tests and model validation.
    Scenario(Scenario),
}

/// What kind of shocks produced a result, as reported with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShockKind {
    Random,
    Zero,
    Scenario,
}

impl ShockKind {
    pub fn name(self) -> &'static str {
        match self {
            ShockKind::Random => "random",
            ShockKind::Zero => "zero",
            ShockKind::Scenario => "scenario",
        }
    }
}

impl Shocks {
    pub fn kind(&self) -> ShockKind {
        match self {
            Shocks::Random => ShockKind::Random,
            Shocks::Zero => ShockKind::Zero,
            Shocks::Scenario(_) => ShockKind::Scenario,
        }
    }

    /// Checks that the shocks fit the projection's months and paths.
    pub fn check_fits(&self, inputs: &ModelInputs) -> Result<()> {
        let Shocks::Scenario(scenario) = self else {
            return Ok(());
        };
        let (months, paths) = (inputs.months(), inputs.paths as usize);
        if scenario.months != months || scenario.paths != paths {
            return Err(Error::Scenario(format!(
                "it holds {} months x {} paths but the projection needs {months} months ({} years) x {paths} paths; \
                 set the horizon and the number of paths to match the scenario",
                scenario.months, scenario.paths, inputs.horizon_years
            )));
        }
        Ok(())
    }
}

/// Injected shocks with shape (months, paths, K): z for month m, path i and
/// class k at index `(m * paths + i) * K + k`.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    months: usize,
    paths: usize,
    values: Vec<f64>,
}

impl Scenario {
    /// Reads raw little-endian float64 values in C order.
    pub fn from_le_bytes(bytes: &[u8], months: usize, paths: usize) -> Result<Scenario> {
        let expected = months
            .checked_mul(paths)
            .and_then(|cells| cells.checked_mul(K * 8))
            .ok_or_else(|| {
                Error::Scenario(format!("{months} months x {paths} paths is too large"))
            })?;
        if bytes.len() != expected {
            return Err(Error::Scenario(format!(
                "expected {expected} bytes ({months} months x {paths} paths x {K} classes x 8-byte \
                 little-endian float64) but got {} bytes",
                bytes.len()
            )));
        }
        let values: Vec<f64> = bytes
            .chunks_exact(8)
            .map(|word| f64::from_le_bytes(word.try_into().expect("chunks of 8 bytes")))
            .collect();
        if let Some(index) = values.iter().position(|value| !value.is_finite()) {
            let (cell, class) = (index / K, index % K);
            return Err(Error::Scenario(format!(
                "shock for month {}, path {}, class {class} is not a finite number",
                cell / paths,
                cell % paths
            )));
        }
        Ok(Scenario {
            months,
            paths,
            values,
        })
    }

    pub fn months(&self) -> usize {
        self.months
    }

    pub fn paths(&self) -> usize {
        self.paths
    }

    /// The K shocks of one path in one month.
    #[inline]
    pub fn shocks(&self, month: usize, path: usize) -> &[f64] {
        let start = (month * self.paths + path) * K;
        &self.values[start..start + K]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(values: &[f64]) -> Vec<u8> {
        values
            .iter()
            .flat_map(|value| value.to_le_bytes())
            .collect()
    }

    #[test]
    fn reads_c_order() {
        let values: Vec<f64> = (0..2 * 3 * K).map(|index| index as f64).collect();
        let scenario = Scenario::from_le_bytes(&bytes(&values), 2, 3).unwrap();
        assert_eq!(scenario.shocks(1, 2)[5], ((3 + 2) * K + 5) as f64);
    }

    #[test]
    fn rejects_wrong_size_and_non_finite_values() {
        let error = Scenario::from_le_bytes(&[0; 64], 2, 3).unwrap_err();
        assert!(error.to_string().contains("expected 384 bytes"), "{error}");
        let mut values = vec![0.0; 2 * 3 * K];
        values[(3 + 1) * K + 2] = f64::NAN;
        let error = Scenario::from_le_bytes(&bytes(&values), 2, 3).unwrap_err();
        assert!(
            error.to_string().contains("month 1, path 1, class 2"),
            "{error}"
        );
    }
}
