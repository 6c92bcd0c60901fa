//! One configuration for every role: a file, `PROJECTOR_*` variables and flags
//! reach the running processes, `projector config` tells where each value came
//! from, and a wrong key or value stops a role at start, naming it.

use crate::support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;
use support::cluster::{ClusterOptions, TestCluster};
use support::*;

const WAIT: Duration = Duration::from_secs(30);

fn config_file(directory: &Path, text: &str) -> PathBuf {
    let path = directory.join("projector.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs `projector ARGS` to its end; its exit success and stderr.
fn run(args: &[&str], variables: &[(&str, &str)]) -> (bool, String, String) {
    let mut command = projector(args);
    command.envs(variables.iter().copied());
    let output = command.output().expect("the projector binary runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_wrong_key_or_value_stops_every_role_at_start_naming_it() {
    let directory = scratch_dir();
    let file = config_file(directory.path(), "lease_second = 20\n");
    let file = file.to_str().unwrap();
    let data_dir = directory.path().to_str().unwrap();
    for role in [
        "gateway",
        "worker",
        "orchestrator",
        "datasvc",
        "up",
        "migrate",
    ] {
        let mut args = vec![role, "--config", file];
        if role != "migrate" {
            args.extend(["--data-dir", data_dir]);
        }
        let (succeeded, _, stderr) = run(&args, &[]);
        assert!(!succeeded, "{role} started with an unknown key");
        assert!(
            stderr.contains(&format!(
                "unknown key `lease_second` in the configuration file {file}: did you mean `lease_seconds`?"
            )),
            "{role}: {stderr}"
        );
    }

    let (succeeded, _, stderr) = run(
        &["gateway", "--data-dir", data_dir],
        &[("PROJECTOR_MAX_PATHS", "2000000")],
    );
    assert!(!succeeded);
    assert!(
        stderr.contains(
            "max_paths = 2000000 (from PROJECTOR_MAX_PATHS) is out of range: allowed 1 to 1000000"
        ),
        "{stderr}"
    );

    let (succeeded, _, stderr) = run(
        &["worker", "--data-dir", data_dir],
        &[("PROJECTOR_LEASE_SECONDS", "soon")],
    );
    assert!(!succeeded);
    assert!(
        stderr.contains("lease_seconds (from PROJECTOR_LEASE_SECONDS): invalid type: found string \"soon\", expected a whole number"),
        "{stderr}"
    );

    let missing = directory.path().join("absent.toml");
    let (succeeded, _, stderr) = run(
        &["datasvc", "--data-dir", data_dir],
        &[("PROJECTOR_CONFIG", missing.to_str().unwrap())],
    );
    assert!(!succeeded);
    assert!(
        stderr.contains(&format!(
            "cannot read the configuration file {}",
            missing.display()
        )),
        "{stderr}"
    );
}

#[test]
fn projector_config_names_each_values_source_and_redacts_secrets() {
    let directory = scratch_dir();
    let file = config_file(
        directory.path(),
        "max_paths = 5000\nlease_seconds = 20\ntenant_secret = \"file-secret\"\n",
    );
    let (succeeded, stdout, stderr) = run(
        &[
            "config",
            "--role",
            "worker",
            "--config",
            file.to_str().unwrap(),
        ],
        &[
            ("PROJECTOR_LEASE_SECONDS", "30"),
            ("PROJECTOR_DATASVC_TOKEN", "variable-token"),
            ("PROJECTOR_NOT_A_KEY", "1"),
        ],
    );
    assert!(succeeded, "{stderr}");
    let line = |key: &str| {
        stdout
            .lines()
            .find(|line| {
                line.starts_with(&format!("{key} ")) || line.starts_with(&format!("# {key} "))
            })
            .unwrap_or_else(|| panic!("no {key} in\n{stdout}"))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(
        line("max_paths"),
        format!("max_paths = 5000 # {}", file.display())
    );
    assert_eq!(
        line("lease_seconds"),
        "lease_seconds = 30 # PROJECTOR_LEASE_SECONDS"
    );
    assert_eq!(
        line("datasvc_token"),
        "datasvc_token = \"(redacted)\" # PROJECTOR_DATASVC_TOKEN"
    );
    assert_eq!(line("workers"), "# workers is unset # default");
    assert!(!stdout.contains("variable-token") && !stdout.contains("file-secret"));
    assert!(
        !stdout.contains("tenant_secret"),
        "a worker has no tenants:\n{stdout}"
    );
    assert!(stdout.contains("# PROJECTOR_NOT_A_KEY is not a setting and is ignored"));
}

/// The path limit from a file reaches the gateway and the orchestrator of `up`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_path_limit_in_the_file_holds_at_the_gateway_and_the_orchestrator() {
    let directory = scratch_dir();
    let file = config_file(directory.path(), "max_paths = 5000\n");
    let projector = up(directory.path(), &["--config", file.to_str().unwrap()]);
    let gateway = projector.url("gateway");
    let orchestrator = projector.url("orchestrator");
    let asking = |paths: u64| json!({"job_id": format!("paths-{paths}"), "parameters": {"customer_id": "C-000042", "time_horizon_years": 5, "risk_profile": "balanced", "paths": paths}});

    let refused = submit(&gateway, &asking(5001)).await;
    assert_eq!(refused.status(), 422);
    let problem: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(problem["field"], "parameters.paths", "{problem}");
    assert!(
        problem["error"]
            .as_str()
            .unwrap()
            .contains("must be between 1 and 5000, got 5001"),
        "{problem}"
    );
    for role in [&gateway, &orchestrator] {
        let document = openapi_document(role).await;
        assert_eq!(
            document["components"]["schemas"]["ProjectionParameters"]["properties"]["paths"]["maximum"],
            5000,
            "{role}'s document names the limit"
        );
    }
    assert_eq!(submit(&gateway, &asking(5000)).await.status(), 202);
    let job = finished(&gateway, "paths-5000", WAIT).await;
    assert_eq!(job["status"], "completed", "{job}");

    let report = client()
        .post(format!("{orchestrator}/reports"))
        .header("x-api-key", KEY)
        .json(&json!({"customer_id": "C-000042", "time_horizon_years": 5, "risk_profile": "balanced", "paths": 5001}))
        .send()
        .await
        .unwrap();
    assert_eq!(report.status(), 422);
    let problem: serde_json::Value = report.json().await.unwrap();
    assert!(
        problem
            .to_string()
            .contains("must be between 1 and 5000, got 5001"),
        "{problem}"
    );
    projector.stop();
}

/// A worker whose file sets a lower limit than its gateway fails a stored job
/// above it for good, naming the limit, rather than running it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_applies_its_own_path_limit_to_stored_jobs() {
    let limits = tempfile::tempdir().unwrap();
    let file = config_file(limits.path(), "max_paths = 1000\n");
    let cluster = TestCluster::start(ClusterOptions {
        worker_args: vec!["--config".into(), file.to_str().unwrap().into()],
        ..ClusterOptions::default()
    })
    .await;
    let gateway = cluster.gateway_url(0);
    // 2000 paths: within the gateway's default limit, above the worker's.
    assert_eq!(
        submit(&gateway, &job_body("above", "C-000042"))
            .await
            .status(),
        202
    );
    let job = finished(&gateway, "above", WAIT).await;
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(job["attempts"], 1, "a limit is not retried: {job}");
    assert_eq!(
        job["error"], "invalid parameters.paths: must be between 1 and 1000, got 2000",
        "{job}"
    );
}
