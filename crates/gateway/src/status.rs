//! `GET /job_status/{job_id}`: the job as the store has it.

use api::wire::{JobStatus, ProjectionResult};
use api::{Encoding, Owner, Problem, respond};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jobstore::{Job, JobStore};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::Gateway;
use crate::submit::{Attempt, store_problem};

pub async fn job_status<S: JobStore>(
    State(gateway): State<Gateway<S>>,
    Owner(owner): Owner,
    Path(job_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let job = match gateway.store.get(&owner, &job_id).await {
        Ok(job) => job,
        Err(error) => return store_problem(error, Attempt::Read).into_response(),
    };
    // Ids are the tenant's own: another tenant's job of the same id is not looked at.
    let Some(job) = job else {
        return not_found(&job_id);
    };
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok());
    respond(StatusCode::OK, Encoding::of_accept(accept), &to_wire(&job))
}

/// The original's answer for a job this key does not have.
pub(crate) fn not_found(job_id: &str) -> Response {
    Problem::new(
        StatusCode::NOT_FOUND,
        format!("no job {job_id:?} for this API key"),
    )
    .with_error("Job not found")
    .into_response()
}

pub(crate) fn to_wire(job: &Job) -> JobStatus {
    let result = job.result.as_deref().and_then(|json| {
        match serde_json::from_str::<ProjectionResult>(json) {
            Ok(result) => Some(result),
            Err(error) => {
                tracing::error!(job_id = %job.id, %error, "stored result is unreadable");
                None
            }
        }
    });
    let duration_seconds = match (job.started_at, job.finished_at) {
        (Some(started), Some(finished)) => Some((finished - started) as f64 / 1000.0),
        _ => None,
    };
    JobStatus {
        job_id: job.id.clone(),
        status: job.status.as_str().to_string(),
        customer_id: job.customer_id.clone(),
        created_at: rfc3339(job.created_at),
        started_at: job.started_at.map(rfc3339),
        finished_at: job.finished_at.map(rfc3339),
        attempts: job.attempts,
        progress: job.progress,
        duration_seconds,
        result,
        error: job.error.clone(),
    }
}

fn rfc3339(millis: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
        .ok()
        .and_then(|moment| moment.format(&Rfc3339).ok())
        .unwrap_or_default()
}
