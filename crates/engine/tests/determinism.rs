//! Results depend on (seed, layout) only: bit-identical on 1, 2 and 4 threads,
//! run after run, and block by block whatever the number of paths around them.

use engine::{
    Assumptions, BENCHMARK_PORTFOLIO, ProjectionParams, ProjectionResult, Shocks, project,
};

fn on_threads(threads: usize, params: &ProjectionParams) -> ProjectionResult {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| {
        project(
            &BENCHMARK_PORTFOLIO,
            params,
            &Assumptions::default(),
            &Shocks::Random,
            &(),
        )
        .unwrap()
    })
}

fn bits(result: &ProjectionResult) -> Vec<u64> {
    let mut words = vec![
        result.median_final.to_bits(),
        result.mean_final.to_bits(),
        result.cvar_95_level.to_bits(),
        result.median_max_drawdown.to_bits(),
        result.probability_below_contributions.to_bits(),
    ];
    for outlook in &result.yearly {
        for value in [
            outlook.nominal.p5,
            outlook.nominal.p50,
            outlook.nominal.p95,
            outlook.real.p25,
        ] {
            words.push(value.to_bits());
        }
    }
    words
}

#[test]
fn bit_identical_on_one_two_and_four_threads_and_twice_in_a_row() {
    // An odd number of paths leaves a partial last block.
    let params = ProjectionParams {
        paths: 3_001,
        seed: Some(12345),
        ..Default::default()
    };
    let reference = on_threads(1, &params);
    for threads in [2, 4, 4, 2] {
        let other = on_threads(threads, &params);
        assert_eq!(bits(&reference), bits(&other), "{threads} threads");
        assert_eq!(reference, other);
    }
}

#[test]
fn the_seed_changes_the_numbers() {
    let first = on_threads(
        2,
        &ProjectionParams {
            paths: 500,
            seed: Some(1),
            ..Default::default()
        },
    );
    let second = on_threads(
        2,
        &ProjectionParams {
            paths: 500,
            seed: Some(2),
            ..Default::default()
        },
    );
    assert_ne!(first.median_final, second.median_final);
}
