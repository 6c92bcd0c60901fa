//! `GET /job_status/{job_id}`: the job as the store has it, now or, with
//! `?wait=SECONDS`, as soon as it changes (a long-poll).

use service::trace::Quoted;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use jobstore::{Job, JobStore};
use serde::Deserialize;
use service::{Accepts, Owner, Problem, respond};
use tokio::time::Instant;
use wire::{JobStatus, ProjectionResult};

use crate::Gateway;
use crate::answers::{Attempt, store_problem};
use crate::follow::{Follow, Seen, Stopped};

/// Longest `wait` a long-poll may ask for, in seconds.
pub const MAX_WAIT_SECONDS: u64 = 60;

const WAIT_USAGE: &str =
    "send wait=SECONDS, a whole number from 0 to 60, to have the answer wait for the job to change";

#[derive(Deserialize)]
pub struct StatusQuery {
    wait: Option<u64>,
}

/// The job now; with `wait`, as soon as its status or progress changes, or
/// as it is when the wait ends. A finished job is answered at once.
#[utoipa::path(get, path = "/job_status/{job_id}", tag = "jobs",
    security(("tenant_key" = [])),
    params(
        ("job_id" = String, Path, description = "The job's id"),
        ("wait" = Option<u64>, Query, minimum = 0, maximum = 60, description = "Seconds to wait for the job to change (a long-poll)"),
    ),
    responses(
        (status = 200, description = "The job", body = wire::JobStatus),
        (status = 400, description = "`wait` is not a whole number from 0 to 60", body = Problem, content_type = "application/problem+json"),
        service::openapi::NotFound,
        (status = 429, description = "A long-poll, and this key or the gateway has as many event streams and long-polls open as it allows; retry after `Retry-After` seconds", body = Problem, content_type = "application/problem+json"),
        service::openapi::StoreFailures,
        service::openapi::TenantRefusals,
    ),
)]
pub async fn job_status<S: JobStore>(
    State(gateway): State<Gateway<S>>,
    Owner(owner): Owner,
    Path(job_id): Path<String>,
    query: Result<Query<StatusQuery>, QueryRejection>,
    Accepts(encoding): Accepts,
) -> Response {
    let wait = match query {
        Ok(Query(StatusQuery { wait })) if wait.is_none_or(|wait| wait <= MAX_WAIT_SECONDS) => wait,
        Ok(_) => return Problem::new(StatusCode::BAD_REQUEST, WAIT_USAGE).into_response(),
        Err(rejection) => {
            return Problem::new(
                StatusCode::BAD_REQUEST,
                format!("{}; {WAIT_USAGE}", rejection.body_text()),
            )
            .into_response();
        }
    };
    let job = match wait {
        Some(seconds) if seconds > 0 => {
            long_poll(gateway, owner, &job_id, Duration::from_secs(seconds)).await
        }
        _ => gateway
            .store
            .get(&owner, &job_id)
            .await
            .map_err(|error| store_problem(error, Attempt::Read).into_response()),
    };
    // Ids are the tenant's own: another tenant's job of the same id is not looked at.
    let job = match job {
        Ok(Some(job)) => job,
        Ok(None) => return not_found(&job_id),
        Err(response) => return response,
    };
    respond(StatusCode::OK, encoding, &to_wire(&job))
}

async fn long_poll<S: JobStore>(
    gateway: Gateway<S>,
    owner: String,
    job_id: &str,
    wait: Duration,
) -> Result<Option<Job>, Response> {
    let deadline = Instant::now() + wait;
    let _permit = gateway
        .streams
        .open(&owner)
        .map_err(IntoResponse::into_response)?;
    let started = Follow::start(gateway, owner, job_id.to_string()).await;
    let (mut follow, job) = match started {
        Ok(Some(followed)) => followed,
        Ok(None) => return Ok(None),
        Err(error) => return Err(store_problem(error, Attempt::Read).into_response()),
    };
    if job.status.is_final() {
        return Ok(Some(job));
    }
    match follow.changed_from(&Seen::of(&job), Some(deadline)).await {
        Ok(changed) => Ok(Some(changed.unwrap_or(job))),
        Err(Stopped::Gone) => Ok(None),
        Err(Stopped::Store(error)) => Err(store_problem(error, Attempt::Read).into_response()),
    }
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
                tracing::error!(job_id = %Quoted(&job.id), %error, "stored result is unreadable");
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
        created_at: wire::rfc3339(job.created_at),
        started_at: job.started_at.map(wire::rfc3339),
        finished_at: job.finished_at.map(wire::rfc3339),
        attempts: job.attempts,
        progress: job.progress,
        duration_seconds,
        result,
        error: job.error.clone(),
    }
}
