//! Where each role keeps its store, and the parts the roles are built from.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use cache::PortfolioCache;
use clap::Args;
use database::{Location, SchemaPolicy};
use jobstore::{AnyJobStore, StoreOptions};

/// `--database-url`, or the embedded SQLite files in `--data-dir`.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// The store: postgres://USER@HOST:PORT/DATABASE (one database holds every
    /// store), or sqlite://FILE (one file per store); the SQLite files in
    /// --data-dir when absent.
    #[arg(
        long,
        env = "PROJECTOR_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    /// Directory for the embedded SQLite stores, a worker's cache and `up`'s API key.
    #[arg(long, env = "PROJECTOR_DATA_DIR", default_value = "./projector-data")]
    pub data_dir: PathBuf,
}

impl StoreArgs {
    /// The store named by the URL, or the embedded `file` in the data directory.
    pub fn location(&self, file: &str) -> Result<Location> {
        match &self.database_url {
            Some(url) => Location::parse(url).map_err(Into::into),
            None => {
                create_dir(&self.data_dir)?;
                Ok(Location::Sqlite(self.data_dir.join(file)))
            }
        }
    }

    /// A shared store named by URL changes schema only through `projector migrate`;
    /// the embedded default is this process's own and is kept up to date.
    pub fn policy(&self) -> SchemaPolicy {
        match self.database_url {
            Some(_) => SchemaPolicy::Require,
            None => SchemaPolicy::Apply,
        }
    }
}

pub fn create_dir(directory: &Path) -> Result<()> {
    std::fs::create_dir_all(directory)
        .with_context(|| format!("cannot create the directory {}", directory.display()))
}

pub const JOBS_FILE: &str = "jobs.sqlite";
pub const REPORTS_FILE: &str = "orchestrator.sqlite";
pub const DATA_FILE: &str = "datasvc.sqlite";

/// PostgreSQL connections each role keeps at most, besides a worker's or
/// gateway's one for notifications. PostgreSQL allows 100 by default, and a
/// cluster's processes share them; a worker needs few (claims, results and
/// heartbeats are grouped), a gateway's intake needs one per group in flight.
pub const GATEWAY_CONNECTIONS: u32 = 6;
pub const WORKER_CONNECTIONS: u32 = 4;
pub const DATASVC_CONNECTIONS: u32 = 6;
pub const ORCHESTRATOR_CONNECTIONS: u32 = 3;
/// `up` runs gateway and worker on one job store.
pub const UP_JOB_STORE_CONNECTIONS: u32 = GATEWAY_CONNECTIONS + WORKER_CONNECTIONS;

pub async fn open_job_store(
    location: &Location,
    policy: SchemaPolicy,
    max_connections: u32,
) -> Result<AnyJobStore> {
    let options = StoreOptions {
        policy,
        max_connections,
        ..StoreOptions::default()
    };
    AnyJobStore::open(location, options)
        .await
        .with_context(|| format!("cannot open the job store at {location}"))
}

/// Opening may wait for a lock and move a damaged directory aside: blocking
/// work, kept off the async runtime's threads.
pub async fn open_cache(directory: PathBuf, ttl: Duration) -> Result<Arc<PortfolioCache>> {
    tokio::task::spawn_blocking(move || {
        if let Some(parent) = directory.parent() {
            create_dir(parent)?;
        }
        PortfolioCache::open(&directory, ttl).context("cannot open the worker cache")
    })
    .await
    .context("the cache opener stopped unexpectedly")?
    .map(Arc::new)
}

/// The engine's threads, below the HTTP and job-store threads in priority so
/// that intake stays fast while every core runs projections.
pub fn engine_pool() -> Result<Arc<rayon::ThreadPool>> {
    let pool = rayon::ThreadPoolBuilder::new()
        .thread_name(|index| format!("engine-{index}"))
        .start_handler(|_| lower_thread_priority())
        .build()
        .context("cannot start the engine threads")?;
    Ok(Arc::new(pool))
}

fn lower_thread_priority() {
    const ENGINE_NICENESS: libc::c_int = 10;
    // SAFETY: setpriority only reads its arguments; `who = 0` is the calling thread on Linux.
    let changed = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, ENGINE_NICENESS) };
    if changed != 0 {
        tracing::debug!("engine thread priority left unchanged");
    }
}
