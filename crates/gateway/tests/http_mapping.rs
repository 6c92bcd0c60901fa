//! The gateway alone, served on loopback over a real SQLite job store: how
//! each request and each failure of the store becomes an answer.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use database::{Location, SchemaPolicy};
use gateway::{GatewayConfig, JobLimits, SubmissionRate};
use jobstore::{AnyJobStore, ClaimRequest, JobStore, StoreOptions};
use serde_json::{Value, json};
use service::server::{HttpListener, Shutdown};
use service::{Secret, Tenants};
use testkit::{KEY, OTHER_KEY, json_of};

/// Paths a job may ask for in these tests.
const MAX_PATHS: u32 = 5_000;

struct Served {
    base: String,
    store: Arc<AnyJobStore>,
    shutdown: Shutdown,
    serving: tokio::task::JoinHandle<Result<(), gateway::Error>>,
    _directory: tempfile::TempDir,
}

impl Served {
    async fn start(submission_rate: Option<SubmissionRate>) -> Served {
        let directory = tempfile::tempdir().unwrap();
        let location = Location::Sqlite(directory.path().join("jobs.sqlite"));
        let options = StoreOptions {
            policy: SchemaPolicy::Apply,
            ..StoreOptions::default()
        };
        let store = Arc::new(AnyJobStore::open(&location, options).await.unwrap());
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", tcp.local_addr().unwrap());
        let config = GatewayConfig {
            tenants: Tenants::new(
                Secret::new("tenant-secret"),
                &[Secret::new(KEY), Secret::new(OTHER_KEY)],
            ),
            limits: JobLimits {
                max_paths: MAX_PATHS,
                ..JobLimits::default()
            },
            submission_rate,
        };
        let shutdown = Shutdown::new();
        let serving = tokio::spawn(gateway::run(
            config,
            store.clone(),
            HttpListener::from(tcp),
            shutdown.clone(),
        ));
        Served {
            base,
            store,
            shutdown,
            serving,
            _directory: directory,
        }
    }

    async fn submit(&self, key: &str, body: &Value) -> reqwest::Response {
        reqwest::Client::new()
            .post(format!("{}/generate_projection", self.base))
            .header("x-api-key", key)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// Submits `job_id` as the tenant of `key`, which must be accepted.
    async fn accept(&self, key: &str, job_id: &str) {
        let answer = self.submit(key, &job(job_id, 1000)).await;
        assert_eq!(answer.status(), 202, "{job_id}");
    }

    fn get(&self, key: &str, path: &str) -> reqwest::RequestBuilder {
        reqwest::Client::new()
            .get(format!("{}{path}", self.base))
            .header("x-api-key", key)
    }

    fn cancel(&self, key: &str, job_id: &str) -> reqwest::RequestBuilder {
        reqwest::Client::new()
            .post(format!("{}/jobs/{job_id}/cancel", self.base))
            .header("x-api-key", key)
    }

    async fn stop(self) {
        self.shutdown.stop();
        self.serving.await.unwrap().unwrap();
        self.store.close().await;
    }
}

fn job(job_id: &str, paths: u32) -> Value {
    json!({"job_id": job_id, "parameters": {"customer_id": "C-000042", "time_horizon_years": 10, "risk_profile": "balanced", "paths": paths}})
}

/// The answer's status, and its body as a problem (checked to be one).
async fn problem(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json",
        "a {status} answer is a problem"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], status, "{body}");
    (status, body)
}

#[tokio::test]
async fn submissions_are_accepted_once_and_refused_naming_what_is_wrong() {
    let served = Served::start(None).await;

    let accepted = served.submit(KEY, &job("job-1", 1000)).await;
    assert_eq!(accepted.status(), 202);
    let first: Value = accepted.json().await.unwrap();
    assert_eq!(first["job_id"], "job-1");
    // The same request again is the same job, not a second one.
    let again = served.submit(KEY, &job("job-1", 1000)).await;
    assert_eq!(again.status(), 202);
    assert_eq!(again.json::<Value>().await.unwrap()["job_id"], "job-1");
    assert_eq!(served.store.queue_depth().await.unwrap().queued, 1);

    let (status, body) = problem(served.submit(KEY, &job("job-1", 2000)).await).await;
    assert_eq!(status, 422);
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("\"job-1\" is already used"),
        "{body}"
    );

    let (status, body) = problem(served.submit(KEY, &job("job-2", MAX_PATHS + 1)).await).await;
    assert_eq!(status, 422);
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains(&MAX_PATHS.to_string()),
        "{body}"
    );

    let malformed = reqwest::Client::new()
        .post(format!("{}/generate_projection", served.base))
        .header("x-api-key", KEY)
        .header("content-type", "application/json")
        .body("{\"job_id\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(problem(malformed).await.0, 400);

    let anonymous = reqwest::Client::new()
        .post(format!("{}/generate_projection", served.base))
        .json(&job("job-3", 1000))
        .send()
        .await
        .unwrap();
    assert_eq!(problem(anonymous).await.0, 401);
    assert_eq!(
        served.store.queue_depth().await.unwrap().queued,
        1,
        "nothing refused was recorded"
    );
    served.stop().await;
}

#[tokio::test]
async fn a_job_is_its_tenants_alone_and_ends_once() {
    let served = Served::start(None).await;
    served.accept(KEY, "mine").await;

    let status = json_of(served.get(KEY, "/job_status/mine")).await;
    assert_eq!(status["status"], "queued", "{status}");
    // Another tenant cannot tell the job exists.
    let (code, _) = problem(
        served
            .get(OTHER_KEY, "/job_status/mine")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(code, 404);
    assert_eq!(
        problem(served.cancel(OTHER_KEY, "mine").send().await.unwrap())
            .await
            .0,
        404
    );
    assert_eq!(
        problem(served.get(KEY, "/job_status/nobody").send().await.unwrap())
            .await
            .0,
        404
    );

    // Cancelling is idempotent; a job that ended otherwise cannot be cancelled.
    for _ in 0..2 {
        let cancelled = served.cancel(KEY, "mine").send().await.unwrap();
        assert_eq!(cancelled.status(), 200);
        assert_eq!(
            cancelled.json::<Value>().await.unwrap()["status"],
            "cancelled"
        );
    }
    served.accept(KEY, "done").await;
    let claim = served
        .store
        .claim(ClaimRequest::any_partition(
            "test-worker",
            1,
            Duration::from_secs(30),
        ))
        .await
        .unwrap()
        .remove(0);
    assert!(served.store.complete(&claim, "{}").await.unwrap());
    let (code, body) = problem(served.cancel(KEY, "done").send().await.unwrap()).await;
    assert_eq!(code, 409, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("already completed"),
        "{body}"
    );

    let (code, _) = problem(
        served
            .get(KEY, "/job_status/mine?wait=soon")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(code, 400);
    served.stop().await;
}

#[tokio::test]
async fn a_tenant_over_its_rate_is_told_when_to_retry() {
    let one = NonZeroU32::new(1).unwrap();
    let served = Served::start(Some(SubmissionRate {
        per_second: one,
        burst: one,
    }))
    .await;
    served.accept(KEY, "first").await;
    let limited = served.submit(KEY, &job("second", 1000)).await;
    let retry_after = testkit::retry_after(&limited);
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    assert_eq!(problem(limited).await.0, 429);
    // Each tenant has its own budget.
    served.accept(OTHER_KEY, "theirs").await;
    served.stop().await;
}

#[tokio::test]
async fn a_store_that_went_away_is_503_with_retry_after_and_nothing_recorded() {
    let served = Served::start(None).await;
    // Serving (its start reads the store) before the store goes away.
    served.accept(KEY, "early").await;
    served.store.close().await;
    let refused = served.submit(KEY, &job("late", 1000)).await;
    assert!(refused.headers().contains_key("retry-after"));
    let (code, body) = problem(refused).await;
    assert_eq!(code, 503, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("nothing was recorded"),
        "{body}"
    );
    let (code, body) = problem(served.get(KEY, "/job_status/late").send().await.unwrap()).await;
    assert_eq!(code, 503, "{body}");
    served.shutdown.stop();
    served.serving.await.unwrap().unwrap();
}
