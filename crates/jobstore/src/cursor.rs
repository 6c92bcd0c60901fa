//! Where each worker's last claim of its own partitions ended in the queue's
//! order, so that its next claim starts there. On PostgreSQL a claimed job's
//! old row stays in the queue index until vacuum: a claim that always started
//! at the head would walk every job claimed since the last vacuum (measured:
//! about 300 index entries per job at 1,500 jobs/s). A job committed late with
//! an earlier position is found at the next rescan from the head, which happens
//! whenever a claim comes up short and at least every `RESCAN_EVERY`. Fair
//! ordering places a new tenant's job ahead of others' backlog, so that case
//! is common: a claim that comes up short from the cursor looks again from the
//! head at once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Longest time a worker scans from its cursor without starting at the head.
const RESCAN_EVERY: Duration = Duration::from_secs(1);

/// A position in the queue's order: (fair_at, seq).
pub type Position = (i64, i64);
/// Before every job.
pub const HEAD: Position = (i64::MIN, i64::MIN);

#[derive(Default)]
pub struct ClaimCursors {
    cursors: Mutex<HashMap<String, (Position, Instant)>>,
}

impl ClaimCursors {
    /// Where `worker`'s next claim starts: after its last claimed job, or at the
    /// head when it has none or last started at the head `RESCAN_EVERY` ago.
    pub fn start(&self, worker: &str) -> Position {
        let mut cursors = self
            .cursors
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match cursors.get(worker) {
            Some((position, since)) if since.elapsed() < RESCAN_EVERY => *position,
            _ => {
                cursors.remove(worker);
                HEAD
            }
        }
    }

    /// Records where a claim ended: after the last job when it got all it
    /// wanted, back to the head when it came up short. A scan from the head
    /// starts the clock of the next rescan.
    pub fn record(&self, worker: &str, last: Option<Position>, got_all: bool) {
        let mut cursors = self
            .cursors
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match last {
            Some(position) if got_all => {
                let since = match cursors.get(worker) {
                    Some((_, since)) => *since,
                    None => Instant::now(),
                };
                cursors.insert(worker.to_string(), (position, since));
            }
            _ => {
                cursors.remove(worker);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_claim_moves_the_cursor_and_a_short_one_rewinds_it() {
        let cursors = ClaimCursors::default();
        assert_eq!(cursors.start("a"), (i64::MIN, i64::MIN));
        cursors.record("a", Some((5, 55)), true);
        assert_eq!(cursors.start("a"), (5, 55));
        assert_eq!(
            cursors.start("b"),
            (i64::MIN, i64::MIN),
            "cursors are per worker"
        );
        cursors.record("a", Some((9, 99)), false);
        assert_eq!(cursors.start("a"), (i64::MIN, i64::MIN));
    }
}
