//! Statistical checks of MODEL.md section 9: the single-asset closed form and the
//! N = 100,000 table, each within 4 Monte Carlo standard errors that are computed
//! from the simulated paths themselves.

use engine::{
    Assumptions, BENCHMARK_PORTFOLIO, K, ProjectionParams, ProjectionResult, Shocks,
    SimulationOutput, model_inputs, percentiles, simulate, statistics,
};

const PATHS: u32 = 100_000;

/// Standard error of the p-th percentile from the spread of the order statistics
/// one binomial standard deviation either side of it.
fn percentile_standard_error(values: &[f64], percent: f64) -> f64 {
    let p = percent / 100.0;
    let spread = 100.0 * (p * (1.0 - p) / values.len() as f64).sqrt();
    let mut work = values.to_vec();
    let [low, high] = percentiles(&mut work, [percent - spread, percent + spread]);
    (high - low) / 2.0
}

fn mean_and_standard_error(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let variance = values
        .iter()
        .map(|value| (value - mean).powi(2))
        .sum::<f64>()
        / (n - 1.0);
    (mean, (variance / n).sqrt())
}

/// Standard error of the lower-tail mean (CVaR level) at 5%.
fn cvar_standard_error(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let tail = &sorted[..(sorted.len() / 20).max(1)];
    let (tail_mean, _) = mean_and_standard_error(tail);
    let var_level = tail[tail.len() - 1];
    let tail_variance = tail
        .iter()
        .map(|value| (value - tail_mean).powi(2))
        .sum::<f64>()
        / tail.len() as f64;
    ((tail_variance + 0.95 * (var_level - tail_mean).powi(2)) / (0.05 * values.len() as f64)).sqrt()
}

struct Run {
    result: ProjectionResult,
    standard_errors: [f64; 6],
}

fn run(initial_values: &[f64; K], params: &ProjectionParams) -> Run {
    let inputs = model_inputs(initial_values, params, &Assumptions::default()).unwrap();
    let mut simulation: SimulationOutput = simulate(&inputs, &Shocks::Random, &()).unwrap();
    let finals = &simulation.final_values;
    let total = inputs.total_contributions();
    let below = finals.iter().filter(|&&value| value < total).count() as f64 / finals.len() as f64;
    let standard_errors = [
        percentile_standard_error(finals, 50.0),
        mean_and_standard_error(finals).1,
        (below.max(1.0 / finals.len() as f64) / finals.len() as f64).sqrt(),
        percentile_standard_error(finals, 5.0),
        cvar_standard_error(finals),
        percentile_standard_error(&simulation.max_drawdowns, 50.0),
    ];
    let result = statistics(&inputs, Shocks::Random.kind(), &mut simulation);
    Run {
        result,
        standard_errors,
    }
}

fn figures(result: &ProjectionResult) -> [f64; 6] {
    [
        result.median_final,
        result.mean_final,
        result.probability_below_contributions,
        result.var_95_level,
        result.cvar_95_level,
        result.median_max_drawdown,
    ]
}

#[test]
fn benchmark_table_within_four_standard_errors() {
    const NAMES: [&str; 6] = [
        "median_final",
        "mean_final",
        "p_below",
        "VaR95_level",
        "CVaR95_level",
        "median_mdd",
    ];
    // MODEL.md section 9: each the mean of 3 seeds, by two other implementations.
    let pcg64 = [678372.0, 721761.0, 0.00143, 407278.0, 363493.0, 0.14716];
    let xoshiro = [678509.0, 722171.0, 0.00148, 407465.0, 362977.0, 0.14707];
    let runs: Vec<Run> = (12345..=12347)
        .map(|seed| {
            let params = ProjectionParams {
                paths: PATHS,
                seed: Some(seed),
                ..Default::default()
            };
            run(&BENCHMARK_PORTFOLIO, &params)
        })
        .collect();
    for index in 0..NAMES.len() {
        let ours = runs
            .iter()
            .map(|run| figures(&run.result)[index])
            .sum::<f64>()
            / 3.0;
        let one_run_error = runs
            .iter()
            .map(|run| run.standard_errors[index])
            .sum::<f64>()
            / 3.0;
        // Both sides are means of three independent runs.
        let difference_error = one_run_error * (2.0f64 / 3.0).sqrt();
        for (reference, label) in [(pcg64, "PCG64"), (xoshiro, "Xoshiro")] {
            let distance = (ours - reference[index]).abs();
            assert!(
                distance <= 4.0 * difference_error,
                "{}: ours {ours} vs {label} {} differ by {distance}, over 4 x {difference_error}",
                NAMES[index],
                reference[index]
            );
        }
    }
}

#[test]
fn single_asset_closed_form() {
    let mut initial = [0.0; K];
    initial[0] = 1.0;
    let params = ProjectionParams {
        paths: PATHS,
        seed: Some(2024),
        monthly_contribution: 0.0,
        annual_fee: 0.0,
        rebalance: false,
        glide_path: false,
        ..Default::default()
    };
    let run = run(&initial, &params);
    let expected_mean = (0.07f64 * 30.0).exp();
    let expected_median = ((0.07 - 0.16 * 0.16 / 2.0) * 30.0f64).exp();
    let median_error = run.standard_errors[0];
    let mean_error = run.standard_errors[1];
    assert!((expected_mean - 8.166170).abs() < 1e-6 && (expected_median - 5.562235).abs() < 1e-6);
    assert!(
        (run.result.mean_final - expected_mean).abs() <= 4.0 * mean_error,
        "mean {} vs {expected_mean} (se {mean_error})",
        run.result.mean_final
    );
    assert!(
        (run.result.median_final - expected_median).abs() <= 4.0 * median_error,
        "median {} vs {expected_median} (se {median_error})",
        run.result.median_final
    );
}
