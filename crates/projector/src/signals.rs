//! SIGINT and SIGTERM: the first starts an orderly shutdown, a second exits at once.

use anyhow::{Context, Result};
use tokio::signal::unix::{Signal, SignalKind, signal};

/// Exit status after a second signal: the conventional 128 + SIGINT.
const FORCED_EXIT: i32 = 130;

/// Listened for from the moment it is made: a signal that arrives while the
/// roles start (or right after the URLs are printed) is not lost.
pub struct Signals {
    terminate: Signal,
    interrupt: Signal,
}

impl Signals {
    pub fn install() -> Result<Self> {
        Ok(Signals {
            terminate: signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?,
            interrupt: signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?,
        })
    }

    async fn next(&mut self) {
        tokio::select! {
            _ = self.terminate.recv() => {}
            _ = self.interrupt.recv() => {}
        }
    }

    /// Waits for the first signal; from then on a second one ends the process
    /// without waiting for the orderly shutdown.
    pub async fn first(mut self) {
        self.next().await;
        tracing::info!("shutting down (a second signal exits at once)");
        tokio::spawn(async move {
            self.next().await;
            eprintln!("second signal: exiting without waiting for the shutdown to finish");
            std::process::exit(FORCED_EXIT);
        });
    }
}
