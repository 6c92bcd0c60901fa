//! Stage two: the Monte Carlo simulation.
//!
//! Paths are advanced in blocks of [`BLOCK_PATHS`] held as structure-of-arrays,
//! one year at a time for every block (in parallel), so that the year-end
//! percentiles are taken across all paths and then forgotten: memory grows with
//! paths x classes, never with the horizon.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::assets::K;
use crate::error::{Error, Result};
use crate::params::ModelInputs;
use crate::quantile::{REPORTED_PERCENTILES, percentiles};
use crate::rng::{LANES, LaneRng};
use crate::shocks::{Scenario, Shocks};
use crate::vmath;

/// Paths per block: a layout constant of the random streams (see [`crate::rng`]).
pub const BLOCK_PATHS: usize = 64;
const STREAMS_PER_BLOCK: u64 = LANES as u64;

/// Receives progress and may ask the simulation to stop; checked between blocks.
pub trait Observer: Sync {
    fn is_cancelled(&self) -> bool {
        false
    }

    /// Called after each simulated year with the fraction done, in (0, 1].
    fn on_progress(&self, _fraction: f64) {}
}

impl Observer for () {}

/// Output of stage two, serialisable so that a worker can cache it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimulationOutput {
    /// Nominal year-end percentiles (5, 25, 50, 75, 95) for years 1..=H.
    pub year_percentiles: Vec<[f64; 5]>,
    /// Year-H value of every path.
    pub final_values: Vec<f64>,
    /// Maximum drawdown of every path, as a fraction.
    pub max_drawdowns: Vec<f64>,
}

/// Runs stage two on the current rayon pool. The result depends on the inputs
/// and the shocks only, never on the number of threads.
pub fn simulate(
    inputs: &ModelInputs,
    shocks: &Shocks,
    observer: &dyn Observer,
) -> Result<SimulationOutput> {
    shocks.check_fits(inputs)?;
    let paths = inputs.paths as usize;
    let block_count = paths.div_ceil(BLOCK_PATHS);
    let mut blocks: Vec<Block> = (0..block_count)
        .into_par_iter()
        .map(|index| Block::new(inputs, index, paths))
        .collect();
    let mut year_end = vec![0.0; block_count * BLOCK_PATHS];
    let mut scratch = Vec::with_capacity(paths);
    let horizon = inputs.horizon_years as usize;
    let mut year_percentiles = Vec::with_capacity(horizon);
    for year in 0..horizon {
        let plan = YearPlan::new(inputs, shocks, year);
        blocks
            .par_iter_mut()
            .zip(year_end.par_chunks_mut(BLOCK_PATHS))
            .for_each(|(block, block_year_end)| {
                if !observer.is_cancelled() {
                    block.advance_year(&plan, block_year_end);
                }
            });
        if observer.is_cancelled() {
            return Err(Error::Cancelled);
        }
        scratch.clear();
        scratch.extend_from_slice(&year_end[..paths]);
        year_percentiles.push(percentiles(&mut scratch, REPORTED_PERCENTILES));
        observer.on_progress((year + 1) as f64 / horizon as f64);
    }
    year_end.truncate(paths);
    let max_drawdowns = blocks
        .iter()
        .flat_map(|block| &block.max_drawdown[..block.len])
        .copied()
        .collect();
    Ok(SimulationOutput {
        year_percentiles,
        final_values: year_end,
        max_drawdowns,
    })
}

/// What every block needs to advance through one year.
struct YearPlan<'a> {
    inputs: &'a ModelInputs,
    shocks: &'a Shocks,
    first_month: usize,
    /// `C * w_k(y)`.
    contributions: [f64; K],
    /// `w(y + 1)`, the year-end rebalancing target.
    next_weights: [f64; K],
}

impl<'a> YearPlan<'a> {
    fn new(inputs: &'a ModelInputs, shocks: &'a Shocks, year: usize) -> Self {
        YearPlan {
            inputs,
            shocks,
            first_month: 12 * year,
            contributions: inputs.weights_by_year[year]
                .map(|weight| inputs.monthly_contribution * weight),
            next_weights: inputs.weights_by_year[year + 1],
        }
    }
}

type Lanes = [f64; BLOCK_PATHS];

/// The state of [`BLOCK_PATHS`] paths, lanes beyond `len` being padding.
struct Block {
    values: [Lanes; K],
    peak: Lanes,
    max_drawdown: Lanes,
    rng: LaneRng,
    first_path: usize,
    len: usize,
}

impl Block {
    fn new(inputs: &ModelInputs, index: usize, paths: usize) -> Self {
        let first_path = index * BLOCK_PATHS;
        let initial_total: f64 = inputs.initial_values.iter().sum();
        Block {
            values: inputs.initial_values.map(|value| [value; BLOCK_PATHS]),
            peak: [initial_total; BLOCK_PATHS],
            max_drawdown: [0.0; BLOCK_PATHS],
            rng: LaneRng::new(inputs.seed, index as u64 * STREAMS_PER_BLOCK),
            first_path,
            len: (paths - first_path).min(BLOCK_PATHS),
        }
    }

    /// Advances twelve months and writes each path's year-end value.
    fn advance_year(&mut self, plan: &YearPlan, year_end: &mut [f64]) {
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked on the line above.
            unsafe { self.advance_year_avx2(plan, year_end) };
            return;
        }
        self.advance_year_portable(plan, year_end);
    }

    /// The same code compiled for AVX2. Every operation is IEEE-exact, so the
    /// results are bit-identical to the portable build.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn advance_year_avx2(&mut self, plan: &YearPlan, year_end: &mut [f64]) {
        self.advance_year_portable(plan, year_end);
    }

    #[inline(always)]
    fn advance_year_portable(&mut self, plan: &YearPlan, year_end: &mut [f64]) {
        let mut shocks = [[0.0; BLOCK_PATHS]; K];
        let mut totals = [0.0; BLOCK_PATHS];
        for month_of_year in 0..12 {
            let month = plan.first_month + month_of_year;
            match plan.shocks {
                Shocks::Random => self.draw_normals(&mut shocks),
                Shocks::Zero => {}
                Shocks::Scenario(scenario) => self.copy_scenario(scenario, month, &mut shocks),
            }
            self.grow(plan, &shocks);
            let year_ends = month_of_year == 11;
            if year_ends && plan.inputs.rebalance {
                self.rebalance(&plan.next_weights);
            }
            self.record_drawdown(&mut totals);
        }
        year_end.copy_from_slice(&totals);
    }

    #[inline(always)]
    fn draw_normals(&mut self, shocks: &mut [Lanes; K]) {
        const BATCH: usize = 64;
        let mut radius_bits = [0u64; BATCH];
        let mut angle_bits = [0u64; BATCH];
        for pair_of_rows in shocks.as_flattened_mut().chunks_exact_mut(2 * BATCH) {
            self.rng.fill(&mut radius_bits);
            self.rng.fill(&mut angle_bits);
            let (cosines, sines) = pair_of_rows.split_at_mut(BATCH);
            for lane in 0..BATCH {
                let (first, second) = vmath::normal_pair(radius_bits[lane], angle_bits[lane]);
                cosines[lane] = first;
                sines[lane] = second;
            }
        }
    }

    fn copy_scenario(&self, scenario: &Scenario, month: usize, shocks: &mut [Lanes; K]) {
        for lane in 0..self.len {
            let path_shocks = scenario.shocks(month, self.first_path + lane);
            for (class, &shock) in path_shocks.iter().enumerate() {
                shocks[class][lane] = shock;
            }
        }
    }

    /// Steps 2–5 of the model: correlated log-return, growth, contribution, fee.
    #[inline(always)]
    fn grow(&mut self, plan: &YearPlan, shocks: &[Lanes; K]) {
        let inputs = plan.inputs;
        let fee = inputs.fee_multiplier;
        for class in 0..K {
            let mut correlated = [0.0; BLOCK_PATHS];
            for (factor, source) in inputs.monthly_cholesky[class][..=class].iter().zip(shocks) {
                for lane in 0..BLOCK_PATHS {
                    correlated[lane] += factor * source[lane];
                }
            }
            let drift = inputs.monthly_drift[class];
            let contribution = plan.contributions[class];
            let values = &mut self.values[class];
            for lane in 0..BLOCK_PATHS {
                let growth = vmath::exp(correlated[lane] + drift);
                values[lane] = (values[lane] * growth + contribution) * fee;
            }
        }
    }

    /// Step 6: every class back to the target share of the total.
    #[inline(always)]
    fn rebalance(&mut self, weights: &[f64; K]) {
        let totals = self.totals();
        for (values, &weight) in self.values.iter_mut().zip(weights) {
            for lane in 0..BLOCK_PATHS {
                values[lane] = totals[lane] * weight;
            }
        }
    }

    /// Step 7: the month-end total and the running maximum drawdown.
    #[inline(always)]
    fn record_drawdown(&mut self, totals: &mut Lanes) {
        *totals = self.totals();
        for lane in 0..BLOCK_PATHS {
            self.peak[lane] = self.peak[lane].max(totals[lane]);
            self.max_drawdown[lane] =
                self.max_drawdown[lane].max(1.0 - totals[lane] / self.peak[lane]);
        }
    }

    #[inline(always)]
    fn totals(&self) -> Lanes {
        let mut totals = [0.0; BLOCK_PATHS];
        for values in &self.values {
            for lane in 0..BLOCK_PATHS {
                totals[lane] += values[lane];
            }
        }
        totals
    }
}
