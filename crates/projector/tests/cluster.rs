//! The cluster: every role its own process, one PostgreSQL database of the
//! test's own, and what a cluster must survive (a worker or a gateway killed,
//! a node stopping), with locality measured in data-service requests; the
//! database gone and a gateway draining are in `cluster_outages.rs`.

use crate::support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::cluster::*;
use support::*;

const WAIT: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_runs_every_job_once_near_its_cache_and_any_gateway_answers() {
    let mut cluster = TestCluster::start(ClusterOptions {
        gateways: 2,
        workers: 3,
        // Locality is measured without stealing: on a busy test machine a job
        // may wait past the default 5 s, and a stolen job fetches its
        // customer on a node that does not own it. Stealing is the job
        // store's conformance suite's to test.
        worker_args: ["--lease-seconds", "2", "--steal-after-ms", "60000"]
            .map(String::from)
            .to_vec(),
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
