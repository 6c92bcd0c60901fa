//! What an operator relies on: metrics that count what happened, the scrape
//! token, and the shared layers every role answers through.

use crate::support;

use std::time::Duration;

use serde_json::json;
use support::cluster::{ClusterOptions, TestCluster};
use support::*;

const SCRAPE_TOKEN: &str = "test-scrape-token";
const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_a_known_workload_behind_the_scrape_token() {
    let directory = scratch_dir();
    let projector = up(directory.path(), &["--metrics-token", SCRAPE_TOKEN]);
    let gateway = projector.url("gateway");
    let datasvc = projector.url("data");

    // Ten jobs for one customer, and one idempotent replay of the first.
    let ids: Vec<String> = (0..10).map(|index| format!("metered-{index}")).collect();
    for id in &ids {
        assert_eq!(
            submit(&gateway, &job_body(id, "C-000077")).await.status(),
            202
        );
    }
    let replay = submit(&gateway, &job_body(&ids[0], "C-000077")).await;
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    for id in &ids {
        let job = finished(&gateway, id, WAIT).await;
        assert_eq!(job["status"], "completed", "{job}");
    }

    let refused = client()
        .get(format!("{gateway}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401, "a scrape without the token");
    let wrong = client()
        .get(format!("{gateway}/metrics"))
        .bearer_auth("not-the-token")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401, "a scrape with another token");

    let text = scrape(&gateway, Some(SCRAPE_TOKEN)).await;
    let value = |name: &str, labels: &[(&str, &str)]| {
        sample(&text, name, labels).unwrap_or_else(|| panic!("no {name} {labels:?} in\n{text}"))
    };
    assert!(text.contains("# HELP projector_jobs_submitted_total"));
    assert!(text.contains("# TYPE projector_http_request_duration_seconds histogram"));
    assert_eq!(
        value("projector_jobs_submitted_total", &[]),
        10.0,
        "replays are not jobs"
    );
    assert_eq!(value("projector_jobs_claimed_total", &[]), 10.0);
    assert_eq!(value("projector_jobs_completed_total", &[]), 10.0);
    assert_eq!(value("projector_jobs_failed_total", &[]), 0.0);
    assert_eq!(value("projector_jobs", &[("status", "queued")]), 0.0);
    assert_eq!(value("projector_jobs", &[("status", "processing")]), 0.0);
    assert_eq!(value("projector_job_attempt_count", &[]), 10.0);
    assert_eq!(
        value("projector_job_attempt_sum", &[]),
        10.0,
        "every job on its first attempt"
    );
    assert_eq!(
        value("projector_job_commit_to_claim_seconds_count", &[]),
        10.0
    );
    assert_eq!(
        value(
            "projector_job_run_seconds_count",
            &[("outcome", "completed")]
        ),
        10.0
    );

    // Each request once, under its route's template, never its raw path.
    let submissions = [
        ("method", "POST"),
        ("route", "/generate_projection"),
        ("status", "202"),
    ];
    assert_eq!(
        value(
            "projector_http_request_duration_seconds_count",
            &submissions
        ),
        11.0
    );
    assert!(
        value(
            "projector_http_request_duration_seconds_count",
            &[("route", "/job_status/{job_id}"), ("status", "200")]
        ) >= 10.0
    );
    assert!(!text.contains("route=\"/job_status/metered"), "{text}");

    // One customer: the first lookup misses and later ones hit, one lookup a job.
    let hits = value("projector_cache_hits_total", &[]);
    let misses = value("projector_cache_misses_total", &[]);
    assert!(hits >= 1.0, "{hits} hits");
    assert_eq!(hits + misses, 10.0);
    assert!(
        value(
            "projector_datasvc_request_duration_seconds_count",
            &[("outcome", "answered")]
        ) >= 1.0
    );
    assert_eq!(value("projector_datasvc_request_errors_total", &[]), 0.0);
    assert!(value("datasvc_portfolio_requests_total", &[]) >= 1.0);

    // The same inputs are computed once (twice if two ran at once) and reused.
    let path_steps_per_job = 2000.0 * 10.0 * 12.0;
    let computed = value("projector_engine_path_steps_total", &[]) / path_steps_per_job;
    assert!(computed >= 1.0 && computed.fract() == 0.0, "{computed}");
    assert_eq!(
        computed + value("projector_results_reused_total", &[]),
        10.0
    );
    assert!(value("projector_engine_path_steps_per_second", &[]) > 0.0);

    // Every listener of the process serves the same registry.
    let from_datasvc = scrape(&datasvc, Some(SCRAPE_TOKEN)).await;
    assert_eq!(
        sample(&from_datasvc, "projector_jobs_submitted_total", &[]),
        Some(10.0)
    );
    projector.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_outlives_the_request_timeout_gets_a_problem() {
    let directory = scratch_dir();
    let projector = up(directory.path(), &["--request-timeout-seconds", "1"]);
    let datasvc = projector.url("data");
    // A long-poll of the change feed with nothing to come waits past the timeout.
    let feed = datasvc_get(&datasvc, "/api/changes").await;
    let latest = &feed["latest"];
    let started = std::time::Instant::now();
    let response = client()
        .get(format!("{datasvc}/api/changes?after={latest}&wait=5"))
        .bearer_auth(DATASVC_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert!(started.elapsed() < Duration::from_secs(4));
    assert!(response.headers().contains_key("x-request-id"));
    let problem: serde_json::Value = response.json().await.unwrap();
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("was not answered within 1 s"),
        "{problem}"
    );
    projector.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_report_s_trace_runs_through_every_role_s_logs() {
    let cluster = TestCluster::start(ClusterOptions {
        orchestrator: true,
        ..ClusterOptions::default()
    })
    .await;
    let orchestrator = cluster.orchestrator_url();
    let created = post_as(
        &format!("{orchestrator}/reports"),
        KEY,
        &json!({"customer_id": "C-000043", "time_horizon_years": 5, "risk_profile": "balanced"}),
    )
    .await;
    let id = created["id"].as_str().unwrap();
    completed_report(&orchestrator, KEY, id, WAIT).await;

    // The report's id is its trace's id.
    let trace_id = id.replace('-', "");
    let logs = cluster.directory.path();
    let lines_of = |file: &str| -> Vec<String> {
        std::fs::read_to_string(logs.join(file))
            .unwrap()
            .lines()
            .filter(|line| line.contains(&format!("trace_id={trace_id}")))
            .map(String::from)
            .collect()
    };
    let traced = |file: &str, what: &str| {
        let lines = lines_of(file);
        assert!(
            lines.iter().any(|line| line.contains(what)),
            "no line of {file} names trace {trace_id} and {what:?}; traced lines: {lines:#?}"
        );
    };
    traced("orchestrator.log", "report dispatched");
    traced("gateway-0.log", "path=/generate_projection");
    traced("node-1.log", "job started");
    traced("node-1.log", "job attempt recorded");
    traced("datasvc.log", "path=/api/customers/C-000043/portfolio");
}

/// A clean stop of `up` on PostgreSQL, after a job ran, logs nothing at warning
/// or above: the notification listeners end with the pools they listen on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_stop_on_postgres_logs_no_warning() {
    let database = database::testing::TestDatabase::create().await;
    let directory = scratch_dir();
    let projector = up(
        directory.path(),
        &["--database-url", database.url(), "--log-format", "json"],
    );
    let gateway = projector.url("gateway");
    assert_eq!(
        submit(&gateway, &job_body("quiet-stop", "C-000011"))
            .await
            .status(),
        202
    );
    assert_eq!(
        finished(&gateway, "quiet-stop", WAIT).await["status"],
        "completed"
    );
    let log = directory.path().join("up.log");
    let before = std::fs::read_to_string(&log).unwrap().len();
    projector.stop();
    let written = std::fs::read_to_string(&log).unwrap();
    let loud: Vec<&str> = written[before..]
        .lines()
        .filter(|line| {
            let level = serde_json::from_str::<serde_json::Value>(line)
                .map(|entry| entry["level"].as_str().unwrap_or_default().to_string())
                .unwrap_or_default();
            level == "WARN" || level == "ERROR"
        })
        .collect();
    assert!(loud.is_empty(), "the stop logged: {loud:#?}");
    assert!(
        written[before..].contains("\"level\""),
        "the stop logged nothing at all, so the check saw nothing: {}",
        &written[before..]
    );
}
