//! Stage three: the reported figures, from the simulation's output.

use serde::{Deserialize, Serialize};

use crate::params::ModelInputs;
use crate::quantile::percentiles;
use crate::shocks::ShockKind;
use crate::simulate::SimulationOutput;

/// Value percentiles at one year end.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    pub p5: f64,
    pub p25: f64,
    pub p50: f64,
    pub p75: f64,
    pub p95: f64,
}

impl Percentiles {
    fn from_array([p5, p25, p50, p75, p95]: [f64; 5]) -> Self {
        Percentiles {
            p5,
            p25,
            p50,
            p75,
            p95,
        }
    }

    fn deflated(self, divisor: f64) -> Self {
        Percentiles {
            p5: self.p5 / divisor,
            p25: self.p25 / divisor,
            p50: self.p50 / divisor,
            p75: self.p75 / divisor,
            p95: self.p95 / divisor,
        }
    }
}

/// The fan chart at one year end: nominal values and the same in today's money.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct YearOutlook {
    pub year: u32,
    pub nominal: Percentiles,
    pub real: Percentiles,
}

/// The `result` object of a completed job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProjectionResult {
    /// The median final value, under the key the original clients read.
    pub projection_value: f64,
    pub median_final: f64,
    pub mean_final: f64,
    /// Initial investment plus all contributions.
    pub total_contributions: f64,
    /// Share of paths that end below the total contributions.
    pub probability_below_contributions: f64,
    /// 5th percentile of the final value.
    pub var_95_level: f64,
    /// `total_contributions - var_95_level`.
    pub var_95: f64,
    /// Mean of the worst 5% of final values.
    pub cvar_95_level: f64,
    /// `total_contributions - cvar_95_level`.
    pub cvar_95: f64,
    /// Median over paths of the maximum drawdown, as a fraction (0.25 = 25%).
    pub median_max_drawdown: f64,
    pub yearly: Vec<YearOutlook>,
    pub time_horizon_years: u32,
    pub paths: u32,
    pub seed: u64,
    pub shocks: ShockKind,
}

/// Stage three. Reorders the simulation's per-path values.
pub fn statistics(
    inputs: &ModelInputs,
    shocks: ShockKind,
    simulation: &mut SimulationOutput,
) -> ProjectionResult {
    let total_contributions = inputs.total_contributions();
    let finals = &mut simulation.final_values;
    let count = finals.len();
    let mean_final = finals.iter().sum::<f64>() / count as f64;
    let below = finals
        .iter()
        .filter(|&&value| value < total_contributions)
        .count();
    let [var_95_level, median_final] = percentiles(finals, [5.0, 50.0]);
    let tail = (count / 20).max(1);
    finals.select_nth_unstable_by(tail - 1, f64::total_cmp);
    let cvar_95_level = finals[..tail].iter().sum::<f64>() / tail as f64;
    let [median_max_drawdown] = percentiles(&mut simulation.max_drawdowns, [50.0]);
    let yearly = simulation
        .year_percentiles
        .iter()
        .zip(1u32..)
        .map(|(&values, year)| {
            let nominal = Percentiles::from_array(values);
            YearOutlook {
                year,
                nominal,
                real: nominal.deflated((1.0 + inputs.inflation).powf(f64::from(year))),
            }
        })
        .collect();
    ProjectionResult {
        projection_value: median_final,
        median_final,
        mean_final,
        total_contributions,
        probability_below_contributions: below as f64 / count as f64,
        var_95_level,
        var_95: total_contributions - var_95_level,
        cvar_95_level,
        cvar_95: total_contributions - cvar_95_level,
        median_max_drawdown,
        yearly,
        time_horizon_years: inputs.horizon_years,
        paths: inputs.paths,
        seed: inputs.seed,
        shocks,
    }
}
