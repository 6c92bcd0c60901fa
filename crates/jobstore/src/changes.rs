//! Pushes of job changes to whoever watches a job: a gateway answering a
//! long-poll or an event stream, a worker that must stop a cancelled job. The
//! tables stay the truth; a push only says "read the job again now". Each
//! store pushes its own writes once they are committed: on SQLite within the
//! process, on PostgreSQL to every process through a notification
//! (`announce.rs`) that each process's listener turns into pushes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;

/// The PostgreSQL channel job changes are announced on: a payload is a
/// comma-separated list of seqs, a cancelled job's prefixed with `c`.
pub(crate) const CHANGES_CHANNEL: &str = "projector_job_changes";

/// The PostgreSQL channel that wakes idle nodes when jobs are committed or
/// given back to the queue; its payload is empty.
pub(crate) const JOBS_CHANNEL: &str = "projector_jobs";

/// A change's token in a payload, as [`Changes::push_payload`] reads it.
pub(crate) fn token(seq: i64, cancelled: bool) -> String {
    if cancelled {
        format!("c{seq}")
    } else {
        seq.to_string()
    }
}

/// What a watcher has been told of its job so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Told {
    /// Grows with every push.
    changes: u64,
    cancelled: bool,
}

type Watched = HashMap<i64, watch::Sender<Told>>;

/// The jobs being watched in this process, by seq. Cheap to clone.
#[derive(Clone, Default)]
pub struct Changes {
    watched: Arc<Mutex<Watched>>,
}

impl Changes {
    /// Watches job `seq` from now on: changes pushed before this call are not seen.
    pub fn watch(&self, seq: i64) -> JobWatch {
        let receiver = self
            .lock()
            .entry(seq)
            .or_insert_with(|| watch::Sender::new(Told::default()))
            .subscribe();
        JobWatch {
            seq,
            receiver,
            changes: self.clone(),
        }
    }

    /// Jobs `seqs` changed.
    pub(crate) fn push(&self, seqs: impl IntoIterator<Item = i64>) {
        let watched = self.lock();
        for seq in seqs {
            if let Some(sender) = watched.get(&seq) {
                sender.send_modify(|told| told.changes += 1);
            }
        }
    }

    /// Job `seq` was cancelled.
    pub(crate) fn push_cancelled(&self, seq: i64) {
        if let Some(sender) = self.lock().get(&seq) {
            sender.send_modify(|told| {
                told.changes += 1;
                told.cancelled = true;
            });
        }
    }

    /// Anything may have changed (pushes were lost while a connection was
    /// down): every watcher reads its job again. A cancellation among them is
    /// seen by the reader of the job, not pushed as one.
    pub(crate) fn push_all(&self) {
        for sender in self.lock().values() {
            sender.send_modify(|told| told.changes += 1);
        }
    }

    /// Applies a PostgreSQL notification's payload (see [`CHANGES_CHANNEL`]);
    /// a malformed token is ignored, as the poll that follows sees the truth.
    pub(crate) fn push_payload(&self, payload: &str) {
        for token in payload.split(',') {
            match token.strip_prefix('c') {
                Some(cancelled) => {
                    if let Ok(seq) = cancelled.parse() {
                        self.push_cancelled(seq);
                    }
                }
                None => self.push(token.parse().ok()),
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, Watched> {
        // The map is valid whatever a panicking holder was doing.
        self.watched
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    #[cfg(test)]
    fn watched_count(&self) -> usize {
        self.lock().len()
    }
}

/// One watcher of one job; stops watching when dropped.
pub struct JobWatch {
    seq: i64,
    receiver: watch::Receiver<Told>,
    changes: Changes,
}

impl JobWatch {
    /// Resolves at the next push for the job (at once if one came since the
    /// last call).
    pub async fn changed(&mut self) {
        if self.receiver.changed().await.is_err() {
            // The sender lives as long as a watcher does; never reached.
            std::future::pending::<()>().await;
        }
    }

    /// Resolves once the job is known to be cancelled.
    pub async fn cancelled(&mut self) {
        if self.receiver.wait_for(|told| told.cancelled).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

impl Drop for JobWatch {
    fn drop(&mut self) {
        let mut watched = self.changes.lock();
        // This watcher's receiver still counts until the fields drop.
        if watched
            .get(&self.seq)
            .is_some_and(|sender| sender.receiver_count() <= 1)
        {
            watched.remove(&self.seq);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    async fn resolves(future: impl std::future::Future<Output = ()>) -> bool {
        tokio::time::timeout(Duration::from_millis(50), future)
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn a_push_reaches_the_watchers_of_its_job_only() {
        let changes = Changes::default();
        let mut first = changes.watch(7);
        let mut second = changes.watch(7);
        let mut other = changes.watch(8);
        changes.push([7, 9]);
        assert!(resolves(first.changed()).await);
        assert!(resolves(second.changed()).await);
        assert!(!resolves(other.changed()).await);
        assert!(!resolves(first.changed()).await, "one push, one wake");
    }

    #[tokio::test]
    async fn a_push_between_waits_is_not_lost() {
        let changes = Changes::default();
        let mut watch = changes.watch(1);
        changes.push([1]);
        changes.push([1]);
        assert!(resolves(watch.changed()).await);
        assert!(!resolves(watch.changed()).await);
    }

    #[tokio::test]
    async fn cancellation_is_told_apart_from_other_changes() {
        let changes = Changes::default();
        let mut watch = changes.watch(3);
        changes.push([3]);
        assert!(!resolves(watch.cancelled()).await);
        let payload = [token(4, false), token(3, true), "x".into()].join(",");
        changes.push_payload(&payload);
        assert!(resolves(watch.cancelled()).await);
        assert!(
            resolves(watch.cancelled()).await,
            "cancelled stays cancelled"
        );
    }

    #[tokio::test]
    async fn push_all_wakes_every_watcher() {
        let changes = Changes::default();
        let mut watches: Vec<JobWatch> = (0..5).map(|seq| changes.watch(seq)).collect();
        changes.push_all();
        for watch in &mut watches {
            assert!(resolves(watch.changed()).await);
        }
    }

    #[test]
    fn a_job_is_forgotten_when_its_last_watcher_goes() {
        let changes = Changes::default();
        let first = changes.watch(5);
        let second = changes.watch(5);
        drop(first);
        assert_eq!(changes.watched_count(), 1);
        drop(second);
        assert_eq!(changes.watched_count(), 0);
    }
}
