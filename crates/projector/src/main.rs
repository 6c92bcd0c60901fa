//! The `projector` binary: one subcommand per role.

mod demo;
mod flags;
mod listen;
mod migrate;
mod portfolio;
mod process;
mod role;
mod settings;
mod signals;
mod simulate;
mod stores;
mod table;
mod up;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use serde::Serialize;

use crate::role::Role;
use crate::settings::{LogFormat, Settings};

#[derive(Debug, Parser)]
#[command(
    name = "projector",
    version,
    about = "Financial projections off the request path",
    after_help = "Every option of a role is also a key of the configuration file and a PROJECTOR_<KEY> variable (--lease-seconds, lease_seconds, PROJECTOR_LEASE_SECONDS); flags override variables, which override the file. `projector config --role ROLE` prints the values in effect."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// A TOML file of settings, such as docs/projector.toml; PROJECTOR_*
    /// variables and flags override its values.
    #[arg(long, env = "PROJECTOR_CONFIG", value_name = "FILE", global = true)]
    config: Option<PathBuf>,
    /// How service logs are written on stderr: `text` for people, `json` (one
    /// object per line) for a log collector [default: text].
    #[arg(long, value_enum, global = true)]
    log_format: Option<LogFormat>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one projection locally and print its result.
    Simulate(simulate::SimulateArgs),
    /// Start every role on this machine with embedded storage.
    Up(flags::Flags<flags::Up>),
    /// Start everything on free ports, request one report per risk profile, print them, exit.
    Demo,
    /// Run a gateway: accepts jobs and answers their status from the job store.
    Gateway(flags::Flags<flags::Gateway>),
    /// Run a worker node: claims jobs of its partitions and runs them.
    Worker(flags::Flags<flags::Worker>),
    /// Run the orchestrator: reports, dispatched to a gateway over HTTP.
    Orchestrator(flags::Flags<flags::Orchestrator>),
    /// Run the data service alone.
    Datasvc(flags::Flags<flags::Datasvc>),
    /// Bring a database to this release's schema.
    Migrate(flags::MigrateFlags),
    /// Print the settings in effect, where each came from, secrets redacted.
    Config {
        /// Only the keys this role reads.
        #[arg(long, value_enum)]
        role: Option<Role>,
    },
}

/// The flags of a command, with the global ones: the last settings layer.
#[derive(Serialize)]
struct Given<'a, F: Serialize> {
    #[serde(flatten)]
    flags: &'a F,
    log_format: Option<LogFormat>,
}

/// A command without flags of its own.
#[derive(Serialize)]
struct NoFlags {}

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
    let outcome = match &cli.command {
        Command::Simulate(args) => simulate::run(args),
        Command::Up(flags) => serve(&cli, flags, "info", up::up),
        Command::Demo => serve(&cli, &NoFlags {}, "warn", |_| demo::demo()),
        Command::Gateway(flags) => serve_role(&cli, flags, Role::Gateway),
        Command::Worker(flags) => serve_role(&cli, flags, Role::Worker),
        Command::Orchestrator(flags) => serve_role(&cli, flags, Role::Orchestrator),
        Command::Datasvc(flags) => serve_role(&cli, flags, Role::Datasvc),
        Command::Migrate(flags) => serve(&cli, flags, "warn", |settings| {
            migrate::migrate(settings, flags.store)
        }),
        Command::Config { role } => show_config(&cli, *role),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        // As clap's own: the command cannot run as given.
        Err(error) if error.is::<Misconfigured>() => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
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

/// Settings that cannot be used.
#[derive(Debug)]
struct Misconfigured;

impl std::fmt::Display for Misconfigured {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("the settings cannot be used")
    }
}

fn load(cli: &Cli, flags: &impl Serialize) -> anyhow::Result<settings::Loaded> {
    let given = Given {
        flags,
        log_format: cli.log_format,
    };
    settings::load(cli.config.as_deref(), &given).context(Misconfigured)
}

fn show_config(cli: &Cli, role: Option<Role>) -> anyhow::Result<()> {
    use std::io::Write;
    let loaded = load(cli, &NoFlags {})?;
    let mut shown = settings::show(&loaded, role);
    for name in &loaded.ignored {
        shown.push_str(&format!("# {name} is not a setting and is ignored\n"));
    }
    std::io::stdout().write_all(shown.as_bytes())?;
    Ok(())
}

/// Runs one role in this process until the first signal.
fn serve_role(cli: &Cli, flags: &impl Serialize, role: Role) -> anyhow::Result<()> {
    serve(cli, flags, "info", |settings| process::run(role, settings))
}

/// Runs a service command with its settings, on a multi-threaded runtime,
/// with logs on stderr at a default level (`RUST_LOG` overrides it).
fn serve<F, Fut>(
    cli: &Cli,
    flags: &impl Serialize,
    default_level: &str,
    command: F,
) -> anyhow::Result<()>
where
    F: FnOnce(Settings) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let loaded = load(cli, flags)?;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match loaded.settings.log_format {
        LogFormat::Json => logs.json().flatten_event(true).init(),
        // Colour codes only for a person at a terminal, not in log files.
        LogFormat::Text => logs
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
    }
    for variable in &loaded.ignored {
        tracing::warn!(%variable, "not a setting, ignored: `projector config` lists every key");
    }
    stores::private_files();
    service::server::raise_open_file_limit();
    // Before any role counts anything.
    service::metrics::handle();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| anyhow::anyhow!("cannot start the async runtime: {error}"))?;
    runtime.block_on(command(loaded.settings))
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
