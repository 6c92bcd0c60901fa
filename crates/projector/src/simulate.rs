//! `projector simulate`: one projection on this machine, no services needed.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use engine::{
    Assumptions, BENCHMARK_PORTFOLIO, InstructionSet, K, Observer, ProjectionParams, RiskProfile,
    Scenario, Shocks,
};
use indicatif::{ProgressBar, ProgressStyle};

use crate::portfolio::initial_values_from_file;
use crate::table::write_table;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Json,
    Table,
}

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// PortfolioDTO JSON file (holdings summed by asset_class); the benchmark portfolio when absent.
    #[arg(long, value_name = "FILE")]
    portfolio: Option<PathBuf>,
    /// Horizon in years, 1..=50.
    #[arg(long, value_name = "YEARS", default_value_t = 30)]
    horizon: u32,
    /// Risk profile: conservative, balanced or aggressive.
    #[arg(long, value_name = "PROFILE", default_value = "balanced", value_parser = parse_risk)]
    risk: RiskProfile,
    /// Monte Carlo paths; with --scenario, taken from the file when absent.
    #[arg(long)]
    paths: Option<u32>,
    /// Seed of the random shocks; derived from the request when absent.
    #[arg(long)]
    seed: Option<u64>,
    /// Contribution added every month.
    #[arg(long, value_name = "AMOUNT", default_value_t = 500.0)]
    contribution: f64,
    /// Annual fee as a fraction (0.005 is 0.5%).
    #[arg(long, default_value_t = 0.005)]
    fee: f64,
    /// Annual inflation for the real values (0.025 is 2.5%).
    #[arg(long, default_value_t = 0.025)]
    inflation: f64,
    /// Keep the target weights fixed instead of moving 1%/year from equity to bonds.
    #[arg(long)]
    no_glide: bool,
    /// Never rebalance to the target weights.
    #[arg(long)]
    no_rebalance: bool,
    /// Every shock zero: the single deterministic path.
    #[arg(long, conflicts_with = "scenario")]
    zero_shocks: bool,
    /// Shocks from a file: little-endian float64, shape (months, paths, 8), C order.
    #[arg(long, value_name = "FILE")]
    scenario: Option<PathBuf>,
    /// Worker threads; all cores when absent.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    threads: Option<u16>,
    /// The engine's instruction set: the widest the CPU has (`auto`), or a
    /// narrower one to measure it; every choice gives the same numbers.
    #[arg(long, value_enum, default_value_t = Isa::Auto)]
    isa: Isa,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Isa {
    Auto,
    Avx512,
    Avx2,
    Portable,
}

/// Lowers the engine's instruction set as asked; a set the CPU lacks is refused.
fn limit_isa(isa: Isa) -> Result<()> {
    let wanted = match isa {
        Isa::Auto => return Ok(()),
        Isa::Avx512 => InstructionSet::Avx512,
        Isa::Avx2 => InstructionSet::Avx2,
        Isa::Portable => InstructionSet::Portable,
    };
    let detected = InstructionSet::detected();
    if wanted > detected {
        bail!(
            "this CPU does not run {} (its widest is {}); choose --isa {} or narrower",
            wanted.name(),
            detected.name(),
            detected.name()
        );
    }
    engine::limit_instruction_set(wanted);
    Ok(())
}

fn parse_risk(text: &str) -> Result<RiskProfile, String> {
    text.parse()
        .map_err(|error: engine::Error| error.to_string())
}

const DEFAULT_PATHS: u32 = 10_000;

pub fn run(args: &SimulateArgs) -> Result<()> {
    limit_isa(args.isa)?;
    let initial_values = match &args.portfolio {
        Some(path) => initial_values_from_file(path)?,
        None => BENCHMARK_PORTFOLIO,
    };
    let months = 12 * args.horizon as usize;
    let (shocks, paths) = match (&args.scenario, args.zero_shocks) {
        (Some(path), _) => read_scenario(path, months, args.paths)?,
        (None, true) => (Shocks::Zero, args.paths.unwrap_or(DEFAULT_PATHS)),
        (None, false) => (Shocks::Random, args.paths.unwrap_or(DEFAULT_PATHS)),
    };
    let params = ProjectionParams {
        time_horizon_years: args.horizon,
        risk_profile: args.risk,
        paths,
        monthly_contribution: args.contribution,
        annual_fee: args.fee,
        inflation: args.inflation,
        glide_path: !args.no_glide,
        rebalance: !args.no_rebalance,
        seed: args.seed,
        target_weights: None,
    };
    let mut builder = rayon::ThreadPoolBuilder::new();
    if let Some(threads) = args.threads {
        builder = builder.num_threads(usize::from(threads));
    }
    let pool = builder.build().context("cannot start the worker threads")?;
    let progress = TerminalProgress::new();
    let result = pool.install(|| {
        engine::project(
            &initial_values,
            &params,
            &Assumptions::default(),
            &shocks,
            &progress,
        )
    });
    progress.finish();
    let result = result?;
    let mut stdout = std::io::stdout().lock();
    match args.format {
        Format::Json => {
            let text = serde_json::to_string_pretty(&result)?;
            writeln!(stdout, "{text}")?;
        }
        Format::Table => write_table(&mut stdout, &params, &result)?,
    }
    Ok(())
}

fn read_scenario(path: &PathBuf, months: usize, paths: Option<u32>) -> Result<(Shocks, u32)> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read scenario file {}", path.display()))?;
    let month_bytes = months * K * 8;
    let paths = match paths {
        Some(paths) => paths,
        None if bytes.len() % month_bytes == 0 => u32::try_from(bytes.len() / month_bytes)
            .context("scenario file holds too many paths")?,
        None => bail!(
            "scenario file {} has {} bytes, which is not a whole number of paths for {months} months \
             ({month_bytes} bytes per path); check --horizon",
            path.display(),
            bytes.len()
        ),
    };
    let scenario = Scenario::from_le_bytes(&bytes, months, paths as usize)
        .with_context(|| format!("scenario file {}", path.display()))?;
    Ok((Shocks::Scenario(scenario), paths))
}

/// A progress bar on stderr, drawn only when stderr is a terminal.
struct TerminalProgress {
    bar: Option<ProgressBar>,
}

const PROGRESS_STEPS: u64 = 1000;

impl TerminalProgress {
    fn new() -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(PROGRESS_STEPS);
            if let Ok(style) =
                ProgressStyle::with_template("{spinner} simulating [{bar:40}] {percent}% {elapsed}")
            {
                bar.set_style(style.progress_chars("=> "));
            }
            bar
        });
        TerminalProgress { bar }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Observer for TerminalProgress {
    fn on_progress(&self, fraction: f64) {
        if let Some(bar) = &self.bar {
            bar.set_position((fraction * PROGRESS_STEPS as f64).round() as u64);
        }
    }
}
