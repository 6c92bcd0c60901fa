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
use crate::isa::{InstructionSet, instruction_set};
use crate::normal;
use crate::params::ModelInputs;
use crate::quantile::{REPORTED_PERCENTILES, percentiles};
use crate::rng::{LANES, LaneRng};
use crate::shocks::{Scenario, Shocks};
use crate::vmath;

/// Paths per block: a layout constant of the random streams (see [`crate::rng`]).
pub const BLOCK_PATHS: usize = 64;
const STREAMS_PER_BLOCK: u64 = LANES as u64;
/// Lanes computed side by side in the transcendental loops: two AVX2 registers.
const INTERLEAVE: usize = 8;

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
        // The previous year's percentiles are taken while the blocks run on.
        let (previous_year, ()) = rayon::join(
            || (year > 0).then(|| percentiles(&mut scratch, REPORTED_PERCENTILES)),
            || {
                blocks
                    .par_iter_mut()
                    .zip(year_end.par_chunks_mut(BLOCK_PATHS))
                    .for_each(|(block, block_year_end)| {
                        if !observer.is_cancelled() {
                            block.advance_year(&plan, block_year_end);
                        }
                    })
            },
        );
        year_percentiles.extend(previous_year);
        if observer.is_cancelled() {
            return Err(Error::Cancelled);
        }
        scratch.clear();
        scratch.extend_from_slice(&year_end[..paths]);
        observer.on_progress((year + 1) as f64 / horizon as f64);
    }
    year_percentiles.push(percentiles(&mut scratch, REPORTED_PERCENTILES));
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

/// A month's shocks for a block, every class and path, as one batch of normals.
fn batch(shocks: &mut [Lanes; K]) -> &mut [f64; normal::BATCH] {
    const { assert!(K * BLOCK_PATHS == normal::BATCH) };
    shocks
        .as_flattened_mut()
        .try_into()
        .expect("K * BLOCK_PATHS normals")
}

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
        match instruction_set() {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `instruction_set` never names a set the CPU lacks.
            InstructionSet::Avx512 => unsafe { self.advance_year_avx512(plan, year_end) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above: the CPU has AVX2 and FMA.
            InstructionSet::Avx2 => unsafe { self.advance_year_avx2(plan, year_end) },
            _ => self.advance_year_portable(plan, year_end),
        }
    }

    fn advance_year_portable(&mut self, plan: &YearPlan, year_end: &mut [f64]) {
        self.advance_year_on(plan, year_end, InstructionSet::Portable);
    }

    // The same code compiled for wider registers. Every operation is IEEE-exact
    // and `mul_add` rounds once everywhere, so all builds give the same bits.

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx2,fma")]
    fn advance_year_avx512(&mut self, plan: &YearPlan, year_end: &mut [f64]) {
        self.advance_year_on(plan, year_end, InstructionSet::Avx512);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn advance_year_avx2(&mut self, plan: &YearPlan, year_end: &mut [f64]) {
        self.advance_year_on(plan, year_end, InstructionSet::Avx2);
    }

    /// The year's twelve months, compiled into each of the functions above;
    /// `isa` is the set they run on.
    #[inline(always)]
    fn advance_year_on(&mut self, plan: &YearPlan, year_end: &mut [f64], isa: InstructionSet) {
        let mut shocks = [[0.0; BLOCK_PATHS]; K];
        for month_of_year in 0..12 {
            let month = plan.first_month + month_of_year;
            match plan.shocks {
                Shocks::Random => normal::fill(&mut self.rng, batch(&mut shocks), isa),
                Shocks::Zero => {}
                Shocks::Scenario(scenario) => self.copy_scenario(scenario, month, &mut shocks),
            }
            let rebalance = month_of_year == 11 && plan.inputs.rebalance;
            for chunk in 0..BLOCK_PATHS / INTERLEAVE {
                self.advance_month(plan, &shocks, chunk * INTERLEAVE, rebalance);
            }
        }
        for (lane, value) in year_end.iter_mut().enumerate() {
            *value = self
                .values
                .iter()
                .map(|class_values| class_values[lane])
                .sum();
        }
    }

    /// Steps 2–7 of the model for [`INTERLEAVE`] paths, with every intermediate
    /// in registers: correlated log-return, growth, contribution, fee, the
    /// year-end rebalance, the month-end total and the running maximum drawdown.
    #[inline(always)]
    fn advance_month(
        &mut self,
        plan: &YearPlan,
        shocks: &[Lanes; K],
        first_lane: usize,
        rebalance: bool,
    ) {
        let inputs = plan.inputs;
        let lanes = first_lane..first_lane + INTERLEAVE;
        let z: [[f64; INTERLEAVE]; K] = std::array::from_fn(|class| {
            shocks[class][lanes.clone()]
                .try_into()
                .expect("a chunk of INTERLEAVE lanes")
        });
        let mut totals = [0.0; INTERLEAVE];
        for class in 0..K {
            let mut correlated = [0.0; INTERLEAVE];
            for (factor, source) in inputs.monthly_cholesky[class][..=class].iter().zip(&z) {
                for lane in 0..INTERLEAVE {
                    correlated[lane] += factor * source[lane];
                }
            }
            let drift = inputs.monthly_drift[class];
            let contribution = plan.contributions[class];
            let values = &mut self.values[class][lanes.clone()];
            for lane in 0..INTERLEAVE {
                let growth = vmath::exp(correlated[lane] + drift);
                values[lane] = (values[lane] * growth + contribution) * inputs.fee_multiplier;
                totals[lane] += values[lane];
            }
        }
        if rebalance {
            let before = totals;
            totals = [0.0; INTERLEAVE];
            for (values, weight) in self.values.iter_mut().zip(plan.next_weights) {
                let values = &mut values[lanes.clone()];
                for lane in 0..INTERLEAVE {
                    values[lane] = before[lane] * weight;
                    totals[lane] += values[lane];
                }
            }
        }
        let peak = &mut self.peak[lanes.clone()];
        let drawdown = &mut self.max_drawdown[lanes];
        for lane in 0..INTERLEAVE {
            peak[lane] = peak[lane].max(totals[lane]);
            drawdown[lane] = drawdown[lane].max(1.0 - totals[lane] / peak[lane]);
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assets::{Assumptions, BENCHMARK_PORTFOLIO};
    use crate::params::{ProjectionParams, model_inputs};

    fn values_after_two_years(advance: fn(&mut Block, &YearPlan, &mut [f64])) -> Vec<u64> {
        let params = ProjectionParams {
            paths: 100,
            seed: Some(5),
            ..Default::default()
        };
        let inputs = model_inputs(&BENCHMARK_PORTFOLIO, &params, &Assumptions::default()).unwrap();
        let mut block = Block::new(&inputs, 1, 100);
        let mut year_end = [0.0; BLOCK_PATHS];
        for year in 0..2 {
            advance(
                &mut block,
                &YearPlan::new(&inputs, &Shocks::Random, year),
                &mut year_end,
            );
        }
        let state = block
            .values
            .iter()
            .flatten()
            .chain(&block.max_drawdown)
            .chain(&year_end);
        state.map(|value| value.to_bits()).collect()
    }

    proptest::proptest! {
        #[test]
        fn a_rebalance_preserves_the_total_and_sets_the_weights(
            start in proptest::array::uniform8(0.0..1e7f64),
            profile in 0usize..3,
        ) {
            let params = ProjectionParams {
                paths: 8,
                monthly_contribution: 0.0,
                annual_fee: 0.0,
                risk_profile: crate::RiskProfile::ALL[profile],
                ..Default::default()
            };
            let still = Assumptions { mu: [0.0; K], sigma: [0.0; K], ..Assumptions::default() };
            let inputs = model_inputs(&BENCHMARK_PORTFOLIO, &params, &still).unwrap();
            let mut block = Block::new(&inputs, 0, 8);
            block.values = start.map(|value| [value; BLOCK_PATHS]);
            let plan = YearPlan::new(&inputs, &Shocks::Zero, 0);
            block.advance_month(&plan, &[[0.0; BLOCK_PATHS]; K], 0, true);
            let before: f64 = start.iter().sum();
            let after: f64 = block.values.iter().map(|class| class[0]).sum();
            proptest::prop_assert!((after - before).abs() <= 1e-14 * before.max(1.0));
            for (class, weight) in plan.next_weights.iter().enumerate() {
                proptest::prop_assert!((block.values[class][0] - before * weight).abs() <= 1e-15 * before.max(1.0));
            }
        }
    }

    #[test]
    fn every_instruction_set_gives_the_same_bits() {
        let portable = values_after_two_years(Block::advance_year_portable);
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                // SAFETY: guarded by the feature check.
                let avx2 = values_after_two_years(|block, plan, out| unsafe {
                    block.advance_year_avx2(plan, out)
                });
                assert_eq!(portable, avx2);
            }
            if std::is_x86_feature_detected!("avx512f") {
                // SAFETY: guarded by the feature check.
                let avx512 = values_after_two_years(|block, plan, out| unsafe {
                    block.advance_year_avx512(plan, out)
                });
                assert_eq!(portable, avx512);
            }
        }
        assert_eq!(portable, values_after_two_years(Block::advance_year));
    }
}
