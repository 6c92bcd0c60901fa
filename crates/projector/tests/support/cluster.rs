//! A cluster of real role processes on loopback around one PostgreSQL database
//! of the test's own: `projector migrate`, a data service, gateways, worker nodes
//! and, when asked for, an orchestrator.

use std::process::Command;
use std::str::FromStr;
use std::time::{Duration, Instant};

use database::testing::TestDatabase;
use serde_json::{Value, json};
use sqlx::postgres::PgConnectOptions;

use super::Proxy;
use super::{Process, submit};

pub struct ClusterOptions {
    pub gateways: usize,
    pub workers: usize,
    /// Options every worker gets (`--lease-seconds 2`, ...).
    pub worker_args: Vec<String>,
    pub orchestrator: bool,
    /// Roles reach PostgreSQL through a proxy the test can cut.
    pub through_proxy: bool,
    /// Options the data service gets (`--change-retention-seconds 1`, ...).
    pub datasvc_args: Vec<String>,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            gateways: 1,
            workers: 1,
            worker_args: Vec::new(),
            orchestrator: false,
            through_proxy: false,
            datasvc_args: Vec::new(),
        }
    }
}

pub struct TestCluster {
    pub gateways: Vec<Process>,
    /// Node id and process; `None` once killed.
    pub workers: Vec<(String, Option<Process>)>,
    pub orchestrator: Option<Process>,
    pub datasvc: Process,
    pub proxy: Option<Proxy>,
    /// The URL the roles use (through the proxy when there is one).
    pub roles_database_url: String,
    pub directory: tempfile::TempDir,
    // Declared last: dropped after every process is gone.
    pub database: TestDatabase,
}

impl TestCluster {
    pub async fn start(options: ClusterOptions) -> TestCluster {
        let database = TestDatabase::create().await;
        let directory = tempfile::tempdir().unwrap();
        let (proxy, roles_database_url) = if options.through_proxy {
            let server = PgConnectOptions::from_str(database.url()).unwrap();
            let upstream = format!("{}:{}", server.get_host(), server.get_port());
            let proxy = Proxy::start(upstream.parse().unwrap()).await;
            let url = database
                .url()
                .replacen(&upstream, &proxy.address.to_string(), 1);
            (Some(proxy), url)
        } else {
            (None, database.url().to_string())
        };
        let migrated = Command::new(env!("CARGO_BIN_EXE_projector"))
            .args(["migrate", "--database-url", &roles_database_url])
            .output()
            .unwrap();
        assert!(
            migrated.status.success(),
            "projector migrate failed: {}",
            String::from_utf8_lossy(&migrated.stderr)
        );
        let mut cluster = TestCluster {
            gateways: Vec::new(),
            workers: Vec::new(),
            orchestrator: None,
            datasvc: super::start(
                &[
                    &[
                        "datasvc",
                        "--addr",
                        "127.0.0.1:0",
                        "--database-url",
                        &roles_database_url,
                    ][..],
                    &options
                        .datasvc_args
                        .iter()
                        .map(String::as_str)
                        .collect::<Vec<_>>(),
                ]
                .concat(),
                directory.path(),
                "datasvc.log",
                "data service",
            ),
            proxy,
            roles_database_url,
            directory,
            database,
        };
        for _ in 0..options.gateways {
            cluster.add_gateway();
        }
        for index in 1..=options.workers {
            cluster.add_worker(&format!("node-{index}"), &options.worker_args);
        }
        if options.workers > 0 {
            cluster.until_membership_settled(options.workers).await;
        }
        if options.orchestrator {
            let gateway_url = cluster.gateway_url(0);
            cluster.orchestrator = Some(super::start(
                &[
                    "orchestrator",
                    "--addr",
                    "127.0.0.1:0",
                    "--gateway-url",
                    &gateway_url,
                    "--database-url",
                    &cluster.roles_database_url,
                ],
                cluster.directory.path(),
                "orchestrator.log",
                "orchestrator",
            ));
        }
        cluster
    }

    /// Waits until every live node has renewed its registration since the last
    /// one joined: from then on each knows the others, and owns only its share.
    pub async fn until_membership_settled(&self, nodes: usize) {
        self.until_database(|pool| async move {
            let (live, settled): (i64, bool) = sqlx::query_as(
                "SELECT COUNT(*), COALESCE(MIN(heartbeat_at) > MAX(started_at), false)
                 FROM jobstore.nodes",
            )
            .fetch_one(&pool)
            .await
            .unwrap();
            (live != nodes as i64 || !settled)
                .then(|| format!("{live} of {nodes} worker nodes registered, settled: {settled}"))
        })
        .await;
    }

    /// Waits until every other registered node has renewed its registration
    /// after `node_id`'s last one went past the liveness window: from then on
    /// none of them counts it, and its partitions have moved.
    pub async fn until_node_forgotten(&self, node_id: &str, liveness: Duration) {
        self.until_database(|pool| async move {
            let (waiting,): (i64,) = sqlx::query_as(
                "SELECT COUNT(*) FROM jobstore.nodes
                 WHERE id <> $1
                   AND heartbeat_at <= (SELECT heartbeat_at FROM jobstore.nodes WHERE id = $1) + $2",
            )
            .bind(node_id)
            .bind(liveness.as_millis() as i64)
            .fetch_one(&pool)
            .await
            .unwrap();
            (waiting > 0).then(|| format!("{waiting} nodes still count {node_id} as live"))
        })
        .await;
    }

    /// Polls the database until `pending` finds nothing left to wait for;
    /// fails with its last answer after 30 seconds.
    async fn until_database<F, Fut>(&self, pending: F)
    where
        F: Fn(sqlx::PgPool) -> Fut,
        Fut: Future<Output = Option<String>>,
    {
        let pool = self.inspect().await;
        let deadline = Instant::now() + Duration::from_secs(30);
        while let Some(waiting) = pending(pool.clone()).await {
            assert!(Instant::now() < deadline, "{waiting}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        pool.close().await;
    }

    pub fn add_gateway(&mut self) {
        let index = self.gateways.len();
        let gateway = super::start(
            &[
                "gateway",
                "--addr",
                "127.0.0.1:0",
                "--database-url",
                &self.roles_database_url,
            ],
            self.directory.path(),
            &format!("gateway-{index}.log"),
            "gateway",
        );
        self.gateways.push(gateway);
    }

    /// Starts a worker node with its cache in `cache/<cache_name>`; returns it
    /// even if it exits at once (a refused id).
    pub fn spawn_worker(&self, node_id: &str, cache_name: &str, extra: &[String]) -> Process {
        let cache_dir = self.directory.path().join("cache").join(cache_name);
        let datasvc_url = self.datasvc_url();
        let mut args = vec![
            "worker",
            "--node-id",
            node_id,
            "--cache-dir",
            cache_dir.to_str().unwrap(),
            "--datasvc-url",
            &datasvc_url,
            "--database-url",
            &self.roles_database_url,
        ];
        args.extend(extra.iter().map(String::as_str));
        super::spawn(
            &args,
            self.directory.path(),
            &format!("{cache_name}.log"),
            "worker",
        )
    }

    pub fn add_worker(&mut self, node_id: &str, extra: &[String]) {
        let worker = self.spawn_worker(node_id, node_id, extra);
        self.workers.push((node_id.to_string(), Some(worker)));
    }

    /// Where a running worker node answers its health and metrics.
    pub fn worker_url(&self, node_id: &str) -> String {
        self.workers
            .iter()
            .find(|(id, _)| id == node_id)
            .and_then(|(_, process)| process.as_ref())
            .unwrap_or_else(|| panic!("no running worker {node_id}"))
            .url("worker")
    }

    pub fn kill_worker(&mut self, node_id: &str) {
        let slot = self
            .workers
            .iter_mut()
            .find(|(id, _)| id == node_id)
            .unwrap_or_else(|| panic!("no worker {node_id}"));
        slot.1.take().expect("the worker runs").kill();
    }

    pub fn gateway_url(&self, index: usize) -> String {
        self.gateways[index].url("gateway")
    }

    pub fn datasvc_url(&self) -> String {
        self.datasvc.url("data")
    }

    pub fn orchestrator_url(&self) -> String {
        self.orchestrator
            .as_ref()
            .expect("the cluster has an orchestrator")
            .url("orchestrator")
    }

    /// A connection to the cluster's database, bypassing any proxy.
    pub async fn inspect(&self) -> sqlx::PgPool {
        sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect(self.database.url())
            .await
            .unwrap()
    }
}

pub fn trivial_job(job_id: &str, customer: &str) -> Value {
    json!({"job_id": job_id, "parameters": {"customer_id": customer, "time_horizon_years": 1, "risk_profile": "balanced", "paths": 100}})
}

pub fn heavy_job(job_id: &str, customer: &str) -> Value {
    json!({"job_id": job_id, "parameters": {"customer_id": customer, "time_horizon_years": 50, "risk_profile": "balanced", "paths": 100000}})
}

pub fn customer(number: usize) -> String {
    format!("C-{number:06}")
}

/// Submits every job, `concurrency` at a time, round robin over the gateways.
pub async fn submit_all(gateways: &[String], jobs: Vec<Value>, concurrency: usize) {
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
pub async fn until_finished(pool: &sqlx::PgPool, count: i64, within: Duration) {
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
pub struct Tally {
    pub rows: i64,
    /// Completed with a stored result.
    pub completed: i64,
    /// Attempts of every job together.
    pub attempts: i64,
    /// Jobs still under somebody's lease.
    pub leased: i64,
}

pub async fn tally(pool: &sqlx::PgPool) -> Tally {
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
pub async fn lease_owner(pool: &sqlx::PgPool, job_id: &str) -> Option<String> {
    let owner: Option<(Option<String>,)> =
        sqlx::query_as("SELECT lease_owner FROM jobstore.jobs WHERE id = $1")
            .bind(job_id)
            .fetch_optional(pool)
            .await
            .unwrap();
    owner.and_then(|(owner,)| owner)
}
