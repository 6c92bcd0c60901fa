//! Invariants of the model, checked on random requests with proptest.

use engine::{Assumptions, K, ProjectionParams, RiskProfile, Shocks, project};
use proptest::prelude::*;

fn any_portfolio() -> impl Strategy<Value = [f64; K]> {
    proptest::array::uniform8(0.0..50_000.0f64)
        .prop_filter("some value", |values| values.iter().sum::<f64>() > 1.0)
}

fn any_profile() -> impl Strategy<Value = RiskProfile> {
    prop_oneof![
        Just(RiskProfile::Conservative),
        Just(RiskProfile::Balanced),
        Just(RiskProfile::Aggressive)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn percentiles_are_ordered_and_real_is_below_nominal(
        portfolio in any_portfolio(),
        profile in any_profile(),
        horizon in 1u32..=12,
        contribution in 0.0..2_000.0f64,
        inflation in 0.0..0.1f64,
        glide in any::<bool>(),
        rebalance in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let params = ProjectionParams {
            time_horizon_years: horizon,
            risk_profile: profile,
            paths: 200,
            monthly_contribution: contribution,
            inflation,
            glide_path: glide,
            rebalance,
            seed: Some(seed),
            ..Default::default()
        };
        let result = project(&portfolio, &params, &Assumptions::default(), &Shocks::Random, &()).unwrap();
        prop_assert_eq!(result.yearly.len(), horizon as usize);
        for outlook in &result.yearly {
            for band in [outlook.nominal, outlook.real] {
                let values = [band.p5, band.p25, band.p50, band.p75, band.p95];
                prop_assert!(values.windows(2).all(|pair| pair[0] <= pair[1]), "{:?}", values);
                prop_assert!(values.iter().all(|value| value.is_finite() && *value > 0.0));
            }
            prop_assert!(outlook.real.p50 <= outlook.nominal.p50);
        }
        prop_assert!(result.var_95_level <= result.median_final);
        prop_assert!(result.cvar_95_level <= result.var_95_level);
        prop_assert!((0.0..=1.0).contains(&result.probability_below_contributions));
        prop_assert!((0.0..1.0).contains(&result.median_max_drawdown));
    }

    /// With no volatility and one drift for every class, the total follows
    /// P' = (P g + C) phi whatever the weights, so
    /// P_M = P_0 (g phi)^M + C phi ((g phi)^M - 1) / (g phi - 1).
    #[test]
    fn zero_volatility_is_deterministic_compound_growth(
        portfolio in any_portfolio(),
        profile in any_profile(),
        horizon in 1u32..=50,
        mu in -0.05..0.12f64,
        contribution in 0.0..3_000.0f64,
        fee in 0.0..0.03f64,
        glide in any::<bool>(),
        rebalance in any::<bool>(),
    ) {
        let assumptions = Assumptions { mu: [mu; K], sigma: [0.0; K], ..Assumptions::default() };
        let params = ProjectionParams {
            time_horizon_years: horizon,
            risk_profile: profile,
            paths: 3,
            monthly_contribution: contribution,
            annual_fee: fee,
            glide_path: glide,
            rebalance,
            seed: Some(1),
            ..Default::default()
        };
        let result = project(&portfolio, &params, &assumptions, &Shocks::Random, &()).unwrap();
        let growth = (mu / 12.0).exp() * (1.0 - fee / 12.0);
        let initial: f64 = portfolio.iter().sum();
        for outlook in &result.yearly {
            let months = 12 * outlook.year as i32;
            let compounded = growth.powi(months);
            let annuity = if (growth - 1.0).abs() < 1e-12 {
                f64::from(months)
            } else {
                (compounded - 1.0) / (growth - 1.0)
            };
            let expected = initial * compounded + contribution * (1.0 - fee / 12.0) * annuity;
            let band = outlook.nominal;
            prop_assert!(((band.p5 - expected) / expected).abs() < 1e-9, "year {}: {} vs {}", outlook.year, band.p5, expected);
            prop_assert_eq!(band.p5, band.p95);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    /// Scenario files come from outside: any bytes and any declared shape are
    /// read or refused, never a panic.
    #[test]
    fn no_scenario_file_makes_the_reader_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..1024),
        months in prop_oneof![0usize..16, Just(usize::MAX)],
        paths in prop_oneof![0usize..16, Just(usize::MAX / 2)],
    ) {
        if let Ok(scenario) = engine::Scenario::from_le_bytes(&bytes, months, paths) {
            prop_assert_eq!(scenario.months() * scenario.paths() * engine::K * 8, bytes.len());
        }
    }
}
