//! `projector up` on a fresh directory, on free ports, for a measurement.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::common::KEY;

pub struct Cluster {
    pub child: Child,
    pub gateway: String,
    pub datasvc: String,
    pub directory: tempfile::TempDir,
}

impl Cluster {
    pub fn start(binary: &PathBuf, extra: &[&str]) -> Result<Cluster> {
        let directory = tempfile::tempdir()?;
        let mut child = Command::new(binary)
            .args(["up", "--data-dir"])
            .arg(directory.path())
            .args([
                "--gateway-addr",
                "127.0.0.1:0",
                "--datasvc-addr",
                "127.0.0.1:0",
                "--orchestrator-addr",
                "127.0.0.1:0",
            ])
            .args(extra)
            .env("PROJECTOR_API_KEY", KEY)
            .env("PROJECTOR_SUBMISSIONS_PER_SECOND", "0")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| {
                format!(
                    "cannot start {}; build it with cargo build --release",
                    binary.display()
                )
            })?;
        let output = read_urls(&mut child)?;
        let find = |role: &str| {
            output
                .iter()
                .find(|(name, _)| name == role)
                .map(|(_, url)| url.clone())
                .with_context(|| format!("no {role} URL printed"))
        };
        Ok(Cluster {
            gateway: find("gateway")?,
            datasvc: find("data")?,
            child,
            directory,
        })
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_urls(child: &mut Child) -> Result<Vec<(String, String)>> {
    use std::io::{BufRead, BufReader};
    let stdout = child.stdout.take().context("no stdout")?;
    let mut urls = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        let words: Vec<&str> = line.split_whitespace().collect();
        if let (Some(first), Some(last)) = (words.first(), words.last())
            && last.starts_with("http://")
        {
            urls.push((first.to_string(), last.trim_end_matches("/api").to_string()));
        }
        if line.trim_start().starts_with("API key") {
            return Ok(urls);
        }
    }
    bail!("projector exited before printing its URLs")
}
