//! `POST /jobs/{job_id}/cancel`: a queued job is cancelled at once; a running
//! one loses its lease, so its worker stops it at its next heartbeat and its
//! result is never stored. Cancelling a cancelled job answers the same again;
//! a job that completed or failed answers 409.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use jobstore::{Cancellation, JobStatus, JobStore};
use service::{Accepts, Owner, Problem, respond};

use crate::Gateway;
use crate::answers::{Attempt, store_problem};
use crate::status::{not_found, to_wire};

/// Cancels a queued or running job; a cancelled one answers the same again.
#[utoipa::path(post, path = "/jobs/{job_id}/cancel", tag = "jobs",
    security(("tenant_key" = [])),
    params(("job_id" = String, Path, description = "The job's id")),
    responses(
        (status = 200, description = "The job, cancelled", body = wire::JobStatus),
        service::openapi::NotFound,
        service::openapi::AlreadyEnded,
        service::openapi::StoreFailures,
        service::openapi::TenantRefusals,
    ),
)]
pub async fn cancel_job<S: JobStore>(
    State(gateway): State<Gateway<S>>,
    Owner(owner): Owner,
    Path(job_id): Path<String>,
    Accepts(encoding): Accepts,
) -> Result<Response, Problem> {
    let cancellation = gateway
        .store
        .cancel(&owner, &job_id)
        .await
        .map_err(|error| store_problem(error, Attempt::Submit))?;
    let job = match cancellation {
        Cancellation::Cancelled(job) => {
            metrics::counter!(service::metrics::JOBS_CANCELLED).increment(1);
            job
        }
        Cancellation::Finished(job) if job.status == JobStatus::Cancelled => job,
        Cancellation::Finished(job) => {
            return Err(Problem::new(
                StatusCode::CONFLICT,
                format!(
                    "job {job_id:?} has already {}; only a queued or running job can be cancelled",
                    job.status.as_str()
                ),
            ));
        }
        Cancellation::NotFound => return Ok(not_found(&job_id)),
    };
    Ok(respond(StatusCode::OK, encoding, &to_wire(&job)))
}
