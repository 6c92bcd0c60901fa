//! The cluster: every role its own process, one PostgreSQL database of the
//! test's own, and what a cluster must survive (a worker or a gateway killed,
//! the database gone for ten seconds), with locality measured in data-service
//! requests.

use crate::support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::cluster::{ClusterOptions, TestCluster};
use support::*;

const WAIT: Duration = Duration::from_secs(120);

fn trivial_job(job_id: &str, customer: &str) -> Value {
    json!({"job_id": job_id, "parameters": {"customer_id": customer, "time_horizon_years": 1, "risk_profile": "balanced", "paths": 100}})
}

fn heavy_job(job_id: &str, customer: &str) -> Value {
    json!({"job_id": job_id, "parameters": {"customer_id": customer, "time_horizon_years": 50, "risk_profile": "balanced", "paths": 100000}})
}

fn customer(number: usize) -> String {
    format!("C-{number:06}")
}

/// Submits every job, `concurrency` at a time, round robin over the gateways.
async fn submit_all(gateways: &[String], jobs: Vec<Value>, concurrency: usize) {
    let semaphore = std::sync::Arc::new(tokio::sync::Semaphore::new(concurrency));
    let mut tasks = tokio::task::JoinSet::new();
    for (index, body) in jobs.into_iter().enumerate() {
        let gateway = gateways[index % gateways.len()].clone();
        let permit = semaphore.clone().acquire_owned().await.unwrap();
        tasks.spawn(async move {
            let response = submit(&gateway, &body).await;
            drop(permit);
            assert_eq!(response.status(), 202, "{body}");
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
}

/// Waits until `count` jobs are finished in the database.
async fn until_finished(pool: &sqlx::PgPool, count: i64, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let (finished,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM jobstore.jobs WHERE status IN ('completed', 'failed', 'cancelled')",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        if finished >= count {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{finished} of {count} jobs finished"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What the database holds of the cluster's jobs.
struct Tally {
    rows: i64,
    /// Completed with a stored result.
    completed: i64,
    /// Attempts of every job together.
    attempts: i64,
    /// Jobs still under somebody's lease.
    leased: i64,
}

async fn tally(pool: &sqlx::PgPool) -> Tally {
    let (rows, completed, attempts, leased) = sqlx::query_as(
        "SELECT COUNT(*), COUNT(*) FILTER (WHERE status = 'completed' AND result IS NOT NULL),
                COALESCE(SUM(attempts), 0)::BIGINT, COUNT(*) FILTER (WHERE lease_owner IS NOT NULL)
         FROM jobstore.jobs",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    Tally {
        rows,
        completed,
        attempts,
        leased,
    }
}

/// The node holding the job's lease, if any.
async fn lease_owner(pool: &sqlx::PgPool, job_id: &str) -> Option<String> {
    let owner: Option<(Option<String>,)> =
        sqlx::query_as("SELECT lease_owner FROM jobstore.jobs WHERE id = $1")
            .bind(job_id)
            .fetch_optional(pool)
            .await
            .unwrap();
    owner.and_then(|(owner,)| owner)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_runs_every_job_once_near_its_cache_and_any_gateway_answers() {
    let mut cluster = TestCluster::start(ClusterOptions {
        gateways: 2,
        workers: 3,
        worker_args: vec!["--lease-seconds".into(), "2".into()],
        orchestrator: true,
        ..ClusterOptions::default()
    })
    .await;
    let gateways = vec![cluster.gateway_url(0), cluster.gateway_url(1)];
    let jobs: Vec<Value> = (0..1000)
        .map(|index| trivial_job(&format!("job-{index}"), &customer(index % 100 + 1)))
        .collect();
    submit_all(&gateways, jobs, 32).await;
    let pool = cluster.inspect().await;
    until_finished(&pool, 1000, WAIT).await;

    let Tally {
        rows,
        completed,
        attempts,
        ..
    } = tally(&pool).await;
    assert_eq!(
        (rows, completed, attempts),
        (1000, 1000, 1000),
        "each job ran once"
    );
    for index in (0..1000).step_by(7) {
        // Submitted through one gateway, read through the other.
        let other = &gateways[(index + 1) % 2];
        let job = status(other, &format!("job-{index}")).await;
        assert_eq!(job["status"], "completed", "{job}");
    }
    let requests = datasvc_requests(&cluster.datasvc_url()).await;
    assert!(
        requests <= 110,
        "{requests} data-service requests for 100 customers on 3 nodes (round robin makes about 300)"
    );

    // A node dies: once the others see it gone, its partitions are theirs,
    // and only its customers are fetched again.
    let live: Vec<String> = ["node-1", "node-2", "node-3"].map(String::from).to_vec();
    let dead_share: HashSet<u32> = worker::owned_partitions(&live, "node-3")
        .into_iter()
        .collect();
    let moved_customers = (1..=100)
        .filter(|&number| dead_share.contains(&jobstore::partition_of(&customer(number))))
        .count() as u64;
    cluster.kill_worker("node-3");
    cluster
        .until_node_forgotten("node-3", Duration::from_secs(2))
        .await;
    let jobs: Vec<Value> = (1000..2000)
        .map(|index| trivial_job(&format!("job-{index}"), &customer(index % 100 + 1)))
        .collect();
    submit_all(&gateways, jobs, 32).await;
    until_finished(&pool, 2000, WAIT).await;
    let after = datasvc_requests(&cluster.datasvc_url()).await;
    assert!(
        after - requests <= moved_customers + 10,
        "{} new requests after node-3 died; it owned {moved_customers} customers",
        after - requests
    );

    // Reports through the orchestrator, which reaches a gateway over HTTP only.
    let orchestrator = cluster.orchestrator_url();
    let created = post_as(
        &format!("{orchestrator}/reports"),
        OTHER_KEY,
        &json!({"customer_id": "C-000042", "time_horizon_years": 5, "risk_profile": "aggressive"}),
    )
    .await;
    let id = created["id"].as_str().unwrap();
    let report = completed_report(&orchestrator, OTHER_KEY, id, WAIT).await;
    assert!(report["result"]["projection_value"].as_f64().unwrap() > 0.0);
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_worker_s_jobs_finish_elsewhere_once_and_a_killed_gateway_is_not_missed() {
    let mut cluster = TestCluster::start(ClusterOptions {
        gateways: 2,
        workers: 2,
        worker_args: [
            "--lease-seconds",
            "2",
            "--workers",
            "1",
            "--steal-after-ms",
            "500",
        ]
        .map(String::from)
        .to_vec(),
        ..ClusterOptions::default()
    })
    .await;
    let gateways = vec![cluster.gateway_url(0), cluster.gateway_url(1)];
    let ids: Vec<String> = (0..6).map(|index| format!("heavy-{index}")).collect();
    let jobs = ids
        .iter()
        .enumerate()
        .map(|(index, id)| heavy_job(id, &customer(index + 1)))
        .collect();
    submit_all(&gateways, jobs, 6).await;
    let pool = cluster.inspect().await;
    // Kill node-1 while it runs a job.
    let deadline = Instant::now() + WAIT;
    let victim_job: String = loop {
        let running: Option<(String,)> = sqlx::query_as(
            "SELECT id FROM jobstore.jobs WHERE status = 'processing' AND lease_owner = 'node-1' LIMIT 1",
        )
        .fetch_optional(&pool)
        .await
        .unwrap();
        if let Some((id,)) = running {
            break id;
        }
        assert!(Instant::now() < deadline, "node-1 never ran a job");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    cluster.kill_worker("node-1");
    cluster.gateways.remove(0).kill();
    let survivor = cluster.gateway_url(0);
    for id in &ids {
        let job = finished(&survivor, id, WAIT).await;
        assert_eq!(job["status"], "completed", "{job}");
    }
    let victim = status(&survivor, &victim_job).await;
    assert_eq!(victim["attempts"], 2, "{victim}");
    let Tally {
        rows,
        completed,
        leased,
        ..
    } = tally(&pool).await;
    assert_eq!(
        (rows, completed, leased),
        (6, 6, 0),
        "one row and one result per job"
    );
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_gone_for_ten_seconds_costs_503s_and_loses_nothing() {
    let cluster = TestCluster::start(ClusterOptions {
        gateways: 1,
        workers: 1,
        worker_args: ["--lease-seconds", "3", "--workers", "2"]
            .map(String::from)
            .to_vec(),
        through_proxy: true,
        ..ClusterOptions::default()
    })
    .await;
    let gateway = cluster.gateway_url(0);
    let heavy: Vec<String> = (0..2).map(|index| format!("before-{index}")).collect();
    for (index, id) in heavy.iter().enumerate() {
        assert_eq!(
            submit(&gateway, &heavy_job(id, &customer(index + 1)))
                .await
                .status(),
            202
        );
    }
    let deadline = Instant::now() + WAIT;
    while status(&gateway, &heavy[0]).await["status"] != "processing" {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let proxy = cluster.proxy.as_ref().unwrap();
    proxy.cut();
    let outage = Instant::now();
    let mut refused = 0;
    while outage.elapsed() < Duration::from_secs(10) {
        let started = Instant::now();
        let response = submit(&gateway, &trivial_job("during", "C-000010")).await;
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "a submission hung for {:?}",
            started.elapsed()
        );
        match response.status().as_u16() {
            503 => {
                assert!(response.headers().contains_key("retry-after"));
                refused += 1;
            }
            other => panic!("a submission during the outage answered {other}"),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(refused >= 2, "{refused} refusals");
    let unready = client()
        .get(format!("{gateway}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(unready.status(), 503);
    let problem: Value = unready.json().await.unwrap();
    assert!(
        problem["detail"].as_str().unwrap().contains("job store"),
        "{problem}"
    );
    let alive = client()
        .get(format!("{gateway}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(alive.status(), 200, "alive while its store is away");
    let node = cluster.worker_url("node-1");
    let node_unready = client().get(format!("{node}/readyz")).send().await.unwrap();
    assert_eq!(
        node_unready.status(),
        503,
        "a worker node without its store"
    );
    let problem: Value = node_unready.json().await.unwrap();
    assert!(
        problem["detail"].as_str().unwrap().contains("job store"),
        "{problem}"
    );
    proxy.restore();

    // Everything reconnects: new work is accepted and done, and the jobs that
    // ran through the outage kept their results until they could be stored.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let response = submit(&gateway, &trivial_job("after", "C-000011")).await;
        if response.status() == 202 {
            break;
        }
        assert!(Instant::now() < deadline, "the gateway did not reconnect");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let ready = client()
        .get(format!("{gateway}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200, "ready again once its store answers");
    let node_ready = client().get(format!("{node}/readyz")).send().await.unwrap();
    assert_eq!(node_ready.status(), 200, "the node is ready again too");
    for id in heavy.iter().map(String::as_str).chain(["after"]) {
        let job = finished(&gateway, id, WAIT).await;
        assert_eq!(job["status"], "completed", "{job}");
    }
    assert_eq!(
        status(&gateway, "during").await["error"],
        "Job not found",
        "a refused submission left nothing behind"
    );
    // The node counted its own work: both jobs that ran through the outage
    // and the one after, each claimed and completed once.
    let counted = scrape(&node, None).await;
    assert_eq!(
        sample(&counted, "projector_jobs_completed_total", &[]),
        Some(3.0)
    );
    assert_eq!(
        sample(&counted, "projector_jobs", &[("status", "queued")]),
        Some(0.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_node_id_is_refused_and_an_unmigrated_database_named() {
    let cluster = TestCluster::start(ClusterOptions::default()).await;
    // The same id on another machine, with a cache of its own.
    let twin = cluster.spawn_worker("node-1", "twin", &[]);
    let exit = twin.wait_exit();
    assert!(!exit.success());
    let log = std::fs::read_to_string(cluster.directory.path().join("twin.log")).unwrap();
    assert!(
        log.contains("worker node id \"node-1\" is already live") && log.contains("--node-id"),
        "{log}"
    );

    let fresh = database::testing::TestDatabase::create().await;
    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_projector"))
        .args([
            "gateway",
            "--addr",
            "127.0.0.1:0",
            "--database-url",
            fresh.url(),
        ])
        .env("PROJECTOR_API_KEY", KEY)
        .env("PROJECTOR_TENANT_SECRET", TENANT_SECRET)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("projector migrate"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_worker_gives_its_running_job_back_at_the_end_of_its_grace() {
    let cluster = TestCluster::start(ClusterOptions {
        gateways: 1,
        workers: 2,
        worker_args: [
            "--lease-seconds",
            "60",
            "--shutdown-grace-seconds",
            "1",
            "--steal-after-ms",
            "200",
            "--workers",
            "1",
        ]
        .map(String::from)
        .to_vec(),
        ..ClusterOptions::default()
    })
    .await;
    let gateway = cluster.gateway_url(0);
    let mut body = heavy_job("long", "C-000001");
    body["parameters"]["paths"] = 200_000.into();
    assert_eq!(submit(&gateway, &body).await.status(), 202);
    let pool = cluster.inspect().await;
    let deadline = Instant::now() + WAIT;
    let first_owner: String = loop {
        if let Some(owner) = lease_owner(&pool, "long").await {
            break owner;
        }
        assert!(Instant::now() < deadline, "the job was never claimed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let (_, stopping) = cluster
        .workers
        .iter()
        .find(|(id, _)| *id == first_owner)
        .unwrap();
    let stopping = stopping.as_ref().unwrap();
    let stopped_at = Instant::now();
    stopping.terminate();
    // Given back at the end of the grace period, not at the end of its 60 s lease.
    let deadline = Instant::now() + Duration::from_secs(20);
    let second_owner: String = loop {
        let owner = lease_owner(&pool, "long").await;
        if let Some(owner) = owner.filter(|owner| *owner != first_owner) {
            break owner;
        }
        assert!(Instant::now() < deadline, "the job was not given back");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(stopped_at.elapsed() < Duration::from_secs(15));
    assert_ne!(second_owner, first_owner);
    let job = finished(&gateway, "long", WAIT).await;
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(
        job["attempts"], 1,
        "a job given back does not spend an attempt"
    );
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draining_gateway_answers_health_with_503_and_still_serves() {
    let cluster = TestCluster::start(ClusterOptions {
        workers: 0,
        ..ClusterOptions::default()
    })
    .await;
    let gateway = Process::start(
        &[
            "gateway",
            "--addr",
            "127.0.0.1:0",
            "--drain-seconds",
            "3",
            "--database-url",
            &cluster.roles_database_url,
        ],
        cluster.directory.path(),
        "draining-gateway.log",
        "gateway",
    );
    let url = gateway.url("gateway");
    let health = |url: String| async move {
        client()
            .get(format!("{url}/health"))
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(health(url.clone()).await, 200);
    gateway.terminate();
    let deadline = Instant::now() + Duration::from_secs(2);
    while health(url.clone()).await != 503 {
        assert!(Instant::now() < deadline, "health never turned 503");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        submit(&url, &trivial_job("while-draining", "C-000001"))
            .await
            .status(),
        202,
        "requests are still served while draining"
    );
    assert!(gateway.wait_exit().success());
}
