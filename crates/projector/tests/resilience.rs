//! The cache, crashes and an unreliable data service, with real processes.

use crate::support;

use std::time::Duration;

use serde_json::Value;
use support::*;

const WAIT: Duration = Duration::from_secs(60);

fn free_address() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_saves_requests_survives_a_restart_and_shares_a_miss() {
    let directory = scratch_dir();
    let data = datasvc(directory.path(), "127.0.0.1:0");
    let datasvc_url = data.url("data");
    let projector = up(directory.path(), &["--datasvc-url", &datasvc_url]);
    let gateway = projector.url("gateway");

    submit(&gateway, &job_body("warm-1", "C-000100")).await;
    assert_eq!(
        finished(&gateway, "warm-1", WAIT).await["status"],
        "completed"
    );
    assert_eq!(datasvc_requests(&datasvc_url).await, 1);
    submit(&gateway, &job_body("warm-2", "C-000100")).await;
    assert_eq!(
        finished(&gateway, "warm-2", WAIT).await["status"],
        "completed"
    );
    assert_eq!(
        datasvc_requests(&datasvc_url).await,
        1,
        "the second job read the cache"
    );

    projector.stop();
    // Twenty actors, so that twenty jobs miss the cache at the same moment.
    let restarted = up(
        directory.path(),
        &["--datasvc-url", &datasvc_url, "--workers", "20"],
    );
    let gateway = restarted.url("gateway");
    submit(&gateway, &job_body("warm-3", "C-000100")).await;
    assert_eq!(
        finished(&gateway, "warm-3", WAIT).await["status"],
        "completed"
    );
    assert_eq!(
        datasvc_requests(&datasvc_url).await,
        1,
        "the cache is still warm after a restart"
    );

    let ids: Vec<String> = (0..20).map(|index| format!("cold-{index}")).collect();
    let mut submissions = tokio::task::JoinSet::new();
    for id in ids.clone() {
        let gateway = gateway.clone();
        submissions
            .spawn(async move { submit(&gateway, &job_body(&id, "C-000200")).await.status() });
    }
    while let Some(status) = submissions.join_next().await {
        assert_eq!(status.unwrap(), 202);
    }
    for id in &ids {
        assert_eq!(finished(&gateway, id, WAIT).await["status"], "completed");
    }
    assert_eq!(
        datasvc_requests(&datasvc_url).await,
        2,
        "20 jobs for one cold customer made one request"
    );
    restarted.stop();
    data.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_entry_is_fetched_again() {
    let directory = scratch_dir();
    let data = datasvc(directory.path(), "127.0.0.1:0");
    let datasvc_url = data.url("data");
    let projector = up(
        directory.path(),
        &["--datasvc-url", &datasvc_url, "--cache-ttl-seconds", "0"],
    );
    let gateway = projector.url("gateway");
    for id in ["ttl-1", "ttl-2"] {
        submit(&gateway, &job_body(id, "C-000300")).await;
        assert_eq!(finished(&gateway, id, WAIT).await["status"], "completed");
    }
    assert_eq!(datasvc_requests(&datasvc_url).await, 2);
    projector.stop();
    data.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_sigkill_every_accepted_job_completes_exactly_once() {
    let directory = scratch_dir();
    let options = ["--workers", "2", "--lease-seconds", "2"];
    let projector = up(directory.path(), &options);
    let gateway = projector.url("gateway");
    let ids: Vec<String> = (0..12).map(|index| format!("crash-{index}")).collect();
    for id in &ids {
        let mut body = job_body(id, "C-000400");
        body["parameters"]["paths"] = 100_000.into();
        body["parameters"]["time_horizon_years"] = 50.into();
        assert_eq!(submit(&gateway, &body).await.status(), 202);
    }
    // Wait until jobs are running, then crash.
    let deadline = std::time::Instant::now() + WAIT;
    while status(&gateway, &ids[0]).await["status"] == "queued" {
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    projector.kill();

    let restarted = up(directory.path(), &options);
    let gateway = restarted.url("gateway");
    let mut retried = 0;
    for id in &ids {
        let job = finished(&gateway, id, Duration::from_secs(120)).await;
        assert_eq!(job["status"], "completed", "{job}");
        assert!(job["result"]["projection_value"].as_f64().unwrap() > 0.0);
        let attempts = job["attempts"].as_u64().unwrap();
        assert!((1..=2).contains(&attempts), "{job}");
        retried += usize::from(attempts == 2);
    }
    assert!(
        retried >= 1,
        "the jobs running at the crash were attempted again"
    );
    restarted.stop();

    let pool = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}",
        job_store(directory.path()).display()
    ))
    .await
    .unwrap();
    let (rows, completed): (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), SUM(status = 'completed' AND result IS NOT NULL) FROM jobs",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        (rows, completed),
        (12, 12),
        "one row and one result per job"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_wait_for_the_data_service_and_fail_naming_it_when_it_stays_down() {
    let directory = scratch_dir();
    let address = free_address();
    let data = datasvc(directory.path(), &address);
    let datasvc_url = data.url("data");
    let projector = up(directory.path(), &["--datasvc-url", &datasvc_url]);
    let gateway = projector.url("gateway");

    data.kill();
    submit(&gateway, &job_body("patient", "C-000500")).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_ne!(status(&gateway, "patient").await["status"], "completed");
    let back = datasvc(directory.path(), &address);
    let job = finished(&gateway, "patient", WAIT).await;
    assert_eq!(job["status"], "completed", "{job}");
    back.kill();

    submit(&gateway, &job_body("abandoned", "C-000501")).await;
    let job: Value = finished(&gateway, "abandoned", WAIT).await;
    assert_eq!(job["status"], "failed");
    assert_eq!(job["attempts"], 3);
    let error = job["error"].as_str().unwrap();
    assert!(
        error.contains("data service at http://") && error.contains("unavailable"),
        "{error}"
    );
    projector.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_job_reports_its_progress() {
    let directory = scratch_dir();
    // A one-second lease: heartbeats, which carry the progress, every 200 ms.
    let projector = up(
        directory.path(),
        &["--workers", "1", "--lease-seconds", "1"],
    );
    let gateway = projector.url("gateway");
    let mut body = job_body("long", "C-000600");
    body["parameters"]["paths"] = 200_000.into();
    body["parameters"]["time_horizon_years"] = 50.into();
    submit(&gateway, &body).await;
    let deadline = std::time::Instant::now() + WAIT;
    let mut seen = Vec::new();
    loop {
        let job = status(&gateway, "long").await;
        let progress = job["progress"].as_f64().unwrap();
        seen.push((job["status"].as_str().unwrap().to_string(), progress));
        if job["status"] == "completed" {
            assert_eq!(progress, 1.0);
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{seen:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let partial = seen
        .iter()
        .filter(|(status, progress)| status == "processing" && *progress > 0.0 && *progress < 1.0)
        .count();
    assert!(partial > 0, "no partial progress was reported: {seen:?}");
    let progresses: Vec<f64> = seen.iter().map(|(_, progress)| *progress).collect();
    assert!(
        progresses.windows(2).all(|pair| pair[0] <= pair[1]),
        "progress went back: {seen:?}"
    );
    projector.stop();
}
