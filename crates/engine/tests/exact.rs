//! The exact checks of MODEL.md section 9: zero-shock and injected-shock values
//! reproduced to 1e-12 relative.

use engine::{
    Assumptions, BENCHMARK_PORTFOLIO, ProjectionParams, ProjectionResult, Scenario, Shocks, project,
};

const SCENARIO_FILE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/shocks-777-m360-n500-k8.f64"
);

fn assert_close(name: &str, actual: f64, expected: f64) {
    let relative = if expected == 0.0 {
        actual.abs()
    } else {
        ((actual - expected) / expected).abs()
    };
    assert!(
        relative <= 1e-12,
        "{name}: {actual} vs {expected} (relative {relative:e})"
    );
}

fn benchmark(paths: u32, shocks: &Shocks) -> ProjectionResult {
    let params = ProjectionParams {
        paths,
        seed: Some(12345),
        ..ProjectionParams::default()
    };
    project(
        &BENCHMARK_PORTFOLIO,
        &params,
        &Assumptions::default(),
        shocks,
        &(),
    )
    .unwrap()
}

#[test]
fn zero_shock_year_end_totals() {
    let result = benchmark(3, &Shocks::Zero);
    let expected = [
        (1, 110202.13401807421, 107514.27709080411),
        (2, 120607.32219376178, 114795.78555027892),
        (5, 154125.01677043032, 136224.0569004336),
        (10, 218253.82701684954, 170499.54083608623),
        (20, 382118.0331532416, 233195.53237579076),
        (30, 602192.0897533142, 287090.67386373546),
    ];
    for (year, nominal, real) in expected {
        let outlook = &result.yearly[year - 1];
        assert_eq!(outlook.year as usize, year);
        for value in [outlook.nominal.p5, outlook.nominal.p50, outlook.nominal.p95] {
            assert_close(&format!("nominal y{year}"), value, nominal);
        }
        for value in [outlook.real.p5, outlook.real.p50, outlook.real.p95] {
            assert_close(&format!("real y{year}"), value, real);
        }
    }
    assert_eq!(result.median_max_drawdown, 0.0);
    assert_close("median_final", result.median_final, 602192.0897533142);
    assert_close("mean_final", result.mean_final, 602192.0897533142);
    assert_eq!(result.total_contributions, 280000.0);
    assert_eq!(result.probability_below_contributions, 0.0);
}

#[test]
fn injected_shocks_reproduce_the_reference() {
    let bytes = std::fs::read(SCENARIO_FILE).expect("the scenario fixture ships with the crate");
    let scenario = Scenario::from_le_bytes(&bytes, 360, 500).unwrap();
    let result = benchmark(500, &Shocks::Scenario(scenario));
    assert_close("median_final", result.median_final, 662370.9454193218);
    assert_close(
        "projection_value",
        result.projection_value,
        662370.9454193218,
    );
    assert_close("mean_final", result.mean_final, 719720.2777752619);
    assert_eq!(result.probability_below_contributions, 0.0);
    assert_close("var_95_level", result.var_95_level, 416399.1805878107);
    assert_close("var_95", result.var_95, 280000.0 - 416399.1805878107);
    assert_close("cvar_95_level", result.cvar_95_level, 386147.2641285293);
    assert_close("cvar_95", result.cvar_95, 280000.0 - 386147.2641285293);
    assert_close(
        "median_max_drawdown",
        result.median_max_drawdown,
        0.14449179854174832,
    );
    let year_30 = result.yearly[29].nominal;
    let expected_30 = [
        416399.1805878107,
        552938.6485863018,
        662370.9454193218,
        830142.7206557582,
        1172735.8233533883,
    ];
    let year_1 = result.yearly[0].nominal;
    let expected_1 = [
        94100.76109260481,
        102393.09435045978,
        110349.26372228017,
        118786.17907317542,
        131653.1553716554,
    ];
    for (name, percentiles, expected) in [("y30", year_30, expected_30), ("y1", year_1, expected_1)]
    {
        let actual = [
            percentiles.p5,
            percentiles.p25,
            percentiles.p50,
            percentiles.p75,
            percentiles.p95,
        ];
        for (index, (got, want)) in actual.into_iter().zip(expected).enumerate() {
            assert_close(&format!("{name} percentile {index}"), got, want);
        }
    }
    for outlook in &result.yearly {
        let deflator = 1.025f64.powi(outlook.year as i32);
        assert_close("real p50", outlook.real.p50 * deflator, outlook.nominal.p50);
    }
}

#[test]
fn a_scenario_of_the_wrong_shape_is_refused() {
    let scenario = Scenario::from_le_bytes(&vec![0; 12 * 4 * 8 * 8], 12, 4).unwrap();
    let params = ProjectionParams {
        paths: 4,
        time_horizon_years: 2,
        ..Default::default()
    };
    let error = project(
        &BENCHMARK_PORTFOLIO,
        &params,
        &Assumptions::default(),
        &Shocks::Scenario(scenario),
        &(),
    )
    .unwrap_err();
    assert!(error.to_string().contains("24 months"), "{error}");
}
