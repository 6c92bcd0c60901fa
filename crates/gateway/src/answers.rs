//! The gateway's answers to a job store's failure, for every endpoint.

use axum::http::StatusCode;
use jobstore::Conflict;
use service::Problem;

/// What a request was doing when the store failed: the answer says whether
/// anything was recorded.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Attempt {
    Submit,
    Read,
}

/// The one mapping from a job-store error to an answer: a conflict is the
/// caller's (422, saying which key and which job), anything else is the
/// store's, answered as every role answers a store's failure.
pub(crate) fn store_problem(error: jobstore::Error, attempt: Attempt) -> Problem {
    match error {
        jobstore::Error::Conflict(Conflict::JobId { job_id }) => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "job_id {job_id:?} is already used for a different request; use a new job_id to submit another job"
            ),
        ),
        jobstore::Error::Conflict(Conflict::IdempotencyKey { key, job_id }) => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "X-Idempotency-Key {key:?} was already used for a different request (job {job_id:?}); use a new key"
            ),
        ),
        other => {
            let unavailable = match attempt {
                Attempt::Submit => {
                    "the job store is unavailable; nothing was recorded, retry shortly"
                }
                Attempt::Read => "the job store cannot be read right now; retry shortly",
            };
            Problem::of_store(&other, "job store", unavailable)
        }
    }
}
