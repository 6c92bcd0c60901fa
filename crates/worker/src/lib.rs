//! A worker node: actors that claim jobs under a lease, read the customer's
//! portfolio through the node's LevelDB cache, run the engine on a dedicated
//! thread pool, and store the result under the lease.

mod client;
mod job;

use std::sync::Arc;
use std::time::Duration;

use cache::PortfolioCache;
use jobstore::JobStore;
use tokio_util::sync::CancellationToken;

pub use client::{ClientConfig, DataClient, FetchError};

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Names the node in leases and logs.
    pub node_id: String,
    /// Jobs run at once on this node.
    pub actors: usize,
    pub lease: Duration,
    pub heartbeat: Duration,
    /// Wait between claims when the queue is empty.
    pub idle_poll: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            node_id: "node-1".into(),
            actors: std::thread::available_parallelism().map_or(1, |cores| cores.get()),
            lease: Duration::from_secs(15),
            heartbeat: Duration::from_secs(3),
            idle_poll: Duration::from_millis(50),
        }
    }
}

/// Everything an actor needs, shared by the node's actors.
pub struct Node<S> {
    pub config: WorkerConfig,
    pub store: Arc<S>,
    pub cache: Arc<PortfolioCache>,
    pub client: DataClient,
    /// The engine's threads: heavy computation never runs on the async runtime.
    pub engine_pool: Arc<rayon::ThreadPool>,
}

impl<S: JobStore> Node<S> {
    /// Runs the actors and the lease reaper until `shutdown`; a running job is
    /// finished (or its lease released by the reaper) before this returns.
    pub async fn run(self, shutdown: CancellationToken) {
        let node = Arc::new(self);
        let mut tasks = tokio::task::JoinSet::new();
        for actor in 0..node.config.actors {
            tasks.spawn(job::actor_loop(node.clone(), actor, shutdown.clone()));
        }
        tasks.spawn(reaper_loop(node.clone(), shutdown.clone()));
        while tasks.join_next().await.is_some() {}
    }
}

/// Returns the jobs of dead workers to the queue. Every node runs one; the
/// statement is idempotent, so several reapers do no harm.
async fn reaper_loop<S: JobStore>(node: Arc<Node<S>>, shutdown: CancellationToken) {
    let period = node.config.lease / 3;
    loop {
        match node.store.reap_expired_leases().await {
            Ok(0) => {}
            Ok(count) => {
                tracing::warn!(count, "returned jobs of unresponsive workers to the queue")
            }
            Err(error) => tracing::error!(%error, "lease reaper could not reach the job store"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(period) => {}
        }
    }
}
