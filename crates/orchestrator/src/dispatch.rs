//! The outbox dispatcher and the job follower.

use std::time::Duration;

use api::wire::{GenerateProjectionRequest, JobStatus, ProjectionParameters};
use tokio_util::sync::CancellationToken;

use crate::DispatchConfig;
use crate::store::{ReportRow, ReportStore};

/// Reports looked at per round.
const BATCH: u32 = 64;

/// Why a call to the gateway did not succeed.
#[derive(Debug)]
enum CallError {
    /// The gateway is down or failing: try again later.
    Transient(String),
    /// The gateway refused the request: retrying cannot help.
    Refused(String),
}

#[derive(Clone)]
pub struct GatewayClient {
    http: reqwest::Client,
    config: DispatchConfig,
}

impl GatewayClient {
    pub fn new(config: DispatchConfig) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .pool_idle_timeout(api::server::CLIENT_IDLE_TIMEOUT)
            .build()?;
        Ok(GatewayClient { http, config })
    }

    /// Submits a report's job. The idempotency key and job id derive from the
    /// report, so a retry after a lost answer finds the same job.
    async fn submit(
        &self,
        report_id: &str,
        parameters: ProjectionParameters,
    ) -> Result<String, CallError> {
        let job_id = format!("report-{report_id}");
        let body = GenerateProjectionRequest {
            job_id: job_id.clone(),
            parameters: Some(parameters),
        };
        let response = self
            .http
            .post(format!("{}/generate_projection", self.base()))
            .header("x-api-key", &self.config.api_key)
            .header("x-idempotency-key", &job_id)
            .json(&body)
            .send()
            .await
            .map_err(|error| CallError::Transient(format!("gateway unreachable: {error}")))?;
        let status = response.status();
        if status.as_u16() == 202 {
            return Ok(job_id);
        }
        let detail = response.text().await.unwrap_or_default();
        if status.is_server_error() || status.as_u16() == 429 {
            Err(CallError::Transient(format!(
                "gateway answered {status}: {detail}"
            )))
        } else {
            Err(CallError::Refused(format!(
                "gateway refused the job ({status}): {detail}"
            )))
        }
    }

    async fn status(&self, job_id: &str) -> Result<JobStatus, CallError> {
        let response = self
            .http
            .get(format!("{}/job_status/{job_id}", self.base()))
            .header("x-api-key", &self.config.api_key)
            .send()
            .await
            .map_err(|error| CallError::Transient(format!("gateway unreachable: {error}")))?;
        let status = response.status();
        if !status.is_success() {
            let detail = response.text().await.unwrap_or_default();
            return Err(CallError::Transient(format!(
                "gateway answered {status}: {detail}"
            )));
        }
        response
            .json()
            .await
            .map_err(|error| CallError::Transient(format!("unreadable job status: {error}")))
    }

    fn base(&self) -> &str {
        self.config.gateway_url.trim_end_matches('/')
    }
}

pub struct Dispatcher {
    store: ReportStore,
    client: GatewayClient,
    config: DispatchConfig,
}

impl Dispatcher {
    pub fn new(store: ReportStore, config: DispatchConfig) -> Result<Self, reqwest::Error> {
        Ok(Dispatcher {
            store,
            client: GatewayClient::new(config.clone())?,
            config,
        })
    }

    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            if let Err(error) = self.dispatch_due().await {
                tracing::error!(%error, "report dispatch round failed");
            }
            if let Err(error) = self.follow_running().await {
                tracing::error!(%error, "report follow-up round failed");
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(self.config.poll) => {}
            }
        }
    }

    async fn dispatch_due(&self) -> Result<(), crate::Error> {
        for report in self.store.due_for_dispatch(BATCH).await? {
            let parameters: ProjectionParameters =
                serde_json::from_str(&report.parameters).unwrap_or_default();
            match self.client.submit(&report.id, parameters).await {
                Ok(job_id) => self.store.mark_dispatched(&report.id, &job_id).await?,
                Err(CallError::Transient(reason)) => {
                    let delay = self.backoff(&report);
                    tracing::warn!(report = %report.id, %reason, ?delay, "gateway unavailable; will retry");
                    self.store.postpone(&report.id, delay, &reason).await?;
                }
                Err(CallError::Refused(reason)) => {
                    self.store
                        .update(&report.id, "failed", None, Some(&reason))
                        .await?;
                }
            }
        }
        Ok(())
    }

    async fn follow_running(&self) -> Result<(), crate::Error> {
        for report in self.store.running(BATCH).await? {
            let Some(job_id) = &report.job_id else {
                continue;
            };
            let job = match self.client.status(job_id).await {
                Ok(job) => job,
                Err(CallError::Transient(reason) | CallError::Refused(reason)) => {
                    tracing::debug!(report = %report.id, %reason, "job status unavailable; will ask again");
                    continue;
                }
            };
            match job.status.as_str() {
                "completed" => {
                    let result = job
                        .result
                        .as_ref()
                        .and_then(|result| serde_json::to_string(result).ok());
                    self.store
                        .update(&report.id, "completed", result.as_deref(), None)
                        .await?;
                }
                "failed" | "cancelled" => {
                    let error = job
                        .error
                        .unwrap_or_else(|| format!("the job was {}", job.status));
                    self.store
                        .update(&report.id, "failed", None, Some(&error))
                        .await?;
                }
                "processing" if report.status != "processing" => {
                    self.store
                        .update(&report.id, "processing", None, None)
                        .await?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn backoff(&self, report: &ReportRow) -> Duration {
        let exponent = report.dispatch_attempts.clamp(0, 16) as u32;
        Duration::from_millis(250)
            .saturating_mul(1 << exponent)
            .min(self.config.max_backoff)
    }
}
