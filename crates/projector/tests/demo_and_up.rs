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

/// Starts `up` (with `key` in the environment, if any), returns what it printed
/// on its API key line, and stops it.
fn printed_key(data_dir: &std::path::Path, key: Option<&str>) -> String {
    let mut command = Command::new(env!("CARGO_BIN_EXE_projector"));
    match key {
        Some(key) => command.env("PROJECTOR_API_KEY", key),
        None => command.env_remove("PROJECTOR_API_KEY"),
    };
    command.env_remove("PROJECTOR_TENANT_SECRET");
    let mut child = command
        .args(["up", "--data-dir", data_dir.to_str().unwrap()])
        .args(testkit::FREE_PORTS)
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
fn up_generates_a_key_once_keeps_it_private_and_shows_it_only_then() {
    use std::os::unix::fs::PermissionsExt;

    let directory = tempfile::tempdir().unwrap();
    let first = printed_key(directory.path(), None);
    assert_eq!(first.len(), 48, "{first}");
    let path = directory.path().join("api-key");
    let kept = std::fs::read_to_string(&path).unwrap();
    assert_eq!(kept.trim(), first);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(
        mode & 0o777,
        0o600,
        "the key file is readable by its owner only"
    );
    let secret = directory.path().join("tenant-secret");
    let mode = std::fs::metadata(&secret).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the tenant secret is its owner's only");
    let again = printed_key(directory.path(), None);
    assert!(
        !again.contains(&first) && again.contains("kept in"),
        "a kept key is not printed again: {again}"
    );

    let given = printed_key(directory.path(), Some("a-key-from-the-environment"));
    assert!(!given.contains("a-key-from-the-environment"), "{given}");
}
