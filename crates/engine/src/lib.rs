//! The projection model of MODEL.md: pure, synchronous, parallel with rayon and
//! reproducible bit for bit on any number of threads.
//!
//! Three stages, each with a serialisable output so that callers can cache them:
//! [`model_inputs`] → [`simulate`] → [`statistics`]. [`project`] runs all three.

// Matrix and lane code reads best with explicit indices.
#![allow(clippy::needless_range_loop)]

mod allocation;
mod assets;
mod error;
mod isa;
mod normal;
mod params;
mod quantile;
pub mod rng;
mod shocks;
mod simulate;
mod statistics;
mod vmath;
mod ziggurat_tables;

pub use allocation::{GLIDE_STEP, RiskProfile, weights_by_year};
pub use assets::{AssetClass, Assumptions, BENCHMARK_PORTFOLIO, K, cholesky};
pub use error::{Error, Result};
pub use isa::{InstructionSet, instruction_set, limit_instruction_set};
pub use params::{
    MAX_HORIZON_YEARS, MAX_PATHS, ModelInputs, ProjectionParams, initial_values_by_class,
    model_inputs,
};
pub use quantile::{REPORTED_PERCENTILES, percentiles};
pub use shocks::{Scenario, ShockKind, Shocks};
pub use simulate::{BLOCK_PATHS, Observer, SimulationOutput, simulate};
pub use statistics::{Percentiles, ProjectionResult, YearOutlook, statistics};

/// Names the numbers this release computes for given model inputs: results
/// that callers keep and reuse are keyed by it. Bump it with any change that
/// moves a result for the same inputs (the generator, the model, the
/// statistics); `tests/determinism.rs` pins the numbers of this revision.
pub const MODEL_REVISION: u32 = 2;

/// All three stages on the current rayon pool.
pub fn project(
    initial_values: &[f64; K],
    params: &ProjectionParams,
    assumptions: &Assumptions,
    shocks: &Shocks,
    observer: &dyn Observer,
) -> Result<ProjectionResult> {
    let inputs = model_inputs(initial_values, params, assumptions)?;
    let mut simulation = simulate(&inputs, shocks, observer)?;
    Ok(statistics(&inputs, shocks.kind(), &mut simulation))
}
