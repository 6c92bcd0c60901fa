//! The engine's result in wire form.

use crate as wire;

impl From<engine::Percentiles> for wire::Percentiles {
    fn from(band: engine::Percentiles) -> Self {
        wire::Percentiles {
            p5: band.p5,
            p25: band.p25,
            p50: band.p50,
            p75: band.p75,
            p95: band.p95,
        }
    }
}

impl From<&engine::ProjectionResult> for wire::ProjectionResult {
    fn from(result: &engine::ProjectionResult) -> Self {
        wire::ProjectionResult {
            projection_value: result.projection_value,
            median_final: result.median_final,
            mean_final: result.mean_final,
            total_contributions: result.total_contributions,
            probability_below_contributions: result.probability_below_contributions,
            var_95_level: result.var_95_level,
            var_95: result.var_95,
            cvar_95_level: result.cvar_95_level,
            cvar_95: result.cvar_95,
            median_max_drawdown: result.median_max_drawdown,
            yearly: result
                .yearly
                .iter()
                .map(|outlook| wire::YearOutlook {
                    year: outlook.year,
                    nominal: Some(outlook.nominal.into()),
                    real: Some(outlook.real.into()),
                })
                .collect(),
            time_horizon_years: result.time_horizon_years,
            paths: result.paths,
            seed: result.seed,
            shocks: result.shocks.name().to_string(),
            reused: false,
            portfolio_as_of: String::new(),
            portfolio_version: 0,
            portfolio_stale: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::{Assumptions, BENCHMARK_PORTFOLIO, ProjectionParams, Shocks};

    /// The wire form and the engine's own JSON agree on every member the
    /// engine has, so a result stored as engine JSON reads back as the wire
    /// message (the job's own members taking their defaults).
    #[test]
    fn engine_json_is_the_wire_json() {
        let params = ProjectionParams {
            paths: 50,
            time_horizon_years: 3,
            seed: Some(1),
            ..Default::default()
        };
        let result = engine::project(
            &BENCHMARK_PORTFOLIO,
            &params,
            &Assumptions::default(),
            &Shocks::Random,
            &(),
        )
        .unwrap();
        let engine_json = serde_json::to_value(&result).unwrap();
        let mut wire_json = serde_json::to_value(wire::ProjectionResult::from(&result)).unwrap();
        let job_members = wire_json.as_object_mut().unwrap();
        for member in [
            "reused",
            "portfolio_as_of",
            "portfolio_version",
            "portfolio_stale",
        ] {
            job_members.remove(member).unwrap();
        }
        assert_eq!(engine_json, wire_json);
    }
}
