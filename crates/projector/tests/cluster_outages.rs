//! A cluster through outages: the database gone for ten seconds, a gateway
//! draining while the others serve.

use crate::support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::cluster::*;
use support::*;

const WAIT: Duration = Duration::from_secs(120);

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
async fn a_draining_gateway_answers_health_with_503_and_still_serves() {
    let cluster = TestCluster::start(ClusterOptions {
        workers: 0,
        ..ClusterOptions::default()
    })
    .await;
    let gateway = support::start(
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
