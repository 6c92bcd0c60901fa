//! The worker node's private portfolio cache: an embedded LevelDB directory that
//! survives restarts, with a TTL stored in each entry, versioned keys, and
//! single-flight so that concurrent misses for one customer make one upstream call.
//!
//! It is a cache: the data service is the truth. A directory that cannot be
//! opened is moved aside and started afresh, with a warning.

mod entry;
mod single_flight;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use api::wire::Portfolio;
use rusty_leveldb::{AsyncDB, Options, Status, StatusCode};

use crate::entry::Entry;
use crate::single_flight::SingleFlight;

/// Version of the key layout and entry encoding. Bumping it leaves old entries unread.
const LAYOUT_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cache directory {path} cannot be opened or set aside: {detail}")]
    Open { path: PathBuf, detail: String },
    #[error("cache read or write failed: {0}")]
    Storage(String),
}

/// Where an answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Cache,
    Upstream,
}

/// Counters for tests and metrics.
#[derive(Debug, Default)]
pub struct Stats {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub expired: AtomicU64,
    pub upstream_calls: AtomicU64,
}

pub struct PortfolioCache {
    db: AsyncDB,
    ttl: Duration,
    flights: SingleFlight,
    stats: Stats,
}

impl PortfolioCache {
    /// Opens the cache in `directory`, moving a damaged one aside. Needs a tokio runtime.
    pub fn open(directory: &Path, ttl: Duration) -> Result<Self, Error> {
        let db = match open_db_when_unlocked(directory) {
            Ok(db) => db,
            Err(status) if status.code == StatusCode::LockError => {
                return Err(Error::Open {
                    path: directory.to_path_buf(),
                    detail: format!(
                        "it is in use by another process ({status}); stop that process or give this node its own directory"
                    ),
                });
            }
            Err(status) => {
                let detail = status.to_string();
                let aside = set_aside(directory)?;
                tracing::warn!(
                    directory = %directory.display(),
                    moved_to = %aside.display(),
                    %detail,
                    "cache could not be opened; moved it aside and started an empty one"
                );
                open_db(directory).map_err(|status| Error::Open {
                    path: directory.to_path_buf(),
                    detail: status.to_string(),
                })?
            }
        };
        Ok(PortfolioCache {
            db,
            ttl,
            flights: SingleFlight::default(),
            stats: Stats::default(),
        })
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The customer's portfolio from the cache, or from `fetch` on a miss or an
    /// expired entry. Concurrent callers for one customer share one `fetch`.
    pub async fn get_or_fetch<F, Fut, E>(
        &self,
        customer_id: &str,
        fetch: F,
    ) -> Result<(Portfolio, Source), E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Portfolio, E>>,
        E: From<Error>,
    {
        if let Some(portfolio) = self.fresh(customer_id).await? {
            return Ok((portfolio, Source::Cache));
        }
        let _flight = self.flights.join(customer_id).await;
        // Whoever held the flight before us may have filled the entry.
        if let Some(portfolio) = self.fresh(customer_id).await? {
            return Ok((portfolio, Source::Cache));
        }
        self.stats.upstream_calls.fetch_add(1, Ordering::Relaxed);
        let portfolio = fetch().await?;
        let ttl_millis = i64::try_from(self.ttl.as_millis()).unwrap_or(i64::MAX);
        let entry = Entry::new(now_millis().saturating_add(ttl_millis), &portfolio);
        self.db
            .put(key(customer_id), entry.encode())
            .await
            .map_err(|status| Error::Storage(status.to_string()))?;
        Ok((portfolio, Source::Upstream))
    }

    /// Drops a customer's entry (its holdings changed).
    pub async fn evict(&self, customer_id: &str) -> Result<(), Error> {
        self.db
            .delete(key(customer_id))
            .await
            .map_err(|status| Error::Storage(status.to_string()))
    }

    /// Writes buffered entries to disk and closes the database.
    pub async fn close(&self) -> Result<(), Error> {
        self.db
            .flush()
            .await
            .map_err(|status| Error::Storage(status.to_string()))?;
        self.db
            .close()
            .await
            .map_err(|status| Error::Storage(status.to_string()))
    }

    async fn fresh(&self, customer_id: &str) -> Result<Option<Portfolio>, Error> {
        let stored = self
            .db
            .get(key(customer_id))
            .await
            .map_err(|status| Error::Storage(status.to_string()))?;
        let Some(bytes) = stored else {
            self.stats.misses.fetch_add(1, Ordering::Relaxed);
            return Ok(None);
        };
        match Entry::decode(&bytes) {
            Some(entry) if entry.expires_at > now_millis() => {
                self.stats.hits.fetch_add(1, Ordering::Relaxed);
                Ok(Some(entry.portfolio))
            }
            Some(_) => {
                self.stats.expired.fetch_add(1, Ordering::Relaxed);
                Ok(None)
            }
            None => {
                tracing::warn!(%customer_id, "unreadable cache entry; fetching it again");
                self.stats.misses.fetch_add(1, Ordering::Relaxed);
                Ok(None)
            }
        }
    }
}

fn key(customer_id: &str) -> Vec<u8> {
    format!("v{LAYOUT_VERSION}/portfolio/{customer_id}").into_bytes()
}

fn open_db(directory: &Path) -> Result<AsyncDB, Status> {
    let options = Options {
        create_if_missing: true,
        ..Options::default()
    };
    AsyncDB::new(directory, options)
}

/// A lock is not damage: a handle that was just closed releases it on its own
/// thread a moment later, so wait for it a little before giving up.
fn open_db_when_unlocked(directory: &Path) -> Result<AsyncDB, Status> {
    const LOCK_WAIT: Duration = Duration::from_millis(20);
    const LOCK_TRIES: u32 = 100;
    let mut tries = 0;
    loop {
        match open_db(directory) {
            Err(status) if status.code == StatusCode::LockError && tries < LOCK_TRIES => {
                tries += 1;
                std::thread::sleep(LOCK_WAIT);
            }
            outcome => return outcome,
        }
    }
}

fn set_aside(directory: &Path) -> Result<PathBuf, Error> {
    let mut aside = directory.as_os_str().to_owned();
    aside.push(format!(".damaged-{}", now_millis()));
    let aside = PathBuf::from(aside);
    std::fs::rename(directory, &aside).map_err(|error| Error::Open {
        path: directory.to_path_buf(),
        detail: format!("could not move it aside to {}: {error}", aside.display()),
    })?;
    Ok(aside)
}

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as i64)
        .unwrap_or(0)
}
