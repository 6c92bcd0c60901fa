//! The data-service client's circuit breaker and bulkhead against a real HTTP
//! server on loopback that fails, recovers and is slow on command.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use wire::Portfolio;
use worker::{ClientConfig, DataClient, FetchError};

#[derive(Default)]
struct Upstream {
    failing: AtomicBool,
    delay_ms: AtomicUsize,
    hits: AtomicUsize,
    in_flight: AtomicUsize,
    most_in_flight: AtomicUsize,
}

async fn start(upstream: Arc<Upstream>) -> String {
    let served = upstream.clone();
    let router = Router::new().route(
        "/api/customers/{id}/portfolio",
        get(move || {
            let upstream = served.clone();
            async move {
                upstream.hits.fetch_add(1, Ordering::SeqCst);
                let now = upstream.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                upstream.most_in_flight.fetch_max(now, Ordering::SeqCst);
                let delay = upstream.delay_ms.load(Ordering::SeqCst) as u64;
                tokio::time::sleep(Duration::from_millis(delay)).await;
                upstream.in_flight.fetch_sub(1, Ordering::SeqCst);
                if upstream.failing.load(Ordering::SeqCst) {
                    return StatusCode::INTERNAL_SERVER_ERROR.into_response();
                }
                let portfolio = Portfolio {
                    customer_id: "C-1".into(),
                    ..Default::default()
                };
                service::respond(StatusCode::OK, wire::Encoding::Protobuf, &portfolio)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    url
}

fn config(url: &str) -> ClientConfig {
    ClientConfig {
        attempts: 1,
        breaker_failures: 3,
        breaker_open: Duration::from_millis(300),
        ..ClientConfig::new(url, None)
    }
}

#[tokio::test]
async fn the_breaker_opens_after_failures_in_a_row_probes_once_and_closes_on_success() {
    let upstream = Arc::new(Upstream::default());
    let url = start(upstream.clone()).await;
    let client = DataClient::new(config(&url)).unwrap();
    upstream.failing.store(true, Ordering::SeqCst);
    for _ in 0..3 {
        let error = client.portfolio("C-1", None).await.unwrap_err();
        assert!(error.to_string().contains("HTTP 500"), "{error}");
    }
    assert_eq!(upstream.hits.load(Ordering::SeqCst), 3);

    // Open: refused at once, nothing sent.
    for _ in 0..20 {
        let error = client.portfolio("C-1", None).await.unwrap_err();
        assert!(matches!(error, FetchError::Unavailable { .. }));
        assert!(
            error.to_string().contains("circuit breaker is open"),
            "{error}"
        );
    }
    assert_eq!(upstream.hits.load(Ordering::SeqCst), 3);

    // A failed probe opens it again.
    tokio::time::sleep(Duration::from_millis(350)).await;
    client.portfolio("C-1", None).await.unwrap_err();
    client.portfolio("C-1", None).await.unwrap_err();
    assert_eq!(upstream.hits.load(Ordering::SeqCst), 4, "one probe");

    // A successful probe closes it.
    upstream.failing.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(350)).await;
    for _ in 0..5 {
        assert_eq!(
            client.portfolio("C-1", None).await.unwrap().customer_id,
            "C-1"
        );
    }
    assert_eq!(upstream.hits.load(Ordering::SeqCst), 9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bulkhead_bounds_the_requests_in_flight() {
    let upstream = Arc::new(Upstream::default());
    upstream.delay_ms.store(100, Ordering::SeqCst);
    let url = start(upstream.clone()).await;
    let client = DataClient::new(ClientConfig {
        max_concurrent_fetches: 2,
        ..config(&url)
    })
    .unwrap();
    let mut fetches = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let client = client.clone();
        fetches.spawn(async move { client.portfolio("C-1", None).await.unwrap() });
    }
    while let Some(fetched) = fetches.join_next().await {
        fetched.unwrap();
    }
    assert_eq!(upstream.hits.load(Ordering::SeqCst), 8);
    assert_eq!(upstream.most_in_flight.load(Ordering::SeqCst), 2);
}
