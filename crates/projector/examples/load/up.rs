//! `projector up` on a fresh directory, on free ports, for a measurement.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{Context, Result};
use testkit::{FREE_PORTS, KEY, Process};

pub struct Cluster {
    pub process: Process,
    pub gateway: String,
    pub datasvc: String,
    pub directory: tempfile::TempDir,
}

impl Cluster {
    pub fn start(binary: &PathBuf, extra: &[&str]) -> Result<Cluster> {
        let directory = tempfile::tempdir()?;
        let mut command = Command::new(binary);
        command
            .args(["up", "--data-dir"])
            .arg(directory.path())
            .args(FREE_PORTS)
            .args(extra);
        testkit::with_test_keys(&mut command, KEY)
            .env("RUST_LOG", "warn")
            .stderr(Stdio::null());
        let process = Process::start(command, "API key").with_context(|| {
            format!(
                "cannot start {}; build it with cargo build --release",
                binary.display()
            )
        })?;
        let url = |role: &str| {
            process
                .find_url(role)
                .map(str::to_string)
                .with_context(|| format!("no {role} URL printed"))
        };
        Ok(Cluster {
            gateway: url("gateway")?,
            datasvc: url("data")?,
            process,
            directory,
        })
    }
}
