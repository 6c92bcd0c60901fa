//! The worker node's private portfolio cache: an embedded LevelDB directory that
//! survives restarts, with a TTL stored in each entry, versioned keys, and
//! single-flight so that concurrent misses for one customer make one upstream call.
//!
//! It follows the data service's change feed: [`PortfolioCache::apply_changes`]
//! evicts the customers that changed and records the feed position in one
//! atomic write, and a portfolio fetched while its customer changed is not
//! stored (each portfolio says the feed position it was read at). The TTL stays
//! as the backstop for when the feed cannot be reached.
//!
//! It is a cache: the data service is the truth. A directory that cannot be
//! opened is moved aside and started afresh, with a warning.

mod entry;
mod layout;
mod single_flight;
mod stats;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusty_leveldb::{AsyncDB, Status, StatusCode, WriteBatch};
use tokio::sync::Mutex;
use wire::{Change, Portfolio};

use crate::entry::Entry;
pub use crate::layout::FeedMark;
use crate::layout::{expiring, portfolio_key, result_key, split_expiring};
use crate::single_flight::SingleFlight;
pub use crate::stats::{Stats, Tally};

/// How long each kind of entry is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetimes {
    /// How long a fetched portfolio is served without asking again.
    pub portfolio: Duration,
    /// How long "unknown customer" is remembered: a burst of jobs for a
    /// customer that does not exist asks the data service once. A customer
    /// created since is a change, which evicts it sooner.
    pub unknown: Duration,
    /// How long after its expiry a portfolio may still be served while the
    /// data service cannot answer.
    pub stale_limit: Duration,
    /// How long a computed result is kept for reuse.
    pub result: Duration,
}

impl Lifetimes {
    /// The defaults, with portfolios fresh for `portfolio`.
    pub fn fresh_for(portfolio: Duration) -> Self {
        Lifetimes {
            portfolio,
            unknown: Duration::from_secs(10),
            stale_limit: Duration::from_secs(24 * 3600),
            result: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// Fetches of one customer in one call when changes keep coming meanwhile:
/// the last is used without being stored.
const FETCHES_PER_CALL: u32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cache directory {path} cannot be used: {detail}")]
    Open { path: PathBuf, detail: String },
    #[error("cache read or write failed: {0}")]
    Storage(String),
}

impl From<Status> for Error {
    fn from(status: Status) -> Self {
        Error::Storage(status.to_string())
    }
}

/// Where an answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Cache,
    Upstream,
    /// An expired entry, served because the data service could not answer.
    Stale,
}

/// What the data service answered.
#[derive(Debug, Clone, PartialEq)]
pub enum Fetched {
    Portfolio(Portfolio),
    /// The data service does not know the customer.
    Unknown,
}

/// What a lookup found.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup {
    Found(Portfolio, Source),
    /// The data service does not know the customer (now, or within [`Lifetimes::unknown`]).
    Unknown,
}

pub struct PortfolioCache {
    db: AsyncDB,
    lifetimes: Lifetimes,
    flights: SingleFlight,
    /// The place in the change feed; held while entries are stored or evicted,
    /// so that a store and an eviction of one customer never interleave.
    mark: Mutex<FeedMark>,
    /// The mark's epoch, for reads that do not wait for the mark.
    epoch: AtomicU64,
    stats: Stats,
}

impl PortfolioCache {
    /// Opens the cache in `directory` with portfolios fresh for `ttl` and the
    /// other lifetimes at their defaults.
    pub fn open(directory: &Path, ttl: Duration) -> Result<Self, Error> {
        Self::open_with(directory, Lifetimes::fresh_for(ttl))
    }

    /// Opens the cache in `directory`, moving a damaged one aside. Needs a tokio runtime.
    pub fn open_with(directory: &Path, lifetimes: Lifetimes) -> Result<Self, Error> {
        layout::check_writable(directory)?;
        let mark = match when_unlocked(|| layout::tidy(directory, now_millis())) {
            Ok((mark, 0)) => mark,
            Ok((mark, deleted)) => {
                tracing::info!(
                    deleted,
                    "deleted cache entries of an earlier epoch or layout, and expired results"
                );
                mark
            }
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
                let aside = layout::set_aside(directory, now_millis())?;
                tracing::warn!(
                    directory = %directory.display(),
                    moved_to = %aside.display(),
                    %detail,
                    "cache could not be opened; moved it aside and started an empty one"
                );
                FeedMark::default()
            }
        };
        let db =
            when_unlocked(|| AsyncDB::new(directory, layout::options())).map_err(|status| {
                Error::Open {
                    path: directory.to_path_buf(),
                    detail: status.to_string(),
                }
            })?;
        Ok(PortfolioCache {
            db,
            lifetimes,
            flights: SingleFlight::default(),
            epoch: AtomicU64::new(mark.epoch),
            mark: Mutex::new(mark),
            stats: Stats::default(),
        })
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The customer's portfolio from the cache, or from `fetch` on a miss or an
    /// expired entry. Concurrent callers for one customer share one `fetch`.
    /// A portfolio read before a change the cache has already seen is fetched
    /// again rather than stored. When `fetch` fails with an error that
    /// `serve_stale` accepts (the data service is down), an expired entry, if
    /// any, is served instead ([`Source::Stale`]).
    pub async fn get_or_fetch<F, Fut, E>(
        &self,
        customer_id: &str,
        fetch: F,
        serve_stale: impl Fn(&E) -> bool,
    ) -> Result<Lookup, E>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<Fetched, E>>,
        E: From<Error>,
    {
        if let Stored::Fresh(found) = self.stored(customer_id).await? {
            self.stats.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(found);
        }
        let flight = self.flights.join(customer_id).await;
        let epoch = self.epoch.load(Ordering::SeqCst);
        // Whoever held the flight before us may have filled the entry.
        let expired = match self.stored(customer_id).await? {
            Stored::Fresh(found) => {
                self.stats.hits.fetch_add(1, Ordering::Relaxed);
                return Ok(found);
            }
            Stored::Expired(portfolio) => {
                self.stats.expired.fetch_add(1, Ordering::Relaxed);
                portfolio
            }
            Stored::Missing => None,
        };
        self.stats.misses.fetch_add(1, Ordering::Relaxed);
        let mut fetches = 0;
        loop {
            self.stats.upstream_calls.fetch_add(1, Ordering::Relaxed);
            let portfolio = match fetch().await {
                Ok(Fetched::Portfolio(portfolio)) => portfolio,
                Ok(Fetched::Unknown) => {
                    let mark = self.mark.lock().await;
                    // Unknown has no feed position: kept only if nothing
                    // changed for the customer while it was asked.
                    if flight.changed_at() == 0 && mark.epoch == epoch {
                        self.put(&mark, customer_id, None, self.lifetimes.unknown)
                            .await?;
                    }
                    return Ok(Lookup::Unknown);
                }
                Err(error) => match expired {
                    Some(portfolio) if serve_stale(&error) => {
                        self.stats.stale_served.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(%customer_id, as_of = %portfolio.as_of, version = portfolio.version, "the data service cannot answer; serving the expired cached portfolio");
                        return Ok(Lookup::Found(portfolio, Source::Stale));
                    }
                    _ => return Err(error),
                },
            };
            fetches += 1;
            let mark = self.mark.lock().await;
            let read_at = portfolio.change_position;
            let outdated = flight.changed_at() > read_at || read_at < mark.floor;
            if !outdated {
                self.put(
                    &mark,
                    customer_id,
                    Some(&portfolio),
                    self.lifetimes.portfolio,
                )
                .await?;
                return Ok(Lookup::Found(portfolio, Source::Upstream));
            }
            self.stats.discarded.fetch_add(1, Ordering::Relaxed);
            if fetches == FETCHES_PER_CALL {
                tracing::warn!(%customer_id, "the customer keeps changing; using the latest portfolio without caching it");
                return Ok(Lookup::Found(portfolio, Source::Upstream));
            }
        }
    }

    /// Stores an answer for `ttl` under the mark's epoch (the caller holds the mark).
    async fn put(
        &self,
        mark: &FeedMark,
        customer_id: &str,
        portfolio: Option<&Portfolio>,
        ttl: Duration,
    ) -> Result<(), Error> {
        let ttl_millis = millis(ttl);
        let entry = Entry::new(now_millis().saturating_add(ttl_millis), portfolio);
        let mut batch = WriteBatch::default();
        batch.put(&portfolio_key(mark.epoch, customer_id), &entry.encode());
        self.write_through(batch).await
    }

    /// The result stored under `digest` (a digest of everything that
    /// determines it), while it is within its lifetime.
    pub async fn result(&self, digest: &[u8; 32]) -> Result<Option<String>, Error> {
        let Some(bytes) = self.db.get(result_key(digest)).await? else {
            return Ok(None);
        };
        let found = split_expiring(&bytes)
            .filter(|(expires_at, _)| *expires_at > now_millis())
            .and_then(|(_, json)| String::from_utf8(json.to_vec()).ok());
        if found.is_some() {
            self.stats.results_reused.fetch_add(1, Ordering::Relaxed);
        }
        Ok(found)
    }

    /// Keeps `json` for reuse under `digest` for the results' lifetime.
    pub async fn store_result(&self, digest: &[u8; 32], json: &str) -> Result<(), Error> {
        let ttl_millis = millis(self.lifetimes.result);
        let mut batch = WriteBatch::default();
        batch.put(
            &result_key(digest),
            &expiring(now_millis().saturating_add(ttl_millis), json.as_bytes()),
        );
        self.write_through(batch).await
    }

    /// Where the cache stands in the change feed.
    pub async fn feed_mark(&self) -> FeedMark {
        self.mark.lock().await.clone()
    }

    /// Evicts the customers of `changes` (of the feed `feed_id`) whose entries
    /// were read before their change, tells fetches under way, and moves the
    /// cursor to `through`, in one atomic write. Returns, for each change,
    /// whether it evicted an entry.
    pub async fn apply_changes(
        &self,
        feed_id: &str,
        changes: &[Change],
        through: i64,
    ) -> Result<Vec<bool>, Error> {
        let mut mark = self.mark.lock().await;
        let mut batch = WriteBatch::default();
        let mut evicted = Vec::with_capacity(changes.len());
        for change in changes {
            self.flights.changed(&change.customer_id, change.position);
            let key = portfolio_key(mark.epoch, &change.customer_id);
            let stale = match self.db.get(key.clone()).await? {
                Some(bytes) => {
                    Entry::decode(&bytes).is_none_or(|entry| entry.outdated_by(change.position))
                }
                None => false,
            };
            if stale {
                batch.delete(&key);
            }
            evicted.push(stale);
        }
        let moved = FeedMark {
            feed_id: feed_id.to_string(),
            cursor: through,
            ..mark.clone()
        };
        batch.put(&FeedMark::key(), &moved.encode());
        self.write_through(batch).await?;
        *mark = moved;
        let count = evicted.iter().filter(|&&evicted| evicted).count();
        self.stats
            .evictions
            .fetch_add(count as u64, Ordering::Relaxed);
        Ok(evicted)
    }

    /// Drops every entry at once (a new epoch) and follows `feed_id` from
    /// `position`: for a cache that has missed changes, or has never followed
    /// this feed. Portfolios read before `position` are not stored after it.
    pub async fn start_epoch(&self, feed_id: &str, position: i64) -> Result<(), Error> {
        let mut mark = self.mark.lock().await;
        let next = FeedMark {
            feed_id: feed_id.to_string(),
            cursor: position,
            floor: position,
            epoch: mark.epoch + 1,
        };
        let mut batch = WriteBatch::default();
        batch.put(&FeedMark::key(), &next.encode());
        self.write_through(batch).await?;
        self.epoch.store(next.epoch, Ordering::SeqCst);
        *mark = next;
        self.stats.epochs.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Writes `batch` to the log file at once: LevelDB otherwise keeps recent
    /// writes in the process's memory, and a killed node would lose them (a
    /// write, not an fsync: it survives the process, not the machine).
    async fn write_through(&self, batch: WriteBatch) -> Result<(), Error> {
        Ok(self.db.write(batch, true).await?)
    }

    /// Writes buffered entries to disk and closes the database.
    pub async fn close(&self) -> Result<(), Error> {
        self.db.flush().await?;
        self.db.close().await?;
        Ok(())
    }

    async fn stored(&self, customer_id: &str) -> Result<Stored, Error> {
        let epoch = self.epoch.load(Ordering::SeqCst);
        let stored = self.db.get(portfolio_key(epoch, customer_id)).await?;
        let Some(bytes) = stored else {
            return Ok(Stored::Missing);
        };
        let Some(entry) = Entry::decode(&bytes) else {
            tracing::warn!(%customer_id, "unreadable cache entry; fetching it again");
            return Ok(Stored::Missing);
        };
        let now = now_millis();
        if entry.expires_at > now {
            return Ok(Stored::Fresh(match entry.portfolio {
                Some(portfolio) => Lookup::Found(portfolio, Source::Cache),
                None => Lookup::Unknown,
            }));
        }
        let stale_limit = millis(self.lifetimes.stale_limit);
        Ok(Stored::Expired(entry.portfolio.filter(|_| {
            entry.expires_at.saturating_add(stale_limit) > now
        })))
    }
}

/// A lifetime in milliseconds, saturated: a year or a century are both "long".
fn millis(lifetime: Duration) -> i64 {
    i64::try_from(lifetime.as_millis()).unwrap_or(i64::MAX)
}

enum Stored {
    Fresh(Lookup),
    /// Past its TTL. The portfolio, within the stale limit, is served only if
    /// the data service cannot answer.
    Expired(Option<Portfolio>),
    Missing,
}

/// A lock is not damage: a handle that was just closed releases it on its own
/// thread a moment later, so wait for it a little before giving up.
fn when_unlocked<T>(open: impl Fn() -> Result<T, Status>) -> Result<T, Status> {
    const LOCK_WAIT: Duration = Duration::from_millis(20);
    const LOCK_TRIES: u32 = 100;
    let mut tries = 0;
    loop {
        match open() {
            Err(status) if status.code == StatusCode::LockError && tries < LOCK_TRIES => {
                tries += 1;
                std::thread::sleep(LOCK_WAIT);
            }
            outcome => return outcome,
        }
    }
}

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as i64)
        .unwrap_or(0)
}
