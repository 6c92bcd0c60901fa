//! Portfolio files in the data service's PortfolioDTO shape.

use std::path::Path;

use anyhow::{Context, Result};
use engine::K;
use serde::Deserialize;

/// The part of a PortfolioDTO the engine needs; other members are ignored.
#[derive(Debug, Deserialize)]
struct PortfolioFile {
    assets: Vec<Holding>,
}

#[derive(Debug, Deserialize)]
struct Holding {
    asset_class: String,
    market_value: f64,
}

/// Reads a PortfolioDTO JSON file and sums its holdings by asset class.
pub fn initial_values_from_file(path: &Path) -> Result<[f64; K]> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read portfolio file {}", path.display()))?;
    initial_values_from_text(&text).with_context(|| format!("portfolio file {}", path.display()))
}

fn initial_values_from_text(text: &str) -> Result<[f64; K]> {
    let portfolio: PortfolioFile = serde_json::from_str(text).context(
        "is not a PortfolioDTO (expected {\"assets\": [{\"asset_class\", \"market_value\", ...}]})",
    )?;
    let holdings = portfolio
        .assets
        .iter()
        .map(|holding| (holding.asset_class.as_str(), holding.market_value));
    engine::initial_values_by_class(holdings).context("has a bad holding")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        #[test]
        fn no_text_makes_the_portfolio_reader_panic(text in ".{0,200}") {
            let _ = initial_values_from_text(&text);
        }

        #[test]
        fn what_the_reader_accepts_is_finite_and_non_negative(
            holdings in proptest::collection::vec(
                (prop_oneof![Just("us_equity"), Just("bonds"), Just("gold"), Just("yolo")], any::<f64>()),
                0..12,
            )
        ) {
            let assets: Vec<String> = holdings
                .iter()
                .map(|(class, value)| {
                    // JSON has no spelling for NaN or infinity; those come as null.
                    let value = serde_json::to_string(value).unwrap();
                    format!(r#"{{"asset_class": "{class}", "market_value": {value}}}"#)
                })
                .collect();
            let text = format!(r#"{{"assets": [{}]}}"#, assets.join(","));
            if let Ok(values) = initial_values_from_text(&text) {
                prop_assert!(values.iter().all(|value| value.is_finite() && *value >= 0.0));
            }
        }
    }
}
