//! A data service that fails: the workers' retries, circuit breaker, bulkhead
//! and stale-if-error, through a fault-injection proxy the test controls
//! between `projector up`'s worker and a real `projector datasvc`.

use crate::support;

use std::time::{Duration, Instant};

use database::testing::TestDatabase;
use serde_json::Value;
use support::faults::{FaultProxy, Faults};
use support::{Process, finished, job_body, status, submit, up};

/// A data service, a proxy in front of it, and `up` reading through the proxy.
async fn behind_a_proxy(
    data_dir: &std::path::Path,
    extra: &[&str],
) -> (Process, FaultProxy, Process) {
    let datasvc = support::datasvc(data_dir, "127.0.0.1:0");
    let proxy = FaultProxy::start(&datasvc.url("data")).await;
    let mut args = vec!["--datasvc-url", proxy.url.as_str()];
    args.extend_from_slice(extra);
    let system = up(data_dir, &args);
    (datasvc, proxy, system)
}

async fn until_finished(gateway: &str, job_ids: &[String], within: Duration) -> Vec<Value> {
    let mut jobs = Vec::new();
    for job_id in job_ids {
        jobs.push(finished(gateway, job_id, within).await);
    }
    jobs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sqlite_jobs_complete_when_a_third_of_the_data_service_answers_fail() {
    jobs_complete_when_a_third_of_the_data_service_answers_fail(&[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_jobs_complete_when_a_third_of_the_data_service_answers_fail() {
    let database = TestDatabase::create().await;
    jobs_complete_when_a_third_of_the_data_service_answers_fail(&[
        "--database-url",
        database.url(),
    ])
    .await;
}

/// 30% of the data service's answers are resets or 500s: 500 jobs over 50
/// customers all complete, each with one stored result.
async fn jobs_complete_when_a_third_of_the_data_service_answers_fail(stores: &[&str]) {
    let data_dir = support::scratch_dir();
    // No cache: every job asks the data service.
    let mut args = vec!["--cache-ttl-seconds", "0"];
    args.extend_from_slice(stores);
    let (_datasvc, proxy, system) = behind_a_proxy(data_dir.path(), &args).await;
    let gateway = system.url("gateway");
    proxy.set(Faults {
        latency: Duration::from_millis(2),
        reset_rate: 0.15,
        error_rate: 0.15,
        black_hole: false,
    });
    let before = proxy.requests();
    let job_ids: Vec<String> = (0..500).map(|n| format!("flaky-{n}")).collect();
    for (n, job_id) in job_ids.iter().enumerate() {
        let customer = format!("C-{:06}", 1 + n % 50);
        assert_eq!(
            submit(&gateway, &job_body(job_id, &customer))
                .await
                .status(),
            202
        );
    }
    let jobs = until_finished(&gateway, &job_ids, Duration::from_secs(240)).await;
    for job in &jobs {
        assert_eq!(job["status"], "completed", "{job}");
    }
    let requests = proxy.requests() - before;
    println!("500 jobs completed through {requests} data-service requests");
    assert!(requests >= 500, "every job asked the data service");
    let log = std::fs::read_to_string(data_dir.path().join("up.log")).unwrap();
    let stored = log.matches("job attempt recorded").count();
    let lost_leases = log.matches("lease lost before the outcome").count();
    assert_eq!(lost_leases, 0, "no attempt ran alongside another");
    assert!(stored >= 500);
}

/// The data service black-holed for a minute: a cached customer's job
/// completes on its expired entry, marked stale; an uncached customer's job
/// fails with the reason (or completes once the service is back), and while
/// the breaker is open the node sends at most a probe or so a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_black_holed_data_service_serves_stale_and_is_probed_gently() {
    const BLACK_HOLE: Duration = Duration::from_secs(60);
    let data_dir = support::scratch_dir();
    let (_datasvc, proxy, system) =
        behind_a_proxy(data_dir.path(), &["--cache-ttl-seconds", "1"]).await;
    let gateway = system.url("gateway");
    let cached = "C-000031";
    let warm = finished_job(&gateway, "warm", cached).await;
    assert_eq!(warm["result"]["portfolio_stale"], false);
    tokio::time::sleep(Duration::from_millis(1_200)).await;

    proxy.set(Faults {
        black_hole: true,
        ..Faults::default()
    });
    let dark_from = Instant::now();
    assert_eq!(
        submit(&gateway, &job_body("stale", cached)).await.status(),
        202
    );
    let mut uncached = Vec::new();
    for n in 0..10 {
        let job_id = format!("uncached-{n}");
        let body = job_body(&job_id, &format!("C-{:06}", 500 + n));
        assert_eq!(submit(&gateway, &body).await.status(), 202);
        uncached.push(job_id);
    }
    let stale = finished(&gateway, "stale", Duration::from_secs(50)).await;
    assert_eq!(stale["status"], "completed", "{stale}");
    assert_eq!(stale["result"]["portfolio_stale"], true, "{stale}");
    assert_eq!(
        stale["result"]["median_final"], warm["result"]["median_final"],
        "the same portfolio, so the same numbers"
    );

    // The breaker has opened by now: count what reaches the proxy.
    let counted_from = (Instant::now(), proxy.requests());
    tokio::time::sleep(BLACK_HOLE.saturating_sub(dark_from.elapsed())).await;
    let seconds = counted_from.0.elapsed().as_secs_f64();
    let sent = proxy.requests() - counted_from.1;
    println!("{sent} requests in {seconds:.1} s while the data service was a black hole");
    assert!(
        sent as f64 / seconds <= 2.0,
        "{sent} requests in {seconds:.1} s"
    );
    for job_id in &uncached {
        let job = status(&gateway, job_id).await;
        match job["status"].as_str() {
            Some("failed") => {
                let error = job["error"].as_str().unwrap();
                assert!(error.contains("data service"), "{error}");
            }
            Some("queued" | "processing") => {}
            other => panic!("{job_id}: {other:?} while the data service was away"),
        }
    }

    proxy.set(Faults::default());
    for job_id in &uncached {
        let job = finished(&gateway, job_id, Duration::from_secs(60)).await;
        assert!(
            matches!(job["status"].as_str(), Some("completed" | "failed")),
            "{job}"
        );
    }
    let after = finished_job(&gateway, "after", "C-000500").await;
    assert_eq!(after["status"], "completed");
    assert_eq!(after["result"]["portfolio_stale"], false);
}

async fn finished_job(gateway: &str, job_id: &str, customer: &str) -> Value {
    assert_eq!(
        submit(gateway, &job_body(job_id, customer)).await.status(),
        202
    );
    let job = finished(gateway, job_id, Duration::from_secs(90)).await;
    assert_eq!(job["status"], "completed", "{job}");
    job
}
