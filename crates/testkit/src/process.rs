//! A `projector` process started for a test or a measurement: the keys and
//! secrets every such process shares, the URLs it prints, and its end.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};

use crate::{DATASVC_TOKEN, TENANT_SECRET};

/// Every listener of `projector up` on a free port.
pub const FREE_PORTS: [&str; 8] = [
    "--gateway-addr",
    "127.0.0.1:0",
    "--datasvc-addr",
    "127.0.0.1:0",
    "--orchestrator-addr",
    "127.0.0.1:0",
    "--worker-addr",
    "127.0.0.1:0",
];

/// Gives `command` the tenants' `api_keys` (comma-separated), the tenant
/// secret and the data service's token that every process shares, no limit
/// on submissions (bursts are what tests and measurements send), and a free
/// port for each worker node's health and metrics.
pub fn with_test_keys<'a>(command: &'a mut Command, api_keys: &str) -> &'a mut Command {
    command
        .env("PROJECTOR_API_KEY", api_keys)
        .env("PROJECTOR_DATASVC_TOKEN", DATASVC_TOKEN)
        .env("PROJECTOR_TENANT_SECRET", TENANT_SECRET)
        .env("PROJECTOR_SUBMISSIONS_PER_SECOND", "0")
        .env("PROJECTOR_WORKER_ADDR", "127.0.0.1:0")
}

/// A running `projector` process, SIGKILLed if dropped.
pub struct Process {
    pub child: Child,
    /// The `role … http://…` lines it printed, as (role, URL without `/api`).
    pub urls: Vec<(String, String)>,
}

impl Process {
    /// Starts `command` and reads its stdout up to the line that starts with
    /// `last_line`, keeping the URLs it prints.
    pub fn start(mut command: Command, last_line: &str) -> std::io::Result<Process> {
        let mut child = command.stdout(Stdio::piped()).spawn()?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut urls = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let line = line?;
            let words: Vec<&str> = line.split_whitespace().collect();
            if let (Some(first), Some(last)) = (words.first(), words.last())
                && last.starts_with("http://")
            {
                urls.push((first.to_string(), last.trim_end_matches("/api").to_string()));
            }
            if line.trim_start().starts_with(last_line) {
                break;
            }
        }
        Ok(Process { child, urls })
    }

    /// The URL `role` printed (its first word: `gateway`, `data`, …), if any.
    pub fn find_url(&self, role: &str) -> Option<&str> {
        let (_, url) = self.urls.iter().find(|(name, _)| name == role)?;
        Some(url)
    }

    /// The URL `role` printed; a role that printed none fails the test.
    pub fn url(&self, role: &str) -> String {
        self.find_url(role)
            .unwrap_or_else(|| panic!("no {role} URL in {:?}", self.urls))
            .to_string()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits for the process to exit by itself and returns its status.
    pub fn wait_exit(mut self) -> ExitStatus {
        self.child.wait().expect("the process can be waited for")
    }

    /// SIGTERM without waiting: the process drains and stops on its own.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "SIGTERM to {} failed", self.child.id());
    }

    /// SIGTERM, then wait for the orderly exit, which must succeed.
    pub fn stop(self) {
        self.terminate();
        let exit = self.wait_exit();
        assert!(exit.success(), "projector exited with {exit}");
    }

    /// SIGKILL: a crash.
    pub fn kill(mut self) {
        self.child.kill().expect("the process can be killed");
        self.child.wait().expect("the process can be waited for");
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
