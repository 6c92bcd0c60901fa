//! Where each role keeps its store, and the parts the roles are built from.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use cache::{Lifetimes, PortfolioCache};
use database::{Location, SchemaPolicy};
use jobstore::{AnyJobStore, StoreOptions};

pub fn create_dir(directory: &Path) -> Result<()> {
    std::fs::create_dir_all(directory)
        .with_context(|| format!("cannot create the directory {}", directory.display()))
}

pub const JOBS_FILE: &str = "jobs.sqlite";
pub const REPORTS_FILE: &str = "orchestrator.sqlite";
pub const DATA_FILE: &str = "datasvc.sqlite";

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
pub async fn open_cache(directory: PathBuf, lifetimes: Lifetimes) -> Result<Arc<PortfolioCache>> {
    tokio::task::spawn_blocking(move || {
        if let Some(parent) = directory.parent() {
            create_dir(parent)?;
        }
        PortfolioCache::open_with(&directory, lifetimes).context("cannot open the worker cache")
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
