//! What both backends share: the row a job is read from, how a resubmission is
//! judged, and how a failed attempt ends.

use std::time::Duration;

use sqlx::FromRow;

use crate::clock::millis;
use crate::job::{Claimed, Job, JobStatus, NewJob, Submitted};
use crate::{Conflict, Error, Failure, Result};

/// Jobs removed per statement while pruning: short transactions, short locks.
pub const PRUNE_STATEMENT_LIMIT: u32 = 1000;

#[derive(FromRow)]
pub struct JobRow {
    seq: i64,
    id: String,
    owner: String,
    idempotency_key: Option<String>,
    request: String,
    customer_id: String,
    status: String,
    attempts: i64,
    max_attempts: i64,
    lease_token: i64,
    progress: f64,
    result: Option<String>,
    error: Option<String>,
    created_at: i64,
    fair_at: i64,
    started_at: Option<i64>,
    finished_at: Option<i64>,
    traceparent: Option<String>,
}

impl From<JobRow> for Job {
    fn from(row: JobRow) -> Self {
        Job {
            seq: row.seq,
            id: row.id,
            owner: row.owner,
            idempotency_key: row.idempotency_key,
            request: row.request,
            customer_id: row.customer_id,
            // The CHECK constraint admits only the known statuses.
            status: JobStatus::parse(&row.status).unwrap_or(JobStatus::Failed),
            attempts: row.attempts as u32,
            max_attempts: row.max_attempts as u32,
            progress: row.progress,
            result: row.result,
            error: row.error,
            created_at: row.created_at,
            started_at: row.started_at,
            finished_at: row.finished_at,
            traceparent: row.traceparent,
        }
    }
}

impl JobRow {
    /// The row's place in the queue's order.
    pub fn queue_position(&self) -> (i64, i64) {
        (self.fair_at, self.seq)
    }

    pub fn into_claimed(self) -> Claimed {
        let lease_token = self.lease_token;
        Claimed {
            job: self.into(),
            lease_token,
        }
    }
}

/// A submission whose id or key is taken: the same request is a replay, another
/// one a conflict naming the key.
pub fn replay_or_conflict(existing: Job, job: &NewJob) -> Result<Submitted> {
    if existing.owner == job.owner && existing.request == job.request {
        return Ok(Submitted {
            job: existing,
            created: false,
        });
    }
    let conflict = match &job.idempotency_key {
        Some(key) if existing.id != job.id => Conflict::IdempotencyKey {
            key: key.clone(),
            job_id: existing.id,
        },
        _ => Conflict::JobId {
            job_id: job.id.clone(),
        },
    };
    Err(Error::Conflict(conflict))
}

/// The outcome of each submission of a group that a multi-row insert created:
/// `None` where it collided with an existing row (or one inserted by the same
/// group). Two identical submissions in one group: the first is the insert.
pub fn inserted_outcomes(jobs: &[&NewJob], inserted: Vec<Job>) -> Vec<Option<Result<Submitted>>> {
    let mut inserted: Vec<Option<Job>> = inserted.into_iter().map(Some).collect();
    jobs.iter()
        .map(|job| {
            let slot = inserted.iter_mut().find(|row| {
                row.as_ref().is_some_and(|row| {
                    row.id == job.id && row.owner == job.owner && row.request == job.request
                })
            })?;
            slot.take().map(|row| {
                Ok(Submitted {
                    job: row,
                    created: true,
                })
            })
        })
        .collect()
}

/// The submissions that collided, to look their rows up.
pub fn collided<'a>(
    jobs: &[&'a NewJob],
    outcomes: &[Option<Result<Submitted>>],
) -> Vec<&'a NewJob> {
    jobs.iter()
        .zip(outcomes)
        .filter(|(_, outcome)| outcome.is_none())
        .map(|(job, _)| *job)
        .collect()
}

/// Every outcome of the group, the collisions judged against the rows they hit.
pub fn resolve_collisions(
    jobs: &[&NewJob],
    outcomes: Vec<Option<Result<Submitted>>>,
    existing: &[Job],
) -> Vec<Result<Submitted>> {
    jobs.iter()
        .zip(outcomes)
        .map(|(job, outcome)| {
            outcome.unwrap_or_else(|| {
                // A collision always finds its row in the same transaction.
                existing
                    .iter()
                    .find(|row| collides(row, job))
                    .map(|row| replay_or_conflict(row.clone(), job))
                    .unwrap_or_else(|| {
                        Err(Error::Commit("the submission's collision vanished".into()))
                    })
            })
        })
        .collect()
}

/// Whether `existing` is the row a submission of `job` collided with: ids and
/// idempotency keys are both the tenant's own.
fn collides(existing: &Job, job: &NewJob) -> bool {
    existing.owner == job.owner
        && (existing.id == job.id
            || (job.idempotency_key.is_some() && existing.idempotency_key == job.idempotency_key))
}

/// An idempotency key that a replay matched by job id brings, to record on the
/// job so that a retry sending only the key finds it.
pub struct AdoptedKey {
    pub owner: String,
    pub id: String,
    pub key: String,
}

/// The replays of the group whose job has no idempotency key yet while the
/// submission brought one; their answers show the key as it will be recorded.
pub fn adopt_keys(jobs: &[&NewJob], outcomes: &mut [Result<Submitted>]) -> Vec<AdoptedKey> {
    let mut adopted = Vec::new();
    for (job, outcome) in jobs.iter().zip(outcomes.iter_mut()) {
        let (Ok(replay), Some(key)) = (outcome, &job.idempotency_key) else {
            continue;
        };
        if replay.created || replay.job.idempotency_key.is_some() {
            continue;
        }
        replay.job.idempotency_key = Some(key.clone());
        adopted.push(AdoptedKey {
            owner: replay.job.owner.clone(),
            id: replay.job.id.clone(),
            key: key.clone(),
        });
    }
    adopted
}

/// How an attempt's failure is written.
pub struct FailedAttempt {
    pub status: JobStatus,
    pub error: String,
    /// From now until the job may be claimed again.
    pub retry_delay_millis: i64,
    pub finished: bool,
}

pub fn failed_attempt(claim: &Claimed, failure: Failure) -> FailedAttempt {
    let out_of_attempts = claim.job.attempts >= claim.job.max_attempts;
    match failure {
        Failure::Retryable {
            reason,
            retry_after,
        } if !out_of_attempts => FailedAttempt {
            status: JobStatus::Queued,
            error: reason,
            retry_delay_millis: millis(retry_after),
            finished: false,
        },
        Failure::Retryable { reason, .. } => FailedAttempt {
            status: JobStatus::Failed,
            error: format!("gave up after {} attempts: {reason}", claim.job.attempts),
            retry_delay_millis: 0,
            finished: true,
        },
        Failure::Permanent { reason } => FailedAttempt {
            status: JobStatus::Failed,
            error: reason,
            retry_delay_millis: 0,
            finished: true,
        },
    }
}

/// The reason the reaper records.
pub const REAPED: &str = "the worker stopped renewing its lease (it crashed or was cut off)";

/// How long ago a node was last heard from, for the refusal of a live node id.
pub fn node_id_live(node_id: &str, now: i64, heartbeat_at: i64, liveness: Duration) -> Error {
    let seconds_ago = (now - heartbeat_at).max(0) as f64 / 1000.0;
    Error::NodeIdLive {
        node_id: node_id.to_string(),
        seconds_ago,
        wait_seconds: (liveness.as_secs_f64() - seconds_ago).max(1.0),
    }
}

/// Jobs waiting and running, by status; `(status, count)` rows. On
/// PostgreSQL each status is counted from its partial index.
pub(crate) const QUEUE_DEPTH: &str = "SELECT status, COUNT(*) FROM jobs WHERE status = 'queued' GROUP BY status \
     UNION ALL SELECT status, COUNT(*) FROM jobs WHERE status = 'processing' GROUP BY status";
