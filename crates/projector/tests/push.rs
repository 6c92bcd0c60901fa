//! Status pushed instead of polled: the long-poll (`GET /job_status/{id}?wait=S`)
//! and the event stream (`GET /jobs/{id}/events`), on `up` (SQLite, in process)
//! and across the gateways of a cluster (PostgreSQL notifications).

use crate::support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::cluster::{ClusterOptions, TestCluster};
use support::*;

const WAIT: Duration = Duration::from_secs(60);

fn job(job_id: &str, customer: &str, paths: u32) -> Value {
    json!({"job_id": job_id, "parameters": {"customer_id": customer, "time_horizon_years": 50, "risk_profile": "balanced", "paths": paths}})
}

async fn long_poll(gateway: &str, job_id: &str, wait: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(format!("{gateway}/job_status/{job_id}?wait={wait}"))
        .header("x-api-key", KEY)
        .send()
        .await
        .unwrap()
}

async fn cancel(gateway: &str, job_id: &str) -> Value {
    post_as(&format!("{gateway}/jobs/{job_id}/cancel"), KEY, &json!({})).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_stream_follows_a_job_to_its_result_and_ends() {
    let directory = scratch_dir();
    let projector = up(directory.path(), &["--workers", "1"]);
    let gateway = projector.url("gateway");
    assert_eq!(
        submit(&gateway, &job("followed", "C-000040", 200_000))
            .await
            .status(),
        202
    );
    let events = events(&gateway, "followed").await.all().await;
    let names: Vec<&str> = events.iter().map(|event| event.name.as_str()).collect();
    let last = events.last().expect("at least the final event");
    assert_eq!(last.name, "completed", "{names:?}");
    assert_eq!(last.job["status"], "completed");
    assert_eq!(last.job["progress"], 1.0);
    assert!(
        last.job["result"]["median_final"].is_number(),
        "{}",
        last.job
    );
    assert!(
        events[..events.len() - 1]
            .iter()
            .all(|event| matches!(event.name.as_str(), "status" | "progress")),
        "{names:?}"
    );
    // Every event is news, and progress never goes back within the attempt.
    for pair in events.windows(2) {
        assert_ne!(pair[0].id, pair[1].id, "{names:?}");
        let (before, after) = (&pair[0].job, &pair[1].job);
        if before["attempts"] == after["attempts"] {
            assert!(
                after["progress"].as_f64() >= before["progress"].as_f64(),
                "{before} then {after}"
            );
        }
    }
    for event in &events {
        assert_eq!(event.job["job_id"], "followed");
    }

    // A client that saw the end is told not to reconnect; one that saw only
    // the beginning gets the end at once.
    let resumed_at_end = open_events(&gateway, KEY, "followed", Some(&last.id)).await;
    assert_eq!(resumed_at_end.status(), 204);
    let mut resumed =
        event_stream(open_events(&gateway, KEY, "followed", Some(&events[0].id)).await);
    let caught_up = resumed.next().await.expect("the final event");
    assert_eq!(caught_up.name, "completed");
    assert_eq!(caught_up.id, last.id);
    assert!(
        resumed.next().await.is_none(),
        "the stream ends with the job"
    );

    // Same key and tenancy rules as the status.
    assert_eq!(
        open_events(&gateway, OTHER_KEY, "followed", None)
            .await
            .status(),
        404
    );
    assert_eq!(
        open_events(&gateway, "not-a-key", "followed", None)
            .await
            .status(),
        401
    );
    assert_eq!(
        open_events(&gateway, KEY, "no-such-job", None)
            .await
            .status(),
        404
    );
    projector.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_poll_answers_when_the_job_changes() {
    let directory = scratch_dir();
    let projector = up(directory.path(), &["--workers", "1"]);
    let gateway = projector.url("gateway");
    for (job_id, customer) in [("first", "C-000041"), ("second", "C-000042")] {
        let body = job(job_id, customer, 200_000);
        assert_eq!(submit(&gateway, &body).await.status(), 202);
    }
    // Follow "second" from queued to completed, one answer per change.
    let mut seen: Vec<Value> = vec![status(&gateway, "second").await];
    let deadline = Instant::now() + WAIT;
    while seen.last().unwrap()["status"] != "completed" {
        assert!(Instant::now() < deadline, "{seen:?}");
        let answer = long_poll(&gateway, "second", "30").await;
        assert_eq!(answer.status(), 200);
        let job: Value = answer.json().await.unwrap();
        let before = seen.last().unwrap();
        let moved = job["status"] != before["status"] || job["progress"] != before["progress"];
        assert!(
            moved,
            "a long-poll answered before its 30 s without a change: {before} then {job}"
        );
        seen.push(job);
    }
    assert!(seen.len() >= 2);

    // A finished job is answered at once; a bad wait is named.
    let started = Instant::now();
    let done: Value = long_poll(&gateway, "second", "60")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(done["status"], "completed");
    assert!(started.elapsed() < Duration::from_secs(5));
    for wait in ["61", "soon", "-1"] {
        let refused = long_poll(&gateway, "second", wait).await;
        assert_eq!(refused.status(), 400, "wait={wait}");
        let problem: Value = refused.json().await.unwrap();
        assert!(
            problem["detail"].as_str().unwrap().contains("wait=SECONDS"),
            "{problem}"
        );
    }
    assert_eq!(long_poll(&gateway, "nope", "5").await.status(), 404);
    projector.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_reach_every_gateway_of_a_cluster() {
    let mut cluster = TestCluster::start(ClusterOptions {
        gateways: 2,
        workers: 0,
        ..ClusterOptions::default()
    })
    .await;
    let (submitting, watching) = (cluster.gateway_url(0), cluster.gateway_url(1));
    assert_eq!(
        submit(&submitting, &job("to-cancel", "C-000043", 1000))
            .await
            .status(),
        202
    );
    let mut stream = events(&watching, "to-cancel").await;
    let first = stream.next().await.unwrap();
    assert_eq!(
        (first.name.as_str(), &first.job["status"]),
        ("status", &json!("queued"))
    );

    // Nothing runs it: the long-poll answers at its deadline, unchanged.
    let started = Instant::now();
    let unchanged: Value = long_poll(&watching, "to-cancel", "1")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(unchanged["status"], "queued");
    assert!(started.elapsed() >= Duration::from_secs(1));

    // Cancelled through the other gateway: pushed to this one.
    let waiting = tokio::spawn({
        let watching = watching.clone();
        async move { long_poll(&watching, "to-cancel", "30").await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    assert_eq!(
        cancel(&submitting, "to-cancel").await["status"],
        "cancelled"
    );
    let answered: Value = waiting.await.unwrap().json().await.unwrap();
    assert_eq!(answered["status"], "cancelled");
    let pushed = stream.next().await.unwrap();
    assert_eq!(pushed.name, "cancelled");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(stream.next().await.is_none());

    // A worker process started now runs the next one: its claim and its
    // result cross processes too.
    assert_eq!(
        submit(&submitting, &job("to-run", "C-000044", 100_000))
            .await
            .status(),
        202
    );
    let mut stream = events(&watching, "to-run").await;
    assert_eq!(stream.next().await.unwrap().job["status"], "queued");
    cluster.add_worker("node-1", &[]);
    let events = stream.all().await;
    let names: Vec<&str> = events.iter().map(|event| event.name.as_str()).collect();
    assert_eq!(names.first(), Some(&"status"), "{names:?}");
    assert_eq!(events[0].job["status"], "processing", "{names:?}");
    assert_eq!(names.last(), Some(&"completed"), "{names:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_job_cancelled_on_another_gateway_frees_its_worker_within_a_second() {
    let mut cluster = TestCluster::start(ClusterOptions {
        gateways: 2,
        workers: 0,
        ..ClusterOptions::default()
    })
    .await;
    let (worker_side, cancelling) = (cluster.gateway_url(0), cluster.gateway_url(1));
    // One actor and a long lease: without the push, the worker would learn of
    // the cancellation only at its next heartbeat, three seconds apart.
    cluster.add_worker(
        "node-1",
        &[
            "--workers".into(),
            "1".into(),
            "--lease-seconds".into(),
            "15".into(),
        ],
    );
    cluster.until_membership_settled(1).await;
    let database = sqlx::PgPool::connect(&cluster.roles_database_url)
        .await
        .unwrap();
    // The heaviest job a client may ask for runs for about a second or more
    // here: try until one is caught running (one that finished first answers 409).
    for attempt in 0..10 {
        let (long, next) = (format!("long-{attempt}"), format!("next-{attempt}"));
        for (job_id, customer) in [(&long, "C-000045"), (&next, "C-000046")] {
            let body = job(job_id, customer, 200_000);
            assert_eq!(submit(&worker_side, &body).await.status(), 202);
        }
        let mut stream = events(&worker_side, &long).await;
        while stream.next().await.unwrap().job["status"] != "processing" {}
        let sent = jobstore::now_millis();
        let cancelled = client()
            .post(format!("{cancelling}/jobs/{long}/cancel"))
            .header("x-api-key", KEY)
            .send()
            .await
            .unwrap();
        if cancelled.status() == 409 {
            finished(&worker_side, &next, WAIT).await;
            continue;
        }
        assert_eq!(cancelled.status(), 200);
        let next_job = finished(&worker_side, &next, WAIT).await;
        assert_eq!(next_job["status"], "completed");
        // The actor was free for the next job within a second of the cancellation.
        let (started_at,): (i64,) =
            sqlx::query_as("SELECT started_at FROM jobstore.jobs WHERE id = $1")
                .bind(&next)
                .fetch_one(&database)
                .await
                .unwrap();
        assert!(
            started_at - sent < 1000,
            "the next job started {} ms after the cancellation",
            started_at - sent
        );
        let long_job = status(&worker_side, &long).await;
        assert_eq!(long_job["status"], "cancelled", "{long_job}");
        assert!(long_job["result"].is_null(), "{long_job}");
        let log = std::fs::read_to_string(cluster.directory.path().join("node-1.log")).unwrap();
        assert!(log.contains("job cancelled; stopping the attempt"), "{log}");
        database.close().await;
        return;
    }
    panic!("no job was caught running in ten tries");
}
