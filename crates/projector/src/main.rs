//! The `projector` binary: one subcommand per role.

mod portfolio;
mod simulate;
mod table;

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
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one projection locally and print its result.
    Simulate(simulate::SimulateArgs),
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
    let outcome = match cli.command {
        Command::Simulate(args) => simulate::run(args),
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
