//! Following one job as it changes, for the long-poll and the event stream.
//! The job store pushes a change to the gateway that has the job watched
//! (across gateways through PostgreSQL notifications); the job is then read
//! again, so what is sent is always what the store holds. A read every
//! [`POLL`] as well means a lost push costs latency, never an update.

use std::time::Duration;

use jobstore::{Job, JobStore, JobWatch};
use tokio::time::Instant;

use crate::Gateway;

/// Longest time between two reads of a followed job.
const POLL: Duration = Duration::from_secs(5);

/// What a client has seen of a job: a change of any part is news.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen(String);

impl Seen {
    /// Progress counts in tenths of a percent: finer moves are not news.
    pub fn of(job: &Job) -> Seen {
        let permille = (job.progress.clamp(0.0, 1.0) * 1000.0).round() as u32;
        Seen(format!(
            "{}-{}-{permille}",
            job.attempts,
            job.status.as_str()
        ))
    }

    /// As sent to an event-stream client, which brings it back in `Last-Event-ID`.
    pub fn from_event_id(id: &str) -> Seen {
        Seen(id.to_string())
    }

    pub fn event_id(&self) -> &str {
        &self.0
    }
}

/// One job of one owner, watched.
pub struct Follow<S> {
    gateway: Gateway<S>,
    owner: String,
    job_id: String,
    watch: JobWatch,
}

/// Why following stopped.
pub enum Stopped {
    /// The job was deleted (pruned) while followed.
    Gone,
    Store(jobstore::Error),
}

impl<S: JobStore> Follow<S> {
    /// Starts following the owner's job: `None` when the owner has no such job.
    pub async fn start(
        gateway: Gateway<S>,
        owner: String,
        job_id: String,
    ) -> Result<Option<(Follow<S>, Job)>, jobstore::Error> {
        let Some(job) = gateway.store.get(&owner, &job_id).await? else {
            return Ok(None);
        };
        let watch = gateway.store.changes().watch(job.seq);
        let mut follow = Follow {
            gateway,
            owner,
            job_id,
            watch,
        };
        // Read again: a change between the first read and the watch is not missed.
        match follow.read().await {
            Ok(job) => Ok(Some((follow, job))),
            Err(Stopped::Gone) => Ok(None),
            Err(Stopped::Store(error)) => Err(error),
        }
    }

    /// The job once it differs from what was `seen`; `Ok(None)` at the
    /// deadline, or when the gateway begins to drain.
    pub async fn changed_from(
        &mut self,
        seen: &Seen,
        deadline: Option<Instant>,
    ) -> Result<Option<Job>, Stopped> {
        loop {
            let poll = Instant::now() + POLL;
            let wake = deadline.map_or(poll, |deadline| deadline.min(poll));
            tokio::select! {
                () = self.watch.changed() => {}
                () = tokio::time::sleep_until(wake) => {}
                () = self.gateway.draining.cancelled() => return Ok(None),
            }
            let job = self.read().await?;
            if Seen::of(&job) != *seen {
                return Ok(Some(job));
            }
            if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                return Ok(None);
            }
        }
    }

    async fn read(&mut self) -> Result<Job, Stopped> {
        self.gateway
            .store
            .get(&self.owner, &self.job_id)
            .await
            .map_err(Stopped::Store)?
            .ok_or(Stopped::Gone)
    }
}
