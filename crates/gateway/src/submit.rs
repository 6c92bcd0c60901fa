//! `POST /generate_projection`: validate, commit, answer 202. The job's length
//! never matters here.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use jobstore::{JobStore, NewJob};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use service::{Accepts, Owner, Problem, respond};
use wire::{GenerateProjectionRequest, GenerateProjectionResponse, ProjectionParameters};

use crate::Gateway;
use crate::answers::{Attempt, store_problem};

const MAX_ID_LENGTH: usize = 128;
/// A job id in a path: every character but RFC 3986's unreserved ones is
/// percent-encoded, so that an id such as `a/../b?c` stays one segment.
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Accepts a projection job: answered once the job is durable, never after
/// waiting for it. The same `X-Idempotency-Key` (or `job_id`) with the same
/// parameters answers the first job again (`Idempotent-Replayed: true`).
#[utoipa::path(post, path = "/generate_projection", tag = "jobs",
    security(("tenant_key" = [])),
    params(
        ("X-Idempotency-Key" = Option<String>, Header, description = "Names the job when `job_id` is empty: a retry with the same key is the same job"),
    ),
    request_body(content = GenerateProjectionRequest, content_type = "application/json"),
    responses(
        (status = 202, description = "Queued (or replayed); `Location` names its status", body = GenerateProjectionResponse),
        (status = 422, description = "A field breaks a rule, or the id names a job with other parameters", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "The key's submission rate is spent; see `Retry-After`", body = Problem, content_type = "application/problem+json"),
        service::openapi::StoreFailures,
        service::openapi::TenantRefusals,
    ),
)]
pub async fn generate_projection<S: JobStore>(
    State(gateway): State<Gateway<S>>,
    Owner(owner): Owner,
    Accepts(encoding): Accepts,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    if let Some(limiter) = &gateway.submissions {
        limiter.admit(&owner)?;
    }
    let request: GenerateProjectionRequest = service::decode_body(&headers, &body)?;
    let idempotency_key = header_text(&headers, "x-idempotency-key", "X-Idempotency-Key")?;
    let requested = request.parameters.ok_or_else(|| {
        Problem::invalid(
            "parameters",
            "is required: customer_id, time_horizon_years and risk_profile",
        )
    })?;
    // Stored and compared with every default filled in: leaving a field out
    // and sending its default value are one request.
    let parameters = wire::normalized(&requested, gateway.limits.max_paths)?;
    let job_id = match (request.job_id.as_str(), &idempotency_key) {
        ("", Some(key)) => key.clone(),
        ("", None) => uuid::Uuid::new_v4().to_string(),
        (id, _) => id.to_string(),
    };
    check_identifier("job_id", &job_id)?;
    let canonical = serde_json::to_string(&parameters).map_err(|error| {
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the request could not be recorded: {error}"),
        )
    })?;
    let new_job = NewJob {
        id: job_id,
        owner,
        idempotency_key,
        request: canonical,
        customer_id: parameters.customer_id.clone(),
        max_attempts: gateway.limits.max_attempts,
        cost_ms: estimated_cost_ms(&parameters),
        traceparent: Some(service::trace::of_request(&headers).to_string()),
    };
    let submitted = gateway
        .store
        .submit(new_job)
        .await
        .map_err(|error| store_problem(error, Attempt::Submit))?;
    let answer = GenerateProjectionResponse {
        status: "queued".into(),
        job_id: submitted.job.id.clone(),
    };
    let mut response = respond(StatusCode::ACCEPTED, encoding, &answer);
    let location = format!(
        "/job_status/{}",
        utf8_percent_encode(&submitted.job.id, PATH_SEGMENT)
    );
    if let Ok(location) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    if submitted.created {
        metrics::counter!(service::metrics::JOBS_SUBMITTED).increment(1);
    } else {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// Path-months one engine thread simulates in a millisecond (measured on
/// AVX-512 Zen 4; AVX2 machines are about half as fast, which only scales every
/// tenant's costs alike).
const PATH_MONTHS_PER_MS: u64 = 30_000;
/// What a job costs beyond its simulation: fetching, storing, claiming.
const JOB_OVERHEAD_MS: u64 = 5;

/// A job's estimated run time on one engine thread, which is what it moves its
/// tenant's share by.
fn estimated_cost_ms(parameters: &ProjectionParameters) -> u32 {
    let path_months = parameters
        .paths
        .unwrap_or_default()
        .saturating_mul(parameters.time_horizon_years.saturating_mul(12));
    let cost = JOB_OVERHEAD_MS.saturating_add(path_months / PATH_MONTHS_PER_MS);
    u32::try_from(cost).unwrap_or(u32::MAX)
}

fn header_text(headers: &HeaderMap, name: &str, display: &str) -> Result<Option<String>, Problem> {
    let Some(value) = headers.get(name) else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| Problem::invalid(display, "must be printable ASCII"))?;
    check_identifier(display, text)?;
    Ok(Some(text.to_string()))
}

fn check_identifier(field: &str, value: &str) -> Result<(), Problem> {
    if value.is_empty() || value.len() > MAX_ID_LENGTH {
        return Err(Problem::invalid(
            field,
            format!("must be 1 to {MAX_ID_LENGTH} characters"),
        ));
    }
    if value == "." || value == ".." {
        return Err(Problem::invalid(
            field,
            "must not be \".\" or \"..\", which a URL would resolve away",
        ));
    }
    if !value.chars().all(|c| c.is_ascii_graphic()) {
        return Err(Problem::invalid(
            field,
            "must be printable ASCII without spaces",
        ));
    }
    Ok(())
}
