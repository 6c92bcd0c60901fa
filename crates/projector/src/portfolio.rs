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
    let portfolio: PortfolioFile = serde_json::from_str(&text).with_context(|| {
        format!(
            "portfolio file {} is not a PortfolioDTO (expected {{\"assets\": [{{\"asset_class\", \"market_value\", ...}}]}})",
            path.display()
        )
    })?;
    let holdings = portfolio
        .assets
        .iter()
        .map(|holding| (holding.asset_class.as_str(), holding.market_value));
    engine::initial_values_by_class(holdings)
        .with_context(|| format!("portfolio file {} has a bad holding", path.display()))
}
