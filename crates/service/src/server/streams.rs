//! The budget of answers that stay open (event streams, long-polls): in all
//! and per caller, refused with 429 and `Retry-After` when spent. It is kept
//! below the listener's connection cap, so that however many a client opens,
//! ordinary requests and health checks always find a connection.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::http::StatusCode;

use crate::Problem;

/// How soon a refused client may try again, in seconds: streams end when
/// their jobs do, and long-polls within a minute.
const RETRY_AFTER_SECONDS: u32 = 5;

#[derive(Debug)]
pub struct StreamBudget {
    in_all: usize,
    per_caller: usize,
    open: Mutex<Open>,
}

#[derive(Debug, Default)]
struct Open {
    in_all: usize,
    by_caller: HashMap<String, usize>,
}

impl StreamBudget {
    /// At most `in_all` open at once, `per_caller` of them one caller's.
    pub fn new(in_all: usize, per_caller: usize) -> Arc<Self> {
        Arc::new(StreamBudget {
            in_all: in_all.max(1),
            per_caller: per_caller.clamp(1, in_all.max(1)),
            open: Mutex::default(),
        })
    }

    /// The budget for a listener that holds `max_connections`: half of them
    /// may stay open, a quarter of those one caller's.
    pub fn for_connections(max_connections: usize) -> Arc<Self> {
        let in_all = (max_connections / 2).max(1);
        StreamBudget::new(in_all, (in_all / 4).max(1))
    }

    /// A place for one more open answer of `caller`, held until the permit
    /// drops; 429 when the caller's share, or the whole budget, is spent.
    pub fn open(self: &Arc<Self>, caller: &str) -> Result<StreamPermit, Problem> {
        let mut open = self.lock();
        let callers = open.by_caller.get(caller).copied().unwrap_or(0);
        let refusal = if callers >= self.per_caller {
            Some(format!(
                "this caller has {callers} event streams and long-polls open, the most allowed; close one or retry after {RETRY_AFTER_SECONDS} s"
            ))
        } else if open.in_all >= self.in_all {
            Some(format!(
                "the server has {} event streams and long-polls open, the most it keeps; retry after {RETRY_AFTER_SECONDS} s",
                open.in_all
            ))
        } else {
            None
        };
        if let Some(detail) = refusal {
            let mut problem = Problem::new(StatusCode::TOO_MANY_REQUESTS, detail);
            problem.retry_after = Some(RETRY_AFTER_SECONDS);
            return Err(problem);
        }
        open.in_all += 1;
        *open.by_caller.entry(caller.to_string()).or_default() += 1;
        metrics::gauge!(crate::metrics::OPEN_STREAMS).increment(1.0);
        Ok(StreamPermit {
            budget: self.clone(),
            caller: caller.to_string(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Open> {
        // The counts are valid whatever a panicking holder was doing.
        self.open
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// One open answer's place in the budget; dropping it frees the place.
#[derive(Debug)]
pub struct StreamPermit {
    budget: Arc<StreamBudget>,
    caller: String,
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        let mut open = self.budget.lock();
        open.in_all = open.in_all.saturating_sub(1);
        metrics::gauge!(crate::metrics::OPEN_STREAMS).decrement(1.0);
        if let Some(count) = open.by_caller.get_mut(&self.caller) {
            *count -= 1;
            if *count == 0 {
                open.by_caller.remove(&self.caller);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caller_is_held_to_its_share_and_everyone_to_the_whole() {
        let budget = StreamBudget::new(3, 2);
        let first = budget.open("a").unwrap();
        let _second = budget.open("a").unwrap();
        let refused = budget.open("a").unwrap_err();
        assert_eq!(refused.status, 429);
        assert_eq!(refused.retry_after, Some(RETRY_AFTER_SECONDS));
        let _other = budget.open("b").unwrap();
        let full = budget.open("c").unwrap_err();
        assert!(full.detail.contains("the server has 3"), "{}", full.detail);
        drop(first);
        budget.open("c").unwrap();
        assert!(budget.lock().by_caller.get("a") == Some(&1));
    }

    #[test]
    fn a_listeners_budget_leaves_half_its_connections_for_other_requests() {
        let budget = StreamBudget::for_connections(40);
        assert_eq!((budget.in_all, budget.per_caller), (20, 5));
        let tiny = StreamBudget::for_connections(1);
        assert_eq!((tiny.in_all, tiny.per_caller), (1, 1));
    }
}
