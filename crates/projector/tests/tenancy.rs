//! What each tenant owns: its job ids and idempotency keys, its jobs across an
//! upgrade of how owners are named, and a customer that does not exist.

use crate::support;

use std::time::Duration;

use serde_json::{Value, json};
use support::*;

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_tenancy_and_a_customer_that_does_not_exist() {
    let directory = scratch_dir();
    let projector = up(directory.path(), &[]);
    let gateway = projector.url("gateway");
    let first = submit(&gateway, &job_body("same", "C-000003")).await;
    assert_eq!(first.status(), 202);
    let again = submit(&gateway, &job_body("same", "C-000003")).await;
    assert_eq!(again.status(), 202);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let conflict = submit(&gateway, &job_body("same", "C-000004")).await;
    assert_eq!(conflict.status(), 422);
    let problem: Value = conflict.json().await.unwrap();
    assert!(
        problem["error"]
            .as_str()
            .unwrap()
            .contains("already used for a different request")
    );

    // Same idempotency key, new job id, same request: the first job, answered again.
    let keyed = |job_id: &str| {
        client()
            .post(format!("{gateway}/generate_projection"))
            .header("x-api-key", KEY)
            .header("x-idempotency-key", "key-1")
            .json(&job_body(job_id, "C-000005"))
            .send()
    };
    assert_eq!(keyed("k-a").await.unwrap().status(), 202);
    let replay: Value = keyed("k-b").await.unwrap().json().await.unwrap();
    assert_eq!(replay["job_id"], "k-a");

    // Another key cannot see the job.
    let stranger = client()
        .get(format!("{gateway}/job_status/same"))
        .header("x-api-key", OTHER_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(stranger.status(), 404);

    assert_eq!(
        finished(&gateway, "same", WAIT).await["status"],
        "completed"
    );
    submit(&gateway, &job_body("ghost", "C-424242")).await;
    let ghost = finished(&gateway, "ghost", WAIT).await;
    assert_eq!(ghost["status"], "failed");
    assert_eq!(ghost["attempts"], 1, "a 404 is not retried: {ghost}");
    assert_eq!(ghost["error"], "customer \"C-424242\" not found");
    projector.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_ids_and_idempotency_keys_are_each_tenants_own() {
    let directory = scratch_dir();
    let projector = up(directory.path(), &[]);
    let gateway = projector.url("gateway");
    let send = |key: &'static str, idempotency: Option<&'static str>, body: Value| {
        let mut request = client()
            .post(format!("{gateway}/generate_projection"))
            .header("x-api-key", key)
            .json(&body);
        if let Some(idempotency) = idempotency {
            request = request.header("x-idempotency-key", idempotency);
        }
        request.send()
    };
    let of_a = job_body("taken", "C-000020");
    let of_b = job_body("taken", "C-000021");
    assert_eq!(send(KEY, None, of_a).await.unwrap().status(), 202);
    let by_b = send(OTHER_KEY, None, of_b).await.unwrap();
    assert_eq!(
        by_b.status(),
        202,
        "another tenant's use of an id is not revealed, nor squatted"
    );
    assert!(by_b.headers().get("idempotent-replayed").is_none());
    let seen_by_b = status_as(&gateway, OTHER_KEY, "taken").await;
    assert_eq!(seen_by_b["customer_id"], "C-000021");
    assert_eq!(status(&gateway, "taken").await["customer_id"], "C-000020");

    let keyed = json!({"parameters": {"customer_id": "C-000022", "time_horizon_years": 5, "risk_profile": "balanced", "paths": 500}});
    let first = send(KEY, Some("shared-key"), keyed.clone()).await.unwrap();
    assert_eq!(first.status(), 202);
    let other_keyed = json!({"parameters": {"customer_id": "C-000023", "time_horizon_years": 5, "risk_profile": "balanced", "paths": 500}});
    let second = send(OTHER_KEY, Some("shared-key"), other_keyed)
        .await
        .unwrap();
    assert_eq!(second.status(), 202);
    assert!(second.headers().get("idempotent-replayed").is_none());

    // Owners are a keyed hash of the API key, not its plain SHA-256.
    projector.stop();
    let pool = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}",
        job_store(directory.path()).display()
    ))
    .await
    .unwrap();
    let owners: Vec<(String,)> = sqlx::query_as("SELECT DISTINCT owner FROM jobs")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(owners.len(), 2);
    let plain = sha256_hex(KEY);
    assert!(owners.iter().all(|(owner,)| *owner != plain), "{owners:?}");
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_recorded_under_a_plain_key_hash_are_the_tenants_after_an_upgrade() {
    let directory = scratch_dir();
    up(directory.path(), &[]).stop();
    let pool = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}",
        job_store(directory.path()).display()
    ))
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO jobs (id, owner, request, customer_id, status, max_attempts, created_at, available_at, finished_at, result)
         VALUES ('from-before', $1, '{}', 'C-000001', 'cancelled', 3, 0, 0,
                 CAST(strftime('%s', 'now') AS INTEGER) * 1000, NULL)",
    )
    .bind(sha256_hex(KEY))
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    let projector = up(directory.path(), &[]);
    let job = status(&projector.url("gateway"), "from-before").await;
    assert_eq!(job["job_id"], "from-before", "{job}");
    projector.stop();
}

fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}
