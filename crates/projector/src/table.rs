//! The readable summary printed by `projector simulate --format table`.

use std::io::{self, Write};

use engine::{ProjectionParams, ProjectionResult};

pub fn write_table(
    out: &mut impl Write,
    params: &ProjectionParams,
    result: &ProjectionResult,
) -> io::Result<()> {
    let horizon = result.time_horizon_years;
    writeln!(
        out,
        "Projection: {} profile, {horizon} years, {} paths, seed {}, {} shocks",
        params.risk_profile,
        result.paths,
        result.seed,
        result.shocks.name()
    )?;
    let rows = [
        ("Total contributions", money(result.total_contributions)),
        ("Median final value", money(result.median_final)),
        ("Mean final value", money(result.mean_final)),
        (
            "5-95% band at horizon",
            format!(
                "{} - {}",
                money(result.yearly[horizon as usize - 1].nominal.p5),
                money(result.yearly[horizon as usize - 1].nominal.p95)
            ),
        ),
        (
            "P(final < contributions)",
            format!("{:.2}%", 100.0 * result.probability_below_contributions),
        ),
        (
            "VaR 95% (level)",
            format!("{} ({})", money(result.var_95), money(result.var_95_level)),
        ),
        (
            "CVaR 95% (level)",
            format!(
                "{} ({})",
                money(result.cvar_95),
                money(result.cvar_95_level)
            ),
        ),
        (
            "Median max drawdown",
            format!("{:.2}%", 100.0 * result.median_max_drawdown),
        ),
    ];
    for (label, value) in rows {
        writeln!(out, "  {label:<26} {value:>27}")?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "  {:>4} {:>14} {:>14} {:>14} {:>14} {:>14} {:>14}",
        "year", "p5", "p25", "median", "p75", "p95", "median (real)"
    )?;
    for outlook in &result.yearly {
        let band = outlook.nominal;
        writeln!(
            out,
            "  {:>4} {:>14} {:>14} {:>14} {:>14} {:>14} {:>14}",
            outlook.year,
            money(band.p5),
            money(band.p25),
            money(band.p50),
            money(band.p75),
            money(band.p95),
            money(outlook.real.p50)
        )?;
    }
    Ok(())
}

/// An amount with thousands separators and no decimals.
fn money(amount: f64) -> String {
    use num_format::{Locale, ToFormattedString};
    (amount.round() as i64).to_formatted_string(&Locale::en)
}

#[cfg(test)]
mod tests {
    use super::money;

    #[test]
    fn groups_thousands() {
        assert_eq!(money(0.4), "0");
        assert_eq!(money(999.0), "999");
        assert_eq!(money(1234567.89), "1,234,568");
        assert_eq!(money(-280000.0), "-280,000");
    }
}
