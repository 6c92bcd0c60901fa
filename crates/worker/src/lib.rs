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

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use cache::{Lifetimes, PortfolioCache};
use jobstore::{AnyJobStore, JobStore};
use service::server::{HttpListener, Shutdown};

pub use client::{ClientConfig, DataClient, FetchError};
pub use placement::owned_partitions;

/// Everything a worker node is made from.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub node: NodeConfig,
    /// The node's own LevelDB cache of portfolios and results.
    pub cache_dir: PathBuf,
    pub cache_lifetimes: Lifetimes,
    /// The data service the node reads portfolios and their changes from.
    pub data_service: ClientConfig,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot open the worker cache: {0}")]
    Cache(#[from] cache::Error),
    #[error("cannot build the data-service client: {0}")]
    Client(#[from] reqwest::Error),
    #[error("cannot start the engine threads: {0}")]
    EngineThreads(#[from] rayon::ThreadPoolBuildError),
    #[error(transparent)]
    Store(#[from] jobstore::Error),
    #[error("the worker's health and metrics listener failed: {0}")]
    Listener(#[from] std::io::Error),
    #[error("the worker node stopped unexpectedly: {0}")]
    Stopped(#[from] tokio::task::JoinError),
}

/// Runs a worker node over `store` until `shutdown`: it claims and runs jobs
/// until draining starts (its running jobs are work the process waits for),
/// and serves its `/healthz`, `/readyz` and `/metrics` on `listener` until
/// the process stops, or until the node fails. Over the store a URL names,
/// not generic: the node is compiled here once.
pub async fn run(
    config: WorkerConfig,
    store: Arc<AnyJobStore>,
    listener: HttpListener,
    shutdown: Shutdown,
) -> Result<(), Error> {
    if config.data_service.token.is_none() {
        tracing::warn!(
            "no data-service token (PROJECTOR_DATASVC_TOKEN): portfolios are fetched without credentials, which only a data service that allows anonymous callers answers"
        );
    }
    let cache = open_cache(config.cache_dir, config.cache_lifetimes).await?;
    let outcome = serve_node(
        Node {
            config: config.node,
            store,
            cache: cache.clone(),
            client: DataClient::new(config.data_service)?,
            engine_pool: engine_threads::engine_pool()?,
        },
        listener,
        shutdown,
    )
    .await;
    if let Err(error) = cache.close().await {
        tracing::warn!(%error, "cache did not close cleanly; it will be checked on the next start");
    }
    outcome
}

async fn serve_node<S: JobStore>(
    node: Node<S>,
    listener: HttpListener,
    shutdown: Shutdown,
) -> Result<(), Error> {
    // Its own stop, so that a node that fails closes its listener at once.
    let operations_shutdown = shutdown.child();
    let operations = tokio::spawn(serve_operations(
        node.store.clone(),
        node.client.clone(),
        listener,
        operations_shutdown.clone(),
    ));
    let ran = shutdown
        .track(node::run(node, shutdown.draining_token()))
        .await;
    if matches!(ran, Ok(Ok(()))) {
        // Readiness answers 503 until the whole process stops.
        shutdown.stopping().await;
    }
    operations_shutdown.stop();
    let served = operations.await;
    ran??;
    Ok(served??)
}

/// Opening may wait for a lock and move a damaged directory aside: blocking
/// work, kept off the async runtime's threads.
async fn open_cache(
    directory: PathBuf,
    lifetimes: Lifetimes,
) -> Result<Arc<PortfolioCache>, Error> {
    let opened =
        tokio::task::spawn_blocking(move || PortfolioCache::open_with(&directory, lifetimes))
            .await?;
    Ok(Arc::new(opened?))
}

/// Serves the node's operations on `listener` until `shutdown` stops it:
/// ready while its job store and the data service answer.
async fn serve_operations<S: JobStore>(
    store: Arc<S>,
    client: DataClient,
    listener: HttpListener,
    shutdown: Shutdown,
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

/// How a node claims, leases and keeps jobs.
#[derive(Debug, Clone)]
pub struct NodeConfig {
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

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
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
pub(crate) struct Node<S> {
    pub(crate) config: NodeConfig,
    pub(crate) store: Arc<S>,
    pub(crate) cache: Arc<PortfolioCache>,
    pub(crate) client: DataClient,
    /// The engine's threads: heavy computation never runs on the async runtime.
    pub(crate) engine_pool: Arc<rayon::ThreadPool>,
}
