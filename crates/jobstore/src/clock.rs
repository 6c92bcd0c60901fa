//! The time leases, retries and retention are measured against. In service it is
//! the database's clock on PostgreSQL (every node agrees on it) and the system
//! clock on SQLite (one machine). Tests pass a manual clock and move it forward
//! instead of sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use crate::job::now_millis;

#[derive(Debug, Clone, Default)]
pub struct Clock {
    manual: Option<Arc<AtomicI64>>,
}

impl Clock {
    /// The database's clock (PostgreSQL) or this machine's (SQLite).
    pub fn system() -> Clock {
        Clock::default()
    }

    /// A clock that stands still until advanced, starting at `start_millis`.
    pub fn manual(start_millis: i64) -> Clock {
        Clock {
            manual: Some(Arc::new(AtomicI64::new(start_millis))),
        }
    }

    pub fn advance(&self, by: Duration) {
        if let Some(manual) = &self.manual {
            manual.fetch_add(millis(by), Ordering::SeqCst);
        }
    }

    /// The manual time, or `None` for the database's own clock.
    pub fn fixed(&self) -> Option<i64> {
        self.manual
            .as_ref()
            .map(|manual| manual.load(Ordering::SeqCst))
    }

    /// Milliseconds since the Unix epoch by this clock, read on this machine.
    pub fn now(&self) -> i64 {
        self.fixed().unwrap_or_else(now_millis)
    }
}

pub(crate) fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}
