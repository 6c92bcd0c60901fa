//! Durable jobs: submission with idempotency, claims under a lease renewed by
//! heartbeat, results fenced by the lease, and a reaper that returns the jobs of
//! dead workers to the queue or, after the last attempt, fails them with the reason.
//!
//! [`JobStore`] is the contract; [`SqliteJobStore`] implements it on one machine.

mod job;
mod sqlite;
mod writer;

use std::future::Future;
use std::time::Duration;

pub use job::{Claimed, Job, JobStatus, NewJob, Submitted, now_millis};
pub use sqlite::SqliteJobStore;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The job id or idempotency key is already used for a different request.
    #[error("{0}")]
    Conflict(String),
    #[error("job store database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("job store could not commit the submission, retry it: {0}")]
    Commit(String),
    #[error(
        "job store schema cannot be brought up to date (is this release older than the database?): {0}"
    )]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("job store is shutting down")]
    Closed,
}

pub type Result<T> = std::result::Result<T, Error>;

/// How a failed attempt ends.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// Worth another attempt (after `retry_after`) while attempts remain.
    Retryable {
        reason: String,
        retry_after: Duration,
    },
    /// Retrying cannot help (a customer that does not exist): fail now.
    Permanent { reason: String },
}

/// The job store's contract, kept by every backend.
pub trait JobStore: Send + Sync + 'static {
    /// Records a job durably, or returns the job already recorded under the same id
    /// or idempotency key when its request is the same.
    fn submit(&self, job: NewJob) -> impl Future<Output = Result<Submitted>> + Send;

    fn get(&self, id: &str) -> impl Future<Output = Result<Option<Job>>> + Send;

    /// Claims up to `limit` queued jobs for `worker`, each under a new lease.
    fn claim(
        &self,
        worker: &str,
        limit: u32,
        lease: Duration,
    ) -> impl Future<Output = Result<Vec<Claimed>>> + Send;

    /// Renews a lease and records progress; false when the lease is no longer held.
    fn heartbeat(
        &self,
        claim: &Claimed,
        progress: f64,
        lease: Duration,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// Stores the result; false (and nothing stored) when the lease is no longer held.
    fn complete(
        &self,
        claim: &Claimed,
        result_json: &str,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// Ends an attempt in failure; false when the lease is no longer held.
    fn fail(&self, claim: &Claimed, failure: Failure) -> impl Future<Output = Result<bool>> + Send;

    /// Returns the jobs whose lease expired to the queue, or fails those out of attempts.
    fn reap_expired_leases(&self) -> impl Future<Output = Result<u64>> + Send;
}
