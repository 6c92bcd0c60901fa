//! Clients that try to exhaust a role's memory or connections, against the
//! real binary: invented methods that would each become a metric series, and
//! event streams that would hold every connection.

use crate::support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{KEY, OTHER_KEY, client, job_body, scratch_dir};

fn address_of(url: &str) -> String {
    url.trim_start_matches("http://").to_string()
}

/// Sends `head` on a new connection and returns the status line of the answer.
fn status_line_of(address: &str, head: &[u8]) -> String {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // The server may refuse before it has read all of it.
    let _ = stream.write_all(head);
    let mut answer = [0u8; 64];
    let read = stream.read(&mut answer).unwrap_or(0);
    String::from_utf8_lossy(&answer[..read])
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn invented_methods_are_refused_and_counted_under_one_label_on_every_role() {
    let data_dir = scratch_dir();
    let cluster = support::up(data_dir.path(), &[]);
    for role in ["gateway", "data", "orchestrator"] {
        let base = cluster.url(role);
        let address = address_of(&base);
        for index in 0..200 {
            let method =
                reqwest::Method::from_bytes(format!("INVENTED{index}").as_bytes()).unwrap();
            let answer = client()
                .request(method, format!("{base}/healthz"))
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status(), 405, "{role}");
            assert_eq!(
                answer.headers()["content-type"],
                "application/problem+json",
                "{role}"
            );
        }
        for index in 0..5 {
            let mut head = vec![b'M'; 400_000];
            head.extend_from_slice(
                format!("{index} /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            );
            let status = status_line_of(&address, &head);
            assert!(
                status.starts_with("HTTP/1.1 431") || status.starts_with("HTTP/1.1 400"),
                "{role}: a 400 KB method answered {status:?}"
            );
        }
        let metrics = support::scrape(&base, None).await;
        assert!(
            !metrics.contains("INVENTED") && !metrics.contains("MMMM"),
            "{role}: an invented method became a label"
        );
        assert!(
            metrics.contains("method=\"other\""),
            "{role}: refused methods are counted as other"
        );
        assert!(
            metrics.len() < 200_000,
            "{role}: /metrics grew to {} bytes",
            metrics.len()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn event_streams_at_the_connection_cap_leave_room_for_health_and_other_tenants() {
    let data_dir = scratch_dir();
    let gateway_process = support::lone_gateway(
        &data_dir.path().join("jobs.sqlite"),
        data_dir.path(),
        &["--max-connections", "20"],
    );
    let gateway = gateway_process.url("gateway");
    let accepted = support::submit(&gateway, &job_body("held", "C-000001")).await;
    assert_eq!(accepted.status(), 202);

    let mut open = Vec::new();
    let mut refused = 0;
    for _ in 0..25 {
        let response = support::open_events(&gateway, KEY, "held", None).await;
        match response.status().as_u16() {
            200 => open.push(support::event_stream(response)),
            429 => {
                let retry_after = testkit::retry_after(&response);
                assert!(retry_after >= 1);
                let problem: Value = response.json().await.unwrap();
                assert_eq!(problem["status"], 429);
                refused += 1;
            }
            other => panic!("an event stream answered {other}"),
        }
    }
    assert!(
        !open.is_empty() && open.len() <= 10,
        "{} streams opened on 20 connections",
        open.len()
    );
    assert_eq!(open.len() + refused, 25);
    for stream in &mut open {
        let first = stream.next().await.expect("the job's state");
        assert_eq!(first.job["status"], "queued");
    }
    let long_poll = client()
        .get(format!("{gateway}/job_status/held?wait=30"))
        .header("x-api-key", KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(
        long_poll.status(),
        429,
        "the tenant's budget covers long-polls"
    );

    // Idle connections beyond the cap are closed to admit new ones; the
    // streams, which are busy, are kept.
    let idle: Vec<TcpStream> = (0..30)
        .map(|_| TcpStream::connect(address_of(&gateway)).unwrap())
        .collect();
    let started = Instant::now();
    let health = client()
        .get(format!("{gateway}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let other = client()
        .post(format!("{gateway}/generate_projection"))
        .header("x-api-key", OTHER_KEY)
        .json(&job_body("other", "C-000002"))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 202);
    let others_stream = support::open_events(&gateway, OTHER_KEY, "other", None).await;
    assert_eq!(
        others_stream.status(),
        200,
        "another tenant has its own share"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "answered only after {:?}",
        started.elapsed()
    );
    drop(idle);

    let cancelled = client()
        .post(format!("{gateway}/jobs/held/cancel"))
        .header("x-api-key", KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(cancelled.status(), 200);
    for stream in open {
        let events = stream.all().await;
        let last = events.last().expect("the end of the job");
        assert_eq!(last.name, "cancelled", "{events:?}");
    }
    // Their places are free again.
    let reopened = support::open_events(&gateway, KEY, "held", None).await;
    assert_eq!(reopened.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_orchestrator_follows_many_reports_on_a_few_streams() {
    let data_dir = scratch_dir();
    let cluster = support::up(data_dir.path(), &["--workers", "1"]);
    let (gateway, orchestrator) = (cluster.url("gateway"), cluster.url("orchestrator"));
    let reports = format!("{orchestrator}/reports");
    let mut ids = Vec::new();
    for seed in 0..45 {
        let body = serde_json::json!({"customer_id": "C-000042", "time_horizon_years": 30, "risk_profile": "balanced", "paths": 20000, "seed": seed});
        let created = support::post_as(&reports, KEY, &body).await;
        ids.push(created["id"].as_str().unwrap().to_string());
    }
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut most_open = 0.0_f64;
    let mut pending = ids.clone();
    while !pending.is_empty() {
        assert!(
            Instant::now() < deadline,
            "{} reports still running",
            pending.len()
        );
        let metrics = support::scrape(&gateway, None).await;
        let open = support::sample(&metrics, "projector_open_streams", &[]).unwrap_or(0.0);
        most_open = most_open.max(open);
        let mut still = Vec::new();
        for id in pending {
            let report = support::get_as(&format!("{reports}/{id}"), KEY).await;
            match report["status"].as_str() {
                Some("completed") => {}
                Some("failed" | "cancelled") => panic!("{report}"),
                _ => still.push(id),
            }
        }
        pending = still;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(most_open >= 1.0, "the reports were followed on streams");
    assert!(
        most_open <= 16.0,
        "{most_open} streams were open for 45 reports"
    );
}
