//! The outbox with a real gateway and job store on loopback: validation, retries
//! while the gateway is down, a stable idempotency key, and the result brought back,
//! with the reports on SQLite and on PostgreSQL.

use std::sync::Arc;
use std::time::{Duration, Instant};

use database::testing::TestDatabase;
use database::{Location, SchemaPolicy};
use gateway::Gateway;
use jobstore::{AnyJobStore, ClaimRequest, JobStore, StoreOptions};
use orchestrator::{DispatchConfig, Dispatcher, GatewayClient, ReportStore, router};
use serde_json::{Value, json};
use service::{Secret, Tenants};
use tokio_util::sync::CancellationToken;

const KEY: &str = "orchestrator-key";
const OTHER_KEY: &str = "another-tenant";

fn tenants() -> Tenants {
    Tenants::new(
        Secret::new("tenant-secret"),
        &[Secret::new(KEY), Secret::new(OTHER_KEY)],
    )
}

/// A client that sends `key` as its tenant's API key.
fn client_of(key: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(service::API_KEY_HEADER, key.parse().unwrap());
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap()
}

async fn serve(listener: tokio::net::TcpListener, app: axum::Router) {
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
}

/// The orchestrator's API and pages on `reports`, with the gateway at `gateway_url`.
fn orchestrator_app(reports: &ReportStore, gateway_url: &str) -> axum::Router {
    let config = DispatchConfig::new(gateway_url);
    let gateway = GatewayClient::new(config.clone()).unwrap();
    router(reports.clone(), tenants(), gateway, &config)
}

async fn get_json(client: &reqwest::Client, url: &str) -> Value {
    client.get(url).send().await.unwrap().json().await.unwrap()
}

async fn report(client: &reqwest::Client, base: &str, id: &str) -> Value {
    get_json(client, &format!("{base}/reports/{id}")).await
}

/// Runs a dispatcher for the test's tenants, polling every 20 ms, until the
/// returned token is cancelled.
fn spawn_dispatcher(reports: &ReportStore, config: DispatchConfig) -> CancellationToken {
    let shutdown = CancellationToken::new();
    let config = DispatchConfig {
        poll: Duration::from_millis(20),
        ..config
    };
    tokio::spawn(
        Dispatcher::new(reports.clone(), tenants(), config)
            .unwrap()
            .run(shutdown.clone()),
    );
    shutdown
}

/// Asks for a report and returns its id.
async fn create_report(client: &reqwest::Client, base: &str, body: &Value) -> String {
    let created = testkit::json_of(client.post(format!("{base}/reports")).json(body)).await;
    created["id"].as_str().unwrap().to_string()
}

/// A worker's claim, done through the job store's own contract.
async fn claim_one(jobs: &AnyJobStore) -> jobstore::Claimed {
    jobs.claim(ClaimRequest::any_partition(
        "test-worker",
        1,
        Duration::from_secs(30),
    ))
    .await
    .unwrap()
    .remove(0)
}

async fn wait_for_status(client: &reqwest::Client, base: &str, id: &str, wanted: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let current = report(client, base, id).await;
        if current["status"] == wanted {
            return current;
        }
        assert!(Instant::now() < deadline, "report still {current}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sqlite_dispatches_through_an_outage_and_brings_the_result_back() {
    let directory = tempfile::tempdir().unwrap();
    dispatches_through_an_outage_and_brings_the_result_back(
        Location::Sqlite(directory.path().join("orchestrator.sqlite")),
        Location::Sqlite(directory.path().join("jobs.sqlite")),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_dispatches_through_an_outage_and_brings_the_result_back() {
    let database = TestDatabase::create().await;
    let location = Location::Postgres(database.url().to_string());
    dispatches_through_an_outage_and_brings_the_result_back(location.clone(), location).await;
}

async fn dispatches_through_an_outage_and_brings_the_result_back(
    reports_at: Location,
    jobs_at: Location,
) {
    let reports = ReportStore::open(&reports_at, SchemaPolicy::Apply, 2)
        .await
        .unwrap();
    // The gateway's port, reserved now and served only later.
    let gateway_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let gateway_url = format!("http://127.0.0.1:{gateway_port}");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    serve(listener, orchestrator_app(&reports, &gateway_url)).await;
    let shutdown = spawn_dispatcher(
        &reports,
        DispatchConfig {
            max_backoff: Duration::from_millis(200),
            ..DispatchConfig::new(&gateway_url)
        },
    );

    let anonymous = reqwest::Client::new()
        .post(format!("{base}/reports"))
        .json(&json!({"customer_id": "C-000042", "time_horizon_years": 10, "risk_profile": "balanced"}))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let client = client_of(KEY);
    let invalid = client
        .post(format!("{base}/reports"))
        .json(&json!({"customer_id": "C-000042", "time_horizon_years": 80, "risk_profile": "balanced"}))
        .send()
        .await
        .unwrap();
    assert_eq!(invalid.status(), 422);
    let problem: Value = invalid.json().await.unwrap();
    assert_eq!(problem["field"], "time_horizon_years");

    let created = client
        .post(format!("{base}/reports"))
        .json(&json!({"customer_id": "C-000042", "time_horizon_years": 10, "risk_profile": "balanced"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 202);
    let created: Value = created.json().await.unwrap();
    assert_eq!(created["status"], "pending");
    let id = created["id"].as_str().unwrap().to_string();

    tokio::time::sleep(Duration::from_millis(400)).await;
    let waiting = report(&client, &base, &id).await;
    assert_eq!(waiting["status"], "pending");
    assert!(
        waiting["dispatch_attempts"].as_u64().unwrap() >= 2,
        "{waiting}"
    );
    assert!(
        waiting["error"]
            .as_str()
            .unwrap()
            .contains("gateway unreachable"),
        "{waiting}"
    );

    let options = StoreOptions {
        policy: SchemaPolicy::Apply,
        max_connections: 2,
        ..StoreOptions::default()
    };
    let jobs = Arc::new(AnyJobStore::open(&jobs_at, options).await.unwrap());
    let gateway_listener = tokio::net::TcpListener::bind(("127.0.0.1", gateway_port))
        .await
        .unwrap();
    let owner = tenants().owner_of(KEY);
    // The orchestrator follows jobs on their event streams: it never polls a status.
    let polls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = polls.clone();
    let gateway_app =
        Gateway::new(jobs.clone(), tenants())
            .router()
            .layer(axum::middleware::from_fn(
                move |request: axum::extract::Request, next: axum::middleware::Next| {
                    if request.uri().path().starts_with("/job_status/") {
                        counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    next.run(request)
                },
            ));
    serve(gateway_listener, gateway_app).await;

    let dispatched = wait_for_status(&client, &base, &id, "dispatched").await;
    let job_id = format!("report-{id}");
    assert_eq!(dispatched["job_id"], job_id.as_str());
    let job = jobs
        .get(&owner, &job_id)
        .await
        .unwrap()
        .expect("the gateway recorded the job");
    assert_eq!(job.idempotency_key.as_deref(), Some(job_id.as_str()));

    // A worker's part, done through the job store's own contract.
    let claim = claim_one(&jobs).await;
    let params = engine::ProjectionParams {
        paths: 100,
        time_horizon_years: 10,
        seed: Some(3),
        ..Default::default()
    };
    let result = engine::project(
        &engine::BENCHMARK_PORTFOLIO,
        &params,
        &Default::default(),
        &engine::Shocks::Random,
        &(),
    )
    .unwrap();
    assert!(
        jobs.complete(&claim, &serde_json::to_string(&result).unwrap())
            .await
            .unwrap()
    );

    let completed = wait_for_status(&client, &base, &id, "completed").await;
    assert_eq!(
        completed["result"]["projection_value"].as_f64().unwrap(),
        result.projection_value
    );
    assert_eq!(polls.load(std::sync::atomic::Ordering::Relaxed), 0);
    let listed = get_json(&client, &format!("{base}/reports")).await;
    assert_eq!(listed["reports"][0]["id"], id.as_str());
    let stranger = client_of(OTHER_KEY);
    let not_theirs = stranger
        .get(format!("{base}/reports/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        not_theirs.status(),
        404,
        "another tenant's report is not found"
    );
    let theirs = get_json(&stranger, &format!("{base}/reports")).await;
    assert_eq!(theirs["reports"], json!([]), "{theirs}");
    let missing = client
        .get(format!("{base}/reports/nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["error"], "Report not found");
    shutdown.cancel();
    reports.close().await;
    jobs.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_whose_job_the_gateway_refuses_fail_and_never_hold_up_the_rest() {
    const STUCK: usize = 70;
    let directory = tempfile::tempdir().unwrap();
    let jobs_file = directory.path().join("jobs.sqlite");
    let reports = ReportStore::open(
        &Location::Sqlite(directory.path().join("reports.sqlite")),
        SchemaPolicy::Apply,
        2,
    )
    .await
    .unwrap();
    let jobs = Arc::new(
        AnyJobStore::open(
            &Location::Sqlite(jobs_file.clone()),
            StoreOptions {
                policy: SchemaPolicy::Apply,
                ..StoreOptions::default()
            },
        )
        .await
        .unwrap(),
    );
    let gateway_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gateway_url = format!("http://{}", gateway_listener.local_addr().unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    serve(listener, orchestrator_app(&reports, &gateway_url)).await;
    serve(
        gateway_listener,
        Gateway::new(jobs.clone(), tenants()).router(),
    )
    .await;
    let shutdown = spawn_dispatcher(&reports, DispatchConfig::new(&gateway_url));
    let client = client_of(KEY);
    let body =
        json!({"customer_id": "C-000042", "time_horizon_years": 10, "risk_profile": "balanced"});
    let mut stuck = Vec::new();
    for _ in 0..STUCK {
        stuck.push(create_report(&client, &base, &body).await);
    }
    for id in &stuck {
        wait_for_status(&client, &base, id, "dispatched").await;
    }
    // Their jobs vanish from the job store: the gateway answers 404 for each.
    let store = sqlx::SqlitePool::connect(&format!("sqlite://{}", jobs_file.display()))
        .await
        .unwrap();
    sqlx::query("DELETE FROM jobs")
        .execute(&store)
        .await
        .unwrap();
    store.close().await;
    for id in &stuck {
        let failed = wait_for_status(&client, &base, id, "failed").await;
        assert!(
            failed["error"].as_str().unwrap().contains("404"),
            "{failed}"
        );
    }

    let fresh = create_report(&client, &base, &body).await;
    wait_for_status(&client, &base, &fresh, "dispatched").await;
    let claim = claim_one(&jobs).await;
    assert!(jobs.complete(&claim, "{}").await.unwrap());
    wait_for_status(&client, &base, &fresh, "completed").await;
    shutdown.cancel();
    reports.close().await;
    jobs.close().await;
}
