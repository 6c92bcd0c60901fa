//! Clients that try to hold or confuse the servers, against the real binary:
//! idle connections past the open-file limit, headers and bodies sent halfway,
//! and requests the framework would answer in plain text.

use crate::support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{KEY, Process, client, job_body, scratch_dir, submit, up, up_with_open_files};

fn address_of(url: &str) -> String {
    url.trim_start_matches("http://").to_string()
}

/// Reads until the server closes the connection, and returns what it sent and
/// how long that took; `None` if it is still open after `patience`.
fn until_closed(stream: &mut TcpStream, patience: Duration) -> Option<(String, Duration)> {
    let started = Instant::now();
    stream.set_read_timeout(Some(patience)).unwrap();
    let mut received = Vec::new();
    match stream.read_to_end(&mut received) {
        Ok(_) => Some((
            String::from_utf8_lossy(&received).into_owned(),
            started.elapsed(),
        )),
        Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => {
            Some((String::new(), started.elapsed()))
        }
        Err(_) => None,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_connections_beyond_the_open_file_limit_do_not_lock_out_clients() {
    let data_dir = scratch_dir();
    let mut cluster = up_with_open_files(data_dir.path(), &[], 256);
    let gateway = cluster.url("gateway");
    let datasvc = cluster.url("data");
    let idle: Vec<TcpStream> = (0..300)
        .map(|index| {
            let target = if index % 2 == 0 { &gateway } else { &datasvc };
            TcpStream::connect(address_of(target)).unwrap()
        })
        .collect();
    let started = Instant::now();
    let accepted = submit(&gateway, &job_body("past-the-limit", "C-000001")).await;
    assert_eq!(accepted.status(), 202);
    let health = client()
        .get(format!("{datasvc}/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "answered only after {:?}",
        started.elapsed()
    );
    let job = support::finished(&gateway, "past-the-limit", Duration::from_secs(60)).await;
    assert_eq!(job["status"], "completed", "{job}");
    assert!(cluster.is_running());
    drop(idle);
    let log = std::fs::read_to_string(data_dir.path().join("up.log")).unwrap();
    assert!(
        !log.contains("Too many open files"),
        "the process ran out of file descriptors:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn headers_and_bodies_sent_halfway_are_cut_off_at_their_deadlines() {
    let data_dir = scratch_dir();
    let cluster = up(
        data_dir.path(),
        &[
            "--header-timeout-seconds",
            "1",
            "--body-timeout-seconds",
            "1",
        ],
    );
    let gateway = address_of(&cluster.url("gateway"));

    let mut half_headers = TcpStream::connect(&gateway).unwrap();
    half_headers
        .write_all(b"GET /health HTTP/1.1\r\nHost: projector\r\n")
        .unwrap();
    let (_, after) = until_closed(&mut half_headers, Duration::from_secs(10))
        .expect("a connection that never finishes its headers is closed");
    assert!(after < Duration::from_secs(4), "closed after {after:?}");

    let mut idle_keep_alive = TcpStream::connect(&gateway).unwrap();
    idle_keep_alive
        .write_all(b"GET /health HTTP/1.1\r\nHost: projector\r\n\r\n")
        .unwrap();
    let (answer, after) = until_closed(&mut idle_keep_alive, Duration::from_secs(10))
        .expect("an idle keep-alive connection is closed");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(after < Duration::from_secs(4), "closed after {after:?}");

    let mut half_body = TcpStream::connect(&gateway).unwrap();
    let head = format!(
        "POST /generate_projection HTTP/1.1\r\nHost: projector\r\nX-API-Key: {KEY}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"job_id\""
    );
    half_body.write_all(head.as_bytes()).unwrap();
    let (answer, after) = until_closed(&mut half_body, Duration::from_secs(10))
        .expect("a body that never arrives is answered and closed");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("application/problem+json"), "{answer}");
    assert!(after < Duration::from_secs(4), "closed after {after:?}");
}

/// Sends a raw request and returns the status and the body.
async fn raw(
    method: reqwest::Method,
    url: &str,
    headers: &[(String, String)],
) -> (u16, String, Value) {
    let mut request = client().request(method, url);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|value| value.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    (status, content_type, body)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_error_is_problem_json_and_echoes_at_most_a_short_cut_of_the_input() {
    let data_dir = scratch_dir();
    let cluster = up(data_dir.path(), &[]);
    let key = vec![("x-api-key".to_string(), KEY.to_string())];
    let gateway = cluster.url("gateway");
    let long_path = "x".repeat(10_000);
    let many_headers: Vec<(String, String)> = (0..70)
        .map(|index| (format!("x-filler-{index}"), "y".to_string()))
        .collect();
    let cases = [
        (
            reqwest::Method::GET,
            format!("{gateway}/no/such/route"),
            key.clone(),
            404,
        ),
        (
            reqwest::Method::GET,
            format!("{gateway}/generate_projection"),
            key.clone(),
            405,
        ),
        (
            reqwest::Method::GET,
            format!("{gateway}/job_status/{long_path}"),
            key.clone(),
            414,
        ),
        (
            reqwest::Method::GET,
            format!("{gateway}/job_status/x"),
            many_headers,
            431,
        ),
        (
            reqwest::Method::GET,
            format!("{gateway}/job_status/%FF%FE"),
            key.clone(),
            400,
        ),
        (
            reqwest::Method::DELETE,
            format!("{}/api/customers/C-000001/portfolio", cluster.url("data")),
            vec![(
                "authorization".to_string(),
                format!("Bearer {}", support::DATASVC_TOKEN),
            )],
            405,
        ),
        (
            reqwest::Method::GET,
            format!(
                "{}/nothing-{}",
                cluster.url("orchestrator"),
                "z".repeat(5000)
            ),
            vec![],
            404,
        ),
    ];
    for (method, url, headers, expected) in cases {
        let shown = format!("{method} {}", &url[..url.len().min(80)]);
        let (status, content_type, body) = raw(method, &url, &headers).await;
        assert_eq!(status, expected, "{shown}: {body}");
        assert_eq!(content_type, "application/problem+json", "{shown}");
        assert_eq!(body["status"], expected, "{shown}: {body}");
        let detail = body["detail"].as_str().unwrap();
        assert!(
            !detail.is_empty() && detail.len() < 1_000,
            "{shown}: {detail}"
        );
    }
    drop(cluster);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_over_the_limit_is_refused_before_it_is_read() {
    let data_dir = scratch_dir();
    let cluster: Process = up(data_dir.path(), &[]);
    let response = client()
        .post(format!("{}/generate_projection", cluster.url("gateway")))
        .header("x-api-key", KEY)
        .header("content-type", "application/json")
        .body(vec![b' '; 200_000])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], 413);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_data_service_answers_only_callers_with_its_token() {
    let data_dir = scratch_dir();
    let cluster = up(data_dir.path(), &[]);
    let portfolio = format!("{}/api/customers/C-000042/portfolio", cluster.url("data"));
    let anonymous = client().get(&portfolio).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let token = client()
        .get(&portfolio)
        .bearer_auth(support::DATASVC_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(token.status(), 200);
    // The workers present the token: a job that needs the portfolio completes.
    let accepted = submit(&cluster.url("gateway"), &job_body("with-token", "C-000042")).await;
    assert_eq!(accepted.status(), 202);
    let job = support::finished(
        &cluster.url("gateway"),
        "with-token",
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(job["status"], "completed", "{job}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_data_service_without_a_token_refuses_to_start_unless_anonymous_callers_are_allowed() {
    let data_dir = scratch_dir();
    let refused = support::projector(&["datasvc", "--addr", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir.path())
        .env_remove("PROJECTOR_DATASVC_TOKEN")
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("PROJECTOR_DATASVC_TOKEN") && stderr.contains("--datasvc-allow-anonymous"),
        "{stderr}"
    );

    let process = support::start(
        &[
            "datasvc",
            "--addr",
            "127.0.0.1:0",
            "--datasvc-token=",
            "--datasvc-allow-anonymous",
            "--data-dir",
            data_dir.path().to_str().unwrap(),
        ],
        data_dir.path(),
        "datasvc.log",
        "data service",
    );
    let portfolio = format!("{}/api/customers/C-000042/portfolio", process.url("data"));
    let answered = client().get(&portfolio).send().await.unwrap();
    assert_eq!(answered.status(), 200);
    let log = std::fs::read_to_string(data_dir.path().join("datasvc.log")).unwrap();
    assert!(log.contains("without credentials"), "{log}");
}

#[test]
fn options_out_of_range_are_refused_at_start_naming_the_option() {
    let data_dir = scratch_dir();
    for (option, value) in [
        ("--cache-ttl-seconds", "10000000000000000"),
        ("--cache-ttl-seconds", "31536001"),
        ("--steal-after-ms", "99999999999999"),
        ("--header-timeout-seconds", "0"),
    ] {
        let output = support::projector(&support::up_args(data_dir.path(), &[option, value]))
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{option} {value}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(option), "{option} {value}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_orchestrator_answers_tenants_only_and_each_sees_its_own_reports() {
    let data_dir = scratch_dir();
    let cluster = up(data_dir.path(), &[]);
    let orchestrator = cluster.url("orchestrator");
    let body = serde_json::json!({"customer_id": "C-000042", "time_horizon_years": 50, "risk_profile": "balanced", "paths": 200000});
    let anonymous = client()
        .post(format!("{orchestrator}/reports"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let listing = client()
        .get(format!("{orchestrator}/reports"))
        .send()
        .await
        .unwrap();
    assert_eq!(listing.status(), 401);

    let small = serde_json::json!({"customer_id": "C-000042", "time_horizon_years": 5, "risk_profile": "balanced", "paths": 500});
    let created = support::post_as(
        &format!("{orchestrator}/reports"),
        support::OTHER_KEY,
        &small,
    )
    .await;
    let id = created["id"].as_str().unwrap();
    let listed = format!("{orchestrator}/reports");
    let of_other = support::get_as(&listed, support::OTHER_KEY).await;
    assert_eq!(of_other["reports"].as_array().unwrap().len(), 1);
    let of_key = support::get_as(&listed, KEY).await;
    assert_eq!(
        of_key["reports"],
        serde_json::json!([]),
        "another tenant's reports are not listed"
    );
    let foreign = client()
        .get(format!("{orchestrator}/reports/{id}"))
        .header("x-api-key", KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tenant_over_its_submission_rate_gets_429_while_others_are_served() {
    let data_dir = scratch_dir();
    let cluster = up(
        data_dir.path(),
        &["--submissions-per-second", "1", "--submission-burst", "3"],
    );
    let gateway = cluster.url("gateway");
    for index in 0..3 {
        let accepted = submit(&gateway, &job_body(&format!("burst-{index}"), "C-000001")).await;
        assert_eq!(accepted.status(), 202);
    }
    let limited = submit(&gateway, &job_body("burst-3", "C-000001")).await;
    assert_eq!(limited.status(), 429);
    let retry_after = testkit::retry_after(&limited);
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    let problem: Value = limited.json().await.unwrap();
    assert_eq!(problem["status"], 429);
    let other = client()
        .post(format!("{gateway}/generate_projection"))
        .header("x-api-key", support::OTHER_KEY)
        .json(&job_body("other-tenant", "C-000002"))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 202, "another tenant's bucket is its own");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tenants_backlog_of_huge_jobs_does_not_starve_another_tenant() {
    let data_dir = scratch_dir();
    let cluster = up(data_dir.path(), &["--workers", "2"]);
    let gateway = cluster.url("gateway");
    // Seeds of their own: each is an engine run, none a reused result.
    for index in 0..40 {
        let huge = serde_json::json!({"job_id": format!("huge-{index}"), "parameters": {"customer_id": "C-000001", "time_horizon_years": 50, "risk_profile": "aggressive", "paths": 200000, "seed": index}});
        assert_eq!(submit(&gateway, &huge).await.status(), 202);
    }
    let started = std::time::Instant::now();
    let small = serde_json::json!({"job_id": "small", "parameters": {"customer_id": "C-000002", "time_horizon_years": 5, "risk_profile": "balanced", "paths": 10}});
    let accepted = client()
        .post(format!("{gateway}/generate_projection"))
        .header("x-api-key", support::OTHER_KEY)
        .json(&small)
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), 202);
    let deadline = started + Duration::from_secs(20);
    let job = loop {
        let job = support::status_as(&gateway, support::OTHER_KEY, "small").await;
        if job["status"] == "completed" {
            break job;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the other tenant's job is still {} after 20 s",
            job["status"]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(job["status"], "completed");
    let last_huge = support::status(&gateway, "huge-39").await;
    assert_eq!(
        last_huge["status"], "queued",
        "the small job overtook the backlog"
    );
    println!(
        "the small job completed {:.1} s after it was submitted",
        started.elapsed().as_secs_f64()
    );
}
