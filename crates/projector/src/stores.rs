//! Where each role keeps its store, and the parts the roles are built from.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use cache::{Lifetimes, PortfolioCache};
use database::{Location, SchemaPolicy};
use jobstore::{AnyJobStore, StoreOptions};

/// Creates `directory` (and its missing parents) readable by this user only.
/// Files are private by the process's umask ([`private_files`]).
pub fn create_dir(directory: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;

    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(directory)
        .with_context(|| format!("cannot create the directory {}", directory.display()))
}

/// Creates the data directory as [`create_dir`] does, and warns when an
/// existing one lets other users in: it holds customers' holdings and results.
pub fn create_data_dir(directory: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;

    create_dir(directory)?;
    let mode = std::fs::metadata(directory)
        .with_context(|| format!("cannot read the directory {}", directory.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        tracing::warn!(
            directory = %directory.display(),
            mode = format!("{:o}", mode & 0o777),
            "other users can open this data directory, which holds customers' holdings and results; make it private with `chmod 700`"
        );
    }
    Ok(())
}

/// Every file this process creates (stores, their `-wal` and `-shm`, the
/// cache) is readable and writable by this user only.
pub fn private_files() {
    // SAFETY: umask only sets the process's file-creation mask; it cannot fail.
    unsafe {
        libc::umask(0o077);
    }
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
