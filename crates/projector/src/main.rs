//! The `projector` binary: one subcommand per role.

mod cluster;
mod demo;
mod listen;
mod portfolio;
mod roles;
mod signals;
mod simulate;
mod stores;
mod table;
mod up;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "projector",
    version,
    about = "Financial projections off the request path"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// How service logs are written on stderr: `text` for people, `json` (one
    /// object per line) for a log collector.
    #[arg(long, env = "PROJECTOR_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one projection locally and print its result.
    Simulate(simulate::SimulateArgs),
    /// Start every role on this machine with embedded storage.
    Up(up::UpArgs),
    /// Start everything on free ports, request one report per risk profile, print them, exit.
    Demo,
    /// Run a gateway: accepts jobs and answers their status from the job store.
    Gateway(roles::GatewayArgs),
    /// Run a worker node: claims jobs of its partitions and runs them.
    Worker(roles::WorkerArgs),
    /// Run the orchestrator: reports, dispatched to a gateway over HTTP.
    Orchestrator(roles::OrchestratorArgs),
    /// Run the data service alone.
    Datasvc(roles::DatasvcArgs),
    /// Bring a database to this release's schema.
    Migrate(roles::MigrateArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) if !error.use_stderr() => error.exit(),
        Err(error) => {
            // One line a person can act on, rather than clap's full usage block.
            let rendered = error.render().to_string();
            let first_line = rendered.lines().next().unwrap_or("invalid arguments");
            eprintln!("{first_line} (see `projector --help`)");
            return ExitCode::from(2);
        }
    };
    let logs = cli.log_format;
    let outcome = match cli.command {
        Command::Simulate(args) => simulate::run(args),
        Command::Up(args) => serve(args, ("info", logs), up::up),
        Command::Demo => serve((), ("warn", logs), |()| demo::demo()),
        Command::Gateway(args) => serve(args, ("info", logs), roles::gateway),
        Command::Worker(args) => serve(args, ("info", logs), roles::worker),
        Command::Orchestrator(args) => serve(args, ("info", logs), roles::orchestrator),
        Command::Datasvc(args) => serve(args, ("info", logs), roles::datasvc),
        Command::Migrate(args) => serve(args, ("warn", logs), roles::migrate),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        // The reader went away (`| head`): nothing left to report to.
        Err(error) if is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error
        .downcast_ref::<std::io::Error>()
        .is_some_and(|io_error| io_error.kind() == std::io::ErrorKind::BrokenPipe)
}

/// Runs a service command on a multi-threaded runtime with logs on stderr at
/// a default level (`RUST_LOG` overrides it) in the given format.
fn serve<A, F, Fut>(
    args: A,
    (default_level, format): (&str, LogFormat),
    command: F,
) -> anyhow::Result<()>
where
    F: FnOnce(A) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => logs.json().flatten_event(true).init(),
        // Colour codes only for a person at a terminal, not in log files.
        LogFormat::Text => logs
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
    }
    api::server::raise_open_file_limit();
    // Before any role counts anything.
    api::metrics::handle();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| anyhow::anyhow!("cannot start the async runtime: {error}"))?;
    runtime.block_on(command(args))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn word() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("simulate".to_string()),
            Just("up".to_string()),
            Just("gateway".to_string()),
            Just("worker".to_string()),
            Just("--paths".to_string()),
            Just("--horizon".to_string()),
            Just("--cache-ttl-seconds".to_string()),
            Just("--max-connections".to_string()),
            Just("--header-timeout-seconds".to_string()),
            Just("--workers".to_string()),
            Just("--database-url".to_string()),
            Just("--submissions-per-second".to_string()),
            Just("--".to_string()),
            "-?-?[a-z-]{0,12}",
            "[0-9e.+-]{0,24}",
            ".{0,16}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        /// Options are outside input too: any words parse or are refused, never a panic.
        #[test]
        fn no_command_line_makes_the_parser_panic(words in proptest::collection::vec(word(), 0..8)) {
            let _ = Cli::try_parse_from(std::iter::once("projector".to_string()).chain(words));
        }
    }
}
