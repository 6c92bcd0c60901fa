//! The orchestrator's client of the gateway: a report's job is submitted,
//! followed and cancelled under its tenant's own key, as any client would.

use std::time::Duration;

use service::Secret;
use service::trace::TRACEPARENT;
use wire::{GenerateProjectionRequest, JobStatus, ProjectionParameters};

use crate::DispatchConfig;
use crate::report::{job_id_of, trace_of};

/// Longest silence on a job's event stream before it is opened again.
const STREAM_READ_TIMEOUT: Duration = Duration::from_secs(45);

/// Why a call to the gateway did not succeed.
#[derive(Debug)]
pub(crate) enum CallError {
    /// The gateway is down or failing: try again later.
    Transient(String),
    /// The gateway refused the request: retrying cannot help.
    Refused(String),
}

#[derive(Clone)]
pub struct GatewayClient {
    http: reqwest::Client,
    /// For event streams: no deadline for the whole answer, which lasts as
    /// long as the job, but one for each read (the gateway sends a keep-alive
    /// every 15 s).
    streams: reqwest::Client,
    config: DispatchConfig,
}

impl GatewayClient {
    pub fn new(config: DispatchConfig) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .pool_idle_timeout(service::server::CLIENT_IDLE_TIMEOUT)
            .build()?;
        let streams = reqwest::Client::builder()
            .connect_timeout(config.request_timeout)
            .read_timeout(STREAM_READ_TIMEOUT)
            .pool_idle_timeout(service::server::CLIENT_IDLE_TIMEOUT)
            .build()?;
        Ok(GatewayClient {
            http,
            streams,
            config,
        })
    }

    /// Submits a report's job. The idempotency key and job id derive from the
    /// report, so a retry after a lost answer finds the same job.
    pub(crate) async fn submit(
        &self,
        key: &Secret,
        report_id: &str,
        parameters: ProjectionParameters,
    ) -> Result<String, CallError> {
        let job_id = job_id_of(report_id);
        let body = GenerateProjectionRequest {
            job_id: job_id.clone(),
            parameters: Some(parameters),
        };
        let request = self
            .http
            .post(format!("{}/generate_projection", self.base()))
            .header(service::API_KEY_HEADER, key.expose())
            .header("x-idempotency-key", &job_id)
            .header(TRACEPARENT, trace_of(report_id).to_string())
            .json(&body);
        let response = send(request).await?;
        if response.status().as_u16() == 202 {
            return Ok(job_id);
        }
        Err(refusal(response, "the job").await)
    }

    /// Cancels the job; one that never reached the gateway, or has ended, is
    /// left as it is.
    pub(crate) async fn cancel(&self, key: &Secret, job_id: &str) -> Result<(), CallError> {
        let request = self
            .http
            .post(format!("{}/jobs/{job_id}/cancel", self.base()))
            .header(service::API_KEY_HEADER, key.expose());
        let response = send(request).await?;
        match response.status().as_u16() {
            200 | 404 | 409 => Ok(()),
            _ => Err(refusal(response, "the cancellation").await),
        }
    }

    /// The job's state as the gateway has it now.
    pub(crate) async fn status(&self, key: &Secret, job_id: &str) -> Result<JobStatus, CallError> {
        let request = self
            .http
            .get(format!("{}/job_status/{job_id}", self.base()))
            .header(service::API_KEY_HEADER, key.expose());
        let response = send(request).await?;
        if response.status().as_u16() != 200 {
            return Err(refusal(response, "the job's status").await);
        }
        response.json().await.map_err(|error| {
            CallError::Transient(format!("unreadable job status: {}", error.without_url()))
        })
    }

    /// Opens the job's event stream, after `last_event_id` when given.
    pub(crate) async fn events(
        &self,
        key: &Secret,
        job_id: &str,
        last_event_id: Option<&str>,
    ) -> Result<reqwest::Response, CallError> {
        let mut request = self
            .streams
            .get(format!("{}/jobs/{job_id}/events", self.base()))
            .header(service::API_KEY_HEADER, key.expose())
            .header(reqwest::header::ACCEPT, "text/event-stream");
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = send(request).await?;
        if response.status().as_u16() == 200 {
            return Ok(response);
        }
        Err(refusal(response, "the job's events").await)
    }

    /// Whether the gateway answers its liveness check now.
    pub async fn alive(&self) -> Result<(), String> {
        let url = format!("{}/healthz", self.base());
        let shown = database::redact_url(&url);
        match self.http.get(&url).send().await {
            Ok(response) if response.status().is_success() => Ok(()),
            Ok(response) => Err(format!(
                "the gateway at {shown} answered {}",
                response.status()
            )),
            Err(error) => Err(format!(
                "the gateway at {shown} does not answer ({})",
                error.without_url()
            )),
        }
    }

    fn base(&self) -> &str {
        self.config.gateway_url.trim_end_matches('/')
    }
}

/// Sends `request`; a gateway that cannot be reached is worth another try.
async fn send(request: reqwest::RequestBuilder) -> Result<reqwest::Response, CallError> {
    request.send().await.map_err(|error| {
        CallError::Transient(format!("gateway unreachable: {}", error.without_url()))
    })
}

/// What a gateway's answer other than success means: a 5xx or a 429 is worth
/// another try, any other 4xx is final.
async fn refusal(response: reqwest::Response, what: &str) -> CallError {
    let status = response.status();
    let detail = response.text().await.unwrap_or_default();
    let detail = service::server::echo(&detail);
    if status.is_server_error() || status.as_u16() == 429 {
        CallError::Transient(format!("gateway answered {status}: {detail}"))
    } else {
        CallError::Refused(format!("gateway refused {what} ({status}): {detail}"))
    }
}
