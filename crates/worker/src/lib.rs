//! A worker node: registers itself among the live nodes, owns the partitions that
//! rendezvous hashing gives it, claims as many jobs as it has free actors in one
//! statement (its own partitions first, others' only once they have waited),
//! reads each customer's portfolio through the node's LevelDB cache (which
//! follows the data service's change feed), runs the
//! engine on a dedicated thread pool, and stores the result under the lease.

mod client;
mod engine_threads;
mod feed;
mod job;
mod node;
mod placement;
mod reuse;

use std::sync::Arc;
use std::time::Duration;

use cache::PortfolioCache;

pub use client::{ClientConfig, DataClient, FetchError};
pub use node::run;
pub use placement::owned_partitions;

/// Serves the node's `/healthz`, `/readyz` and `/metrics` on `listener` until
/// `shutdown` stops it: ready while its job store and the data service answer.
pub async fn serve_operations<S: jobstore::JobStore>(
    store: Arc<S>,
    client: DataClient,
    listener: impl Into<service::server::HttpListener>,
    shutdown: service::server::Shutdown,
) -> std::io::Result<()> {
    let checked = store.clone();
    let readiness: service::server::ReadinessCheck = Arc::new(move || {
        let (store, client) = (checked.clone(), client.clone());
        Box::pin(async move {
            store
                .ping()
                .await
                .map_err(|error| format!("the job store does not answer ({error})"))?;
            client.answers().await
        })
    });
    let depth = service::metrics::queue_depth(move || {
        let store = store.clone();
        async move {
            let depth = store.queue_depth().await?;
            Ok::<_, jobstore::Error>((depth.queued, depth.processing))
        }
    });
    let app = service::server::App::new(axum::Router::new(), readiness).with_collect(depth);
    service::server::serve(listener, app, shutdown).await
}

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Names the node in leases, the node registry and logs; unique among live nodes.
    pub node_id: String,
    /// Jobs run at once on this node.
    pub actors: usize,
    /// How long a claim holds without a heartbeat; also how long a silent node
    /// stays in the registry before its partitions move.
    pub lease: Duration,
    pub heartbeat: Duration,
    /// How often a running job's progress is recorded while it changes (its
    /// watchers see it move); the lease is renewed every `heartbeat` regardless.
    pub progress_every: Duration,
    /// Longest wait between claims while idle; a commit wakes the node sooner.
    pub idle_poll: Duration,
    /// Jobs of partitions this node does not own are taken once they waited this long.
    pub steal_after: Duration,
    /// How long running jobs may finish after shutdown begins before they are
    /// stopped and given back to the queue.
    pub shutdown_grace: Duration,
    /// Finished jobs are deleted after this age.
    pub retention: Duration,
    /// Jobs one tenant may have running across the cluster; no limit when absent.
    pub max_running_per_tenant: Option<u32>,
    /// Paths a job may ask for; a stored job above it (taken before the limit
    /// was lowered) fails for good, naming the limit.
    pub max_paths: u32,
    /// Longest wait at start for the changes made while the node was away.
    pub catch_up_limit: Duration,
    /// Take the node id even if its registration still looks live: for a
    /// deployment that knows it is the only process with this id (`up`, after a crash).
    pub reclaim_node_id: bool,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            node_id: "node-1".into(),
            actors: std::thread::available_parallelism().map_or(1, |cores| cores.get()),
            lease: Duration::from_secs(15),
            heartbeat: Duration::from_secs(3),
            progress_every: Duration::from_secs(1),
            idle_poll: Duration::from_millis(250),
            steal_after: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(10),
            retention: Duration::from_secs(7 * 24 * 3600),
            max_running_per_tenant: None,
            max_paths: wire::DEFAULT_MAX_PATHS,
            catch_up_limit: Duration::from_secs(5),
            reclaim_node_id: false,
        }
    }
}

/// What a node works with, shared by its actors.
pub struct Node<S> {
    pub config: WorkerConfig,
    pub store: Arc<S>,
    pub cache: Arc<PortfolioCache>,
    pub client: DataClient,
    /// The engine's threads: heavy computation never runs on the async runtime.
    pub engine_pool: Arc<rayon::ThreadPool>,
}
