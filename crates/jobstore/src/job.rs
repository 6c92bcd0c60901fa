use std::time::{SystemTime, UNIX_EPOCH};

/// Jobs are spread over this many partitions by customer; nodes own partitions.
pub const PARTITIONS: u32 = 256;

/// The partition of a customer's jobs: stable across releases and machines.
pub fn partition_of(customer_id: &str) -> u32 {
    (xxhash_rust::xxh3::xxh3_64(customer_id.as_bytes()) % u64::from(PARTITIONS)) as u32
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    Queued,
    Processing,
    Completed,
    Failed,
    Cancelled,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Processing => "processing",
            JobStatus::Completed => "completed",
            JobStatus::Failed => "failed",
            JobStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<JobStatus> {
        [
            JobStatus::Queued,
            JobStatus::Processing,
            JobStatus::Completed,
            JobStatus::Failed,
            JobStatus::Cancelled,
        ]
        .into_iter()
        .find(|status| status.as_str() == text)
    }

    pub fn is_final(self) -> bool {
        matches!(
            self,
            JobStatus::Completed | JobStatus::Failed | JobStatus::Cancelled
        )
    }
}

/// A job to record.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    pub id: String,
    pub owner: String,
    pub idempotency_key: Option<String>,
    /// Canonical JSON of the parameters.
    pub request: String,
    pub customer_id: String,
    pub max_attempts: u32,
    /// Estimated run time in milliseconds: how far the job moves its tenant's
    /// virtual clock, so that tenants share the workers by work, not by count.
    pub cost_ms: u32,
    /// The W3C `traceparent` of the submission, which the job's attempts
    /// carry on to the data service and name in their log lines.
    pub traceparent: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// The store's own address of the job (ids are unique per tenant only).
    pub seq: i64,
    pub id: String,
    pub owner: String,
    pub idempotency_key: Option<String>,
    pub request: String,
    pub customer_id: String,
    pub status: JobStatus,
    pub attempts: u32,
    pub max_attempts: u32,
    pub progress: f64,
    pub result: Option<String>,
    pub error: Option<String>,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub traceparent: Option<String>,
}

/// The answer to a submission.
#[derive(Debug, Clone, PartialEq)]
pub struct Submitted {
    pub job: Job,
    /// False when the same request was already recorded (an idempotent replay).
    pub created: bool,
}

/// The outcome of a cancellation.
#[derive(Debug, Clone, PartialEq)]
pub enum Cancellation {
    /// The job was queued or running and is now cancelled.
    Cancelled(Job),
    /// The job had already finished; nothing changed.
    Finished(Job),
    NotFound,
}

/// Jobs waiting and running.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueDepth {
    pub queued: u64,
    pub processing: u64,
}

impl QueueDepth {
    /// From `(status, count)` rows of [`crate::rows::QUEUE_DEPTH`].
    pub(crate) fn from_rows(rows: impl IntoIterator<Item = (String, i64)>) -> QueueDepth {
        let mut depth = QueueDepth::default();
        for (status, count) in rows {
            let count = u64::try_from(count).unwrap_or_default();
            match JobStatus::parse(&status) {
                Some(JobStatus::Queued) => depth.queued = count,
                Some(JobStatus::Processing) => depth.processing = count,
                _ => {}
            }
        }
        depth
    }
}

/// A job held under a lease. `lease_token` fences every write of the attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct Claimed {
    pub job: Job,
    pub lease_token: i64,
}

pub fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as i64)
        .unwrap_or(0)
}
