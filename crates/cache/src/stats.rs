//! What the cache counts: read by tests, and recorded as the process's
//! Prometheus counters as it happens.

use std::sync::atomic::{AtomicU64, Ordering};

use service::metrics;

/// A count kept here, and added to a Prometheus counter when it has one.
#[derive(Debug)]
pub struct Tally {
    value: AtomicU64,
    metric: Option<&'static str>,
}

impl Tally {
    fn new(metric: Option<&'static str>) -> Self {
        Tally {
            value: AtomicU64::new(0),
            metric,
        }
    }

    pub fn fetch_add(&self, count: u64, ordering: Ordering) -> u64 {
        if let Some(name) = self.metric {
            ::metrics::counter!(name).increment(count);
        }
        self.value.fetch_add(count, ordering)
    }

    pub fn load(&self, ordering: Ordering) -> u64 {
        self.value.load(ordering)
    }
}

#[derive(Debug)]
pub struct Stats {
    /// Lookups served from the cache.
    pub hits: Tally,
    /// Lookups that asked the data service.
    pub misses: Tally,
    /// Misses that found their entry past its time to live.
    pub expired: Tally,
    pub upstream_calls: Tally,
    /// Entries evicted because their customer changed.
    pub evictions: Tally,
    /// Portfolios fetched while their customer changed, not stored.
    pub discarded: Tally,
    /// Times the whole cache was dropped.
    pub epochs: Tally,
    /// Expired entries served while the data service could not answer.
    pub stale_served: Tally,
    /// Computed results found for reuse.
    pub results_reused: Tally,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            hits: Tally::new(Some(metrics::CACHE_HITS)),
            misses: Tally::new(Some(metrics::CACHE_MISSES)),
            expired: Tally::new(Some(metrics::CACHE_EXPIRED)),
            upstream_calls: Tally::new(None),
            evictions: Tally::new(Some(metrics::CACHE_EVICTIONS)),
            discarded: Tally::new(None),
            epochs: Tally::new(None),
            stale_served: Tally::new(Some(metrics::CACHE_STALE_SERVED)),
            results_reused: Tally::new(Some(metrics::RESULTS_REUSED)),
        }
    }
}
