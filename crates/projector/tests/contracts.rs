//! The original clients' exchanges with the real binary, and every error case;
//! what each tenant owns is in `tenancy.rs`.

use crate::support;

use std::time::Duration;

use prost::Message;
use serde_json::{Value, json};
use support::*;
use wire::{
    GenerateProjectionRequest, GenerateProjectionResponse, JobStatus, ProjectionParameters,
};

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_original_rails_exchange_and_the_data_client() {
    let directory = scratch_dir();
    // The original data client sends no credentials: it is served where the
    // operator allows anonymous callers on a trusted network.
    let projector = up(directory.path(), &["--datasvc-allow-anonymous"]);
    let gateway = projector.url("gateway");
    // Byte for byte what the Rails job sends.
    let body = r#"{"job_id":"rails-7f3a","parameters":{"customer_id":"C-000042","time_horizon_years":30,"risk_profile":"balanced"}}"#;
    let response = client()
        .post(format!("{gateway}/generate_projection"))
        .header("Content-Type", "application/json")
        .header("X-API-Key", KEY)
        .header("X-Idempotency-Key", "rails-7f3a")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    assert_eq!(response.headers()["location"], "/job_status/rails-7f3a");
    assert_eq!(
        response.text().await.unwrap(),
        r#"{"status":"queued","job_id":"rails-7f3a"}"#
    );

    let job = finished(&gateway, "rails-7f3a", WAIT).await;
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(job["attempts"], 1);
    assert_eq!(job["progress"], 1.0);
    assert!(job["duration_seconds"].as_f64().unwrap() >= 0.0);
    for member in ["created_at", "started_at", "finished_at"] {
        assert!(
            job[member].as_str().unwrap().contains('T'),
            "{member}: {job}"
        );
    }
    let result = &job["result"];
    assert!(result["projection_value"].as_f64().unwrap() > 0.0);
    assert_eq!(result["projection_value"], result["median_final"]);
    assert_eq!(result["yearly"].as_array().unwrap().len(), 30);

    // The original Python worker's data client.
    let datasvc = projector.url("data");
    let portfolio =
        json_of(client().get(format!("{datasvc}/api/customers/C-000042/portfolio"))).await;
    assert_eq!(portfolio["customer_id"], "C-000042");
    assert!(portfolio["assets"][0]["market_value"].as_f64().unwrap() > 0.0);
    projector.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_case() {
    let directory = scratch_dir();
    let projector = up(directory.path(), &[]);
    let gateway = projector.url("gateway");
    let http = client();
    let post = |key: Option<&'static str>, body: Vec<u8>| {
        let mut request = http
            .post(format!("{gateway}/generate_projection"))
            .header("content-type", "application/json")
            .body(body);
        if let Some(key) = key {
            request = request.header("x-api-key", key);
        }
        request.send()
    };
    let valid = || job_body("e-1", "C-000001");

    for key in [None, Some("wrong-key")] {
        let response = post(key, valid().to_string().into_bytes()).await.unwrap();
        assert_eq!(response.status(), 401);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "Invalid API key");
    }

    let cases: [(Value, &str); 7] = [
        (
            json!({"job_id": "e", "parameters": {"customer_id": "C-000001", "time_horizon_years": 51, "risk_profile": "balanced"}}),
            "parameters.time_horizon_years",
        ),
        (
            json!({"job_id": "e", "parameters": {"customer_id": "C-000001", "time_horizon_years": 0, "risk_profile": "balanced"}}),
            "parameters.time_horizon_years",
        ),
        (
            json!({"job_id": "e", "parameters": {"customer_id": "C-000001", "time_horizon_years": 10, "risk_profile": "yolo"}}),
            "parameters.risk_profile",
        ),
        (
            json!({"job_id": "e", "parameters": {"customer_id": "", "time_horizon_years": 10, "risk_profile": "balanced"}}),
            "parameters.customer_id",
        ),
        (
            json!({"job_id": "e", "parameters": {"customer_id": "C".repeat(65), "time_horizon_years": 10, "risk_profile": "balanced"}}),
            "parameters.customer_id",
        ),
        (
            json!({"job_id": "e", "parameters": {"customer_id": "C-000001", "time_horizon_years": "ten", "risk_profile": "balanced"}}),
            "parameters.time_horizon_years",
        ),
        (json!({"job_id": "e"}), "parameters"),
    ];
    for (body, field) in cases {
        let response = post(Some(KEY), body.to_string().into_bytes())
            .await
            .unwrap();
        assert_eq!(response.status(), 422, "{body}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["field"], field, "{problem}");
        assert!(
            problem["error"].as_str().unwrap().contains(field),
            "{problem}"
        );
        assert_eq!(problem["status"], 422);
    }

    let malformed = post(Some(KEY), b"{\"job_id\": ".to_vec()).await.unwrap();
    assert_eq!(malformed.status(), 400);
    let problem: Value = malformed.json().await.unwrap();
    assert!(
        problem["error"]
            .as_str()
            .unwrap()
            .contains("malformed JSON"),
        "{problem}"
    );

    let oversized = post(Some(KEY), vec![b' '; 65 * 1024]).await.unwrap();
    assert_eq!(oversized.status(), 413);

    let unknown = http
        .get(format!("{gateway}/job_status/no-such-job"))
        .header("x-api-key", KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let body: Value = unknown.json().await.unwrap();
    assert_eq!(body["error"], "Job not found");

    // Nothing was recorded by any refused request.
    let pool = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}",
        job_store(directory.path()).display()
    ))
    .await
    .unwrap();
    let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM jobs")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(count, 0);
    projector.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protobuf_on_both_endpoints() {
    let directory = scratch_dir();
    let projector = up(directory.path(), &[]);
    let gateway = projector.url("gateway");
    let request = GenerateProjectionRequest {
        job_id: "proto-1".into(),
        parameters: Some(ProjectionParameters {
            customer_id: "C-000010".into(),
            time_horizon_years: 5,
            risk_profile: "aggressive".into(),
            paths: Some(1000),
            ..Default::default()
        }),
    };
    let response = client()
        .post(format!("{gateway}/generate_projection"))
        .header("x-api-key", KEY)
        .header("content-type", "application/x-protobuf")
        .header("accept", "application/x-protobuf")
        .body(request.encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let accepted = GenerateProjectionResponse::decode(response.bytes().await.unwrap()).unwrap();
    assert_eq!(
        (accepted.status.as_str(), accepted.job_id.as_str()),
        ("queued", "proto-1")
    );
    finished(&gateway, "proto-1", WAIT).await;
    let status = client()
        .get(format!("{gateway}/job_status/proto-1"))
        .header("x-api-key", KEY)
        .header("accept", "application/x-protobuf")
        .send()
        .await
        .unwrap();
    assert_eq!(status.headers()["content-type"], "application/x-protobuf");
    let job = JobStatus::decode(status.bytes().await.unwrap()).unwrap();
    assert_eq!(job.status, "completed");
    assert_eq!(job.result.unwrap().yearly.len(), 5);
    projector.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_codecs_keep_one_set_of_rules_and_replays_compare_the_normalized_request() {
    let directory = scratch_dir();
    let projector = up(directory.path(), &[]);
    let gateway = projector.url("gateway");
    let too_long = ProjectionParameters {
        customer_id: "C-000010".into(),
        time_horizon_years: (1 << 32) + 10,
        risk_profile: "balanced".into(),
        ..Default::default()
    };
    let request = GenerateProjectionRequest {
        job_id: "wide".into(),
        parameters: Some(too_long),
    };
    let protobuf = client()
        .post(format!("{gateway}/generate_projection"))
        .header("x-api-key", KEY)
        .header("content-type", "application/x-protobuf")
        .body(request.encode_to_vec())
        .send()
        .await
        .unwrap();
    let json = client()
        .post(format!("{gateway}/generate_projection"))
        .header("x-api-key", KEY)
        .json(&request)
        .send()
        .await
        .unwrap();
    for answer in [protobuf, json] {
        assert_eq!(answer.status(), 422);
        let problem: Value = answer.json().await.unwrap();
        assert_eq!(
            problem["field"], "parameters.time_horizon_years",
            "{problem}"
        );
    }

    let implicit = json!({"job_id": "defaults", "parameters": {"customer_id": "C-000011", "time_horizon_years": 5, "risk_profile": "balanced"}});
    let explicit = json!({"job_id": "defaults", "parameters": {"customer_id": "C-000011", "time_horizon_years": 5, "risk_profile": "balanced", "paths": 10000, "monthly_contribution": 500.0}});
    assert_eq!(submit(&gateway, &implicit).await.status(), 202);
    let replay = submit(&gateway, &explicit).await;
    assert_eq!(
        replay.status(),
        202,
        "sending a default is the same request"
    );
    assert_eq!(replay.headers()["idempotent-replayed"], "true");

    let odd_id = "loc/../x?y";
    let accepted = submit(&gateway, &job_body(odd_id, "C-000012")).await;
    assert_eq!(accepted.status(), 202);
    let location = accepted.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(location, "/job_status/loc%2F..%2Fx%3Fy");
    let followed = status(&gateway, location.trim_start_matches("/job_status/")).await;
    assert_eq!(followed["job_id"], odd_id);
    let dots = submit(&gateway, &job_body("..", "C-000012")).await;
    assert_eq!(dots.status(), 422);
    projector.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_answers_liveness_and_readiness_without_a_key() {
    let directory = scratch_dir();
    let projector = up(directory.path(), &[]);
    for role in ["gateway", "data", "orchestrator"] {
        let base = projector.url(role);
        for (path, body) in [("/healthz", "alive"), ("/readyz", "ready")] {
            let response = client().get(format!("{base}{path}")).send().await.unwrap();
            assert_eq!(response.status(), 200, "{role}{path}");
            assert_eq!(response.text().await.unwrap(), body, "{role}{path}");
        }
    }
    projector.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_is_cancelled_queued_or_running_and_never_stores_a_result() {
    let directory = scratch_dir();
    let projector = up(directory.path(), &["--workers", "1"]);
    let gateway = projector.url("gateway");
    let cancel = |key: &'static str, job_id: &'static str| {
        client()
            .post(format!("{gateway}/jobs/{job_id}/cancel"))
            .header("x-api-key", key)
            .send()
    };
    let long = json!({"job_id": "long", "parameters": {"customer_id": "C-000030", "time_horizon_years": 50, "risk_profile": "balanced", "paths": 200000}});
    let waiting = json!({"job_id": "waiting", "parameters": {"customer_id": "C-000031", "time_horizon_years": 50, "risk_profile": "balanced", "paths": 200000}});
    assert_eq!(submit(&gateway, &long).await.status(), 202);
    assert_eq!(submit(&gateway, &waiting).await.status(), 202);
    let deadline = std::time::Instant::now() + WAIT;
    while status(&gateway, "long").await["status"] != "processing" {
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Queued, behind the running one on the single worker: cancelled at once.
    let queued = cancel(KEY, "waiting").await.unwrap();
    assert_eq!(queued.status(), 200);
    let body: Value = queued.json().await.unwrap();
    assert_eq!(body["status"], "cancelled");
    // Running: cancelled now, and its worker stops it at its next heartbeat.
    let running = cancel(KEY, "long").await.unwrap();
    assert_eq!(running.status(), 200);
    let again = cancel(KEY, "long").await.unwrap();
    assert_eq!(again.status(), 200, "cancelling is idempotent");
    assert_eq!(cancel(OTHER_KEY, "long").await.unwrap().status(), 404);
    assert_eq!(cancel(KEY, "no-such-job").await.unwrap().status(), 404);

    // The worker is free again: a small job completes, and the cancelled
    // ones never store a result.
    assert_eq!(
        submit(&gateway, &job_body("after", "C-000032"))
            .await
            .status(),
        202
    );
    assert_eq!(
        finished(&gateway, "after", WAIT).await["status"],
        "completed"
    );
    for id in ["long", "waiting"] {
        let job = status(&gateway, id).await;
        assert_eq!(job["status"], "cancelled", "{job}");
        assert!(job["result"].is_null(), "{job}");
    }
    let finished_job = cancel(KEY, "after").await.unwrap();
    assert_eq!(finished_job.status(), 409);
    let problem: Value = finished_job.json().await.unwrap();
    assert!(
        problem["detail"].as_str().unwrap().contains("completed"),
        "{problem}"
    );
    projector.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_log_format_json_every_log_line_is_one_json_object() {
    let directory = scratch_dir();
    let projector = up(directory.path(), &["--log-format", "json"]);
    let gateway = projector.url("gateway");
    assert_eq!(
        submit(&gateway, &job_body("logged", "C-000070"))
            .await
            .status(),
        202
    );
    assert_eq!(
        finished(&gateway, "logged", WAIT).await["status"],
        "completed"
    );
    projector.stop();
    let log = std::fs::read_to_string(directory.path().join("up.log")).unwrap();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|error| panic!("not JSON ({error}): {line}"))
        })
        .collect();
    assert!(lines.len() >= 3, "{log}");
    for line in &lines {
        for member in ["timestamp", "level", "target"] {
            assert!(line[member].is_string(), "no {member}: {line}");
        }
    }
    assert!(
        lines
            .iter()
            .any(|line| line["message"] == "job started" && line["job_id"] == "logged"),
        "the job's fields are members of its lines: {log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_of_every_role_carries_its_request_id() {
    let directory = scratch_dir();
    let projector = up(directory.path(), &[]);
    for role in ["gateway", "data", "orchestrator"] {
        let base = projector.url(role);
        for path in ["/healthz", "/no-such-route"] {
            let fresh = client().get(format!("{base}{path}")).send().await.unwrap();
            let id = fresh.headers()["x-request-id"]
                .to_str()
                .unwrap()
                .to_string();
            assert_eq!(id.len(), 36, "{role}{path}: a UUID, got {id:?}");
            let given = client()
                .get(format!("{base}{path}"))
                .header("x-request-id", "report-42-attempt-1")
                .send()
                .await
                .unwrap();
            assert_eq!(
                given.headers()["x-request-id"],
                "report-42-attempt-1",
                "{role}{path} keeps the client's id"
            );
        }
    }
    projector.stop();
}
