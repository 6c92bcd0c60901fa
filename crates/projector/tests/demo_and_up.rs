//! The README's main job, and `projector up`'s own key.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[test]
fn demo_reports_every_profile_and_exits_zero() {
    let output = Command::new(env!("CARGO_BIN_EXE_projector"))
        .arg("demo")
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        output.status.success(),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    for profile in ["conservative", "balanced", "aggressive"] {
        let line = stdout
            .lines()
            .find(|line| line.trim_start().starts_with(profile));
        let line = line.unwrap_or_else(|| panic!("no {profile} line in {stdout}"));
        assert!(line.contains('%'), "{line}");
    }
    assert!(stdout.contains("All reports completed"), "{stdout}");
}

/// Starts `up` without a key in the environment and returns the key it printed.
fn printed_key(data_dir: &std::path::Path) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_projector"))
        .args(["up", "--data-dir", data_dir.to_str().unwrap()])
        .args([
            "--gateway-addr",
            "127.0.0.1:0",
            "--datasvc-addr",
            "127.0.0.1:0",
            "--orchestrator-addr",
            "127.0.0.1:0",
        ])
        .env_remove("PROJECTOR_API_KEY")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let key = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|line| {
            line.trim_start()
                .strip_prefix("API key")
                .map(|key| key.trim().to_string())
        })
        .expect("up prints its API key");
    let terminated = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(terminated.success());
    assert!(
        child.wait().unwrap().success(),
        "up stops cleanly on SIGTERM"
    );
    key
}

#[test]
fn up_generates_a_key_once_and_keeps_it() {
    let directory = tempfile::tempdir().unwrap();
    let first = printed_key(directory.path());
    assert_eq!(first.len(), 48);
    assert_eq!(printed_key(directory.path()), first);
    let kept = std::fs::read_to_string(directory.path().join("api-key")).unwrap();
    assert_eq!(kept.trim(), first);
}
