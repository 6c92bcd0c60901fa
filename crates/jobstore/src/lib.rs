//! Durable jobs: submission with idempotency, claims under a lease renewed by
//! heartbeat, results fenced by the lease, a reaper that returns the jobs of dead
//! workers to the queue or, after the last attempt, fails them with the reason,
//! and a registry of the live worker nodes that partitions are placed on.
//!
//! [`JobStore`] is the contract. [`SqliteJobStore`] keeps it on one machine,
//! [`PostgresJobStore`] for a cluster; [`AnyJobStore`] is whichever a URL names.
//! Both run the one conformance suite in `tests/conformance/`.

mod announce;
mod any;
mod changes;
mod clock;
mod cursor;
mod job;
mod postgres;
mod rows;
mod sqlite;

use std::future::Future;
use std::time::Duration;

pub use any::{AnyJobStore, StoreOptions};
pub use changes::{Changes, JobWatch};
pub use clock::Clock;
pub use database::{Classify, ErrorKind};
pub use job::{
    Cancellation, Claimed, Job, JobStatus, NewJob, PARTITIONS, QueueDepth, Submitted, now_millis,
    partition_of,
};
pub use postgres::PostgresJobStore;
pub use sqlite::SqliteJobStore;

database::store!(
    "job store",
    schema "jobstore",
    // Every statement of the job store has an index to go by, and must use it
    // whatever the statistics say. Plans are made once per session, and the
    // first ones are made while the table is empty or before autovacuum has
    // analysed a burst of submissions (once a minute at best): the planner then
    // matched each group of results against the whole table by a sequential
    // scan, and sorted the whole queue through a bitmap scan for every claim
    // (95 ms instead of 0.1 ms at 30,000 queued jobs).
    settings &[("enable_seqscan", "off"), ("enable_bitmapscan", "off")],
);

/// Why a submission was refused: the id or key already names another request.
/// The words for people are the HTTP layer's; this says which key and which job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conflict {
    /// `job_id` is taken by a different request.
    JobId { job_id: String },
    /// The idempotency key was used for a different request, by job `job_id`.
    IdempotencyKey { key: String, job_id: String },
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the submission conflicts with an earlier one: {0:?}")]
    Conflict(Conflict),
    /// The database did not answer or failed: worth retrying later.
    #[error("job store unavailable: {0}")]
    Unavailable(#[from] sqlx::Error),
    /// A group of writes was rolled back: nothing of it happened.
    #[error("job store could not commit the write, retry it: {0}")]
    Commit(String),
    /// The store's disk is full: nothing of the write happened, and writes
    /// fail until space is freed.
    #[error(
        "the job store's disk is full ({0}); nothing was written: free space on the disk that holds it"
    )]
    Full(String),
    #[error(transparent)]
    Schema(#[from] database::Error),
    /// `register_node` found the node id held by a live node.
    #[error(
        "worker node id {node_id:?} is already live (its last heartbeat was {seconds_ago:.1} s ago); give this node another --node-id, or stop the other one and wait {wait_seconds:.0} s"
    )]
    NodeIdLive {
        node_id: String,
        seconds_ago: f64,
        wait_seconds: f64,
    },
    #[error("job store is shutting down")]
    Closed,
}

/// How a caller answers: only a conflict, or a node id in use, is the caller's doing.
impl Classify for Error {
    fn kind(&self) -> ErrorKind {
        match self {
            Error::Conflict(_) => ErrorKind::Conflict,
            Error::NodeIdLive { .. } => ErrorKind::Refused,
            Error::Unavailable(source) => source.kind(),
            Error::Full(_) => ErrorKind::Full,
            Error::Commit(_) | Error::Closed => ErrorKind::Unavailable,
            Error::Schema(source) => source.kind(),
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// Why a group was rolled back: nothing of it happened.
#[derive(Debug, Clone)]
pub(crate) struct RolledBack {
    reason: String,
    disk_full: bool,
}

impl RolledBack {
    pub(crate) fn of(error: &sqlx::Error) -> Self {
        RolledBack {
            reason: error.to_string(),
            disk_full: database::is_full(error),
        }
    }

    /// The error each write of the group is answered with.
    pub(crate) fn error(&self) -> Error {
        if self.disk_full {
            Error::Full(self.reason.clone())
        } else {
            Error::Commit(self.reason.clone())
        }
    }
}

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

/// What a node asks for when it claims.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimRequest<'a> {
    /// Names the node (or actor) in the lease.
    pub worker: &'a str,
    /// Jobs wanted: the node's free actors.
    pub limit: u32,
    pub lease: Duration,
    /// Partitions this node owns: their jobs come first.
    pub partitions: &'a [u32],
    /// Jobs of other partitions that have waited this long may be taken too, so
    /// that no job waits on a busy or dead owner.
    pub steal_after: Duration,
    /// Jobs one tenant may have running across the cluster; no limit when
    /// absent. Two nodes claiming at the same instant may each take one more.
    pub max_running_per_owner: Option<u32>,
}

impl<'a> ClaimRequest<'a> {
    /// Up to `limit` waiting jobs of any partition, whoever owns them: how a
    /// store's tools and tests claim, with no partitions of their own.
    pub fn any_partition(worker: &'a str, limit: u32, lease: Duration) -> Self {
        ClaimRequest {
            worker,
            limit,
            lease,
            partitions: &[],
            steal_after: Duration::ZERO,
            max_running_per_owner: None,
        }
    }
}

/// The job store's contract, kept by every backend.
pub trait JobStore: Send + Sync + 'static {
    /// Records a job durably, or returns the job already recorded under the same id
    /// or idempotency key of the same owner when its request is the same. A
    /// replay matched by id records the idempotency key it brings, if the job
    /// had none.
    fn submit(&self, job: NewJob) -> impl Future<Output = Result<Submitted>> + Send;

    /// The owner's job `id` (ids are unique per owner only).
    fn get(&self, owner: &str, id: &str) -> impl Future<Output = Result<Option<Job>>> + Send;

    /// Claims up to `request.limit` queued jobs, each under a new lease, in one statement
    /// per kind (owned partitions first, then jobs waiting to be stolen).
    fn claim(&self, request: ClaimRequest<'_>)
    -> impl Future<Output = Result<Vec<Claimed>>> + Send;

    /// Renews a lease and records progress; false when the lease is no longer held
    /// (reclaimed, or the job was cancelled).
    fn heartbeat(
        &self,
        claim: &Claimed,
        progress: f64,
        lease: Duration,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// Stores the result; false (and nothing stored) when another attempt owns the job.
    fn complete(
        &self,
        claim: &Claimed,
        result_json: &str,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// Ends an attempt in failure; false when the lease is no longer held.
    fn fail(&self, claim: &Claimed, failure: Failure) -> impl Future<Output = Result<bool>> + Send;

    /// Gives a job back to the queue at once, the attempt not counted: a node that
    /// stops does not make the job wait for its lease to run out.
    fn release(&self, claim: &Claimed) -> impl Future<Output = Result<bool>> + Send;

    /// Cancels the owner's job `id` if it has not finished; a running attempt
    /// sees its lease gone at its next heartbeat.
    fn cancel(&self, owner: &str, id: &str) -> impl Future<Output = Result<Cancellation>> + Send;

    /// Moves every job of owner `from` to owner `to` (when the way owners are
    /// derived from keys changes); returns how many moved.
    fn rename_owner(&self, from: &str, to: &str) -> impl Future<Output = Result<u64>> + Send;

    /// Returns the jobs whose lease expired to the queue, or fails those out of attempts.
    fn reap_expired_leases(&self) -> impl Future<Output = Result<u64>> + Send;

    /// Deletes up to `batch` jobs that finished more than `age` ago.
    fn prune_finished(&self, age: Duration, batch: u32)
    -> impl Future<Output = Result<u64>> + Send;

    /// Registers a worker node; refused while another node holds the id and is live.
    fn register_node(
        &self,
        node_id: &str,
        liveness: Duration,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Renews a node's registration and returns the ids of every live node, sorted.
    fn node_heartbeat(
        &self,
        node_id: &str,
        liveness: Duration,
    ) -> impl Future<Output = Result<Vec<String>>> + Send;

    /// Removes a node that stops cleanly, so its partitions move at once.
    fn deregister_node(&self, node_id: &str) -> impl Future<Output = Result<()>> + Send;

    /// Resolves when jobs may have become claimable (a hint: callers still poll).
    fn jobs_signal(&self) -> &tokio::sync::Notify;

    /// Pushes when a job's status or progress changed, whichever process
    /// changed it (on SQLite, this process). A hint: watchers read the job again.
    fn changes(&self) -> &Changes;

    /// Whether the database answers now (for readiness checks).
    fn ping(&self) -> impl Future<Output = Result<()>> + Send;

    /// How many jobs wait and run now, across the cluster (for metrics).
    fn queue_depth(&self) -> impl Future<Output = Result<QueueDepth>> + Send;

    /// Waits for pending writes and closes the store.
    fn close(&self) -> impl Future<Output = ()> + Send;
}
