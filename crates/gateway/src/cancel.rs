//! `POST /jobs/{job_id}/cancel`: a queued job is cancelled at once; a running
//! one loses its lease, so its worker stops it at its next heartbeat and its
//! result is never stored. Cancelling a cancelled job answers the same again;
//! a job that completed or failed answers 409.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jobstore::{Cancellation, JobStatus, JobStore};
use service::{Owner, Problem, respond};
use wire::Encoding;

use crate::Gateway;
use crate::status::{not_found, to_wire};
use crate::submit::{Attempt, store_problem};

/// Cancels a queued or running job; a cancelled one answers the same again.
#[utoipa::path(post, path = "/jobs/{job_id}/cancel", tag = "jobs",
    security(("tenant_key" = [])),
    params(("job_id" = String, Path, description = "The job's id")),
    responses(
        (status = 200, description = "The job, cancelled", body = wire::JobStatus),
        (status = 404, description = "No such job for this key", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The job has already completed or failed", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The job store is unreachable", body = Problem, content_type = "application/problem+json"),
        service::openapi::TenantRefusals,
    ),
)]
pub async fn cancel_job<S: JobStore>(
    State(gateway): State<Gateway<S>>,
    Owner(owner): Owner,
    Path(job_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let job = match gateway.store.cancel(&owner, &job_id).await {
        Ok(Cancellation::Cancelled(job)) => {
            metrics::counter!(service::metrics::JOBS_CANCELLED).increment(1);
            job
        }
        Ok(Cancellation::Finished(job)) if job.status == JobStatus::Cancelled => job,
        Ok(Cancellation::Finished(job)) => {
            return Problem::new(
                StatusCode::CONFLICT,
                format!(
                    "job {job_id:?} has already {}; only a queued or running job can be cancelled",
                    job.status.as_str()
                ),
            )
            .into_response();
        }
        Ok(Cancellation::NotFound) => return not_found(&job_id),
        Err(error) => return store_problem(error, Attempt::Submit).into_response(),
    };
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok());
    respond(StatusCode::OK, Encoding::of_accept(accept), &to_wire(&job))
}
