//! The outbox dispatcher and the job follower. Each report goes to the gateway
//! under its own tenant's key; a refusal (a 4xx other than 429) ends it as
//! failed with the reason, and every running report is followed on its job's
//! event stream (`follow.rs`).

use std::time::Duration;

use service::trace::{TRACEPARENT, TraceParent};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use wire::{GenerateProjectionRequest, ProjectionParameters};

use service::{Secret, Tenants};

use crate::DispatchConfig;
use crate::follow::Following;
use crate::store::{ReportRow, ReportStore};

/// Reports read per page.
const BATCH: u32 = 64;
/// Finished reports deleted per statement while pruning.
const PRUNE_BATCH: u32 = 1000;
/// How often finished reports past their retention are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(60);
/// How often running reports are read to follow those no task follows (after
/// a restart, or a stream that broke); a report is followed from its dispatch.
const FOLLOW_SCAN_EVERY: Duration = Duration::from_secs(1);
/// Longest silence on a job's event stream before it is opened again.
const STREAM_READ_TIMEOUT: Duration = Duration::from_secs(45);

/// The job a report is submitted as: derived from the report, so that a retry
/// after a lost answer finds the same job, and a cancellation finds it too.
/// A report's trace: its id (a UUID, which every report has) is the trace's
/// id, so that the report's id finds its log lines in every role.
pub(crate) fn trace_of(report_id: &str) -> TraceParent {
    uuid::Uuid::parse_str(report_id).map_or_else(
        |_| TraceParent::start(),
        |id| TraceParent::of_trace(id.as_u128()),
    )
}

/// The span of the work done for one report, naming it and its trace.
pub(crate) fn report_span(report_id: &str) -> tracing::Span {
    tracing::info_span!("report", report_id, trace_id = %trace_of(report_id).trace_id())
}

pub(crate) fn job_id_of(report_id: &str) -> String {
    format!("report-{report_id}")
}

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
    async fn submit(
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
        let response = self
            .http
            .post(format!("{}/generate_projection", self.base()))
            .header(service::API_KEY_HEADER, key.expose())
            .header("x-idempotency-key", &job_id)
            .header(TRACEPARENT, trace_of(report_id).to_string())
            .json(&body)
            .send()
            .await
            .map_err(|error| {
                CallError::Transient(format!("gateway unreachable: {}", error.without_url()))
            })?;
        if response.status().as_u16() == 202 {
            return Ok(job_id);
        }
        Err(refusal(response, "the job").await)
    }

    /// Cancels the job; one that never reached the gateway, or has ended, is
    /// left as it is.
    pub(crate) async fn cancel(&self, key: &Secret, job_id: &str) -> Result<(), CallError> {
        let response = self
            .http
            .post(format!("{}/jobs/{job_id}/cancel", self.base()))
            .header(service::API_KEY_HEADER, key.expose())
            .send()
            .await
            .map_err(|error| {
                CallError::Transient(format!("gateway unreachable: {}", error.without_url()))
            })?;
        match response.status().as_u16() {
            200 | 404 | 409 => Ok(()),
            _ => Err(refusal(response, "the cancellation").await),
        }
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
        let response = request.send().await.map_err(|error| {
            CallError::Transient(format!("gateway unreachable: {}", error.without_url()))
        })?;
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

pub struct Dispatcher {
    store: ReportStore,
    client: GatewayClient,
    tenants: Tenants,
    config: DispatchConfig,
    following: Following,
}

impl Dispatcher {
    pub fn new(
        store: ReportStore,
        tenants: Tenants,
        config: DispatchConfig,
    ) -> Result<Self, reqwest::Error> {
        Ok(Dispatcher {
            store,
            client: GatewayClient::new(config.clone())?,
            tenants,
            config,
            following: Following::default(),
        })
    }

    pub async fn run(self, shutdown: CancellationToken) {
        let mut since_prune = PRUNE_EVERY;
        let mut since_scan = FOLLOW_SCAN_EVERY;
        let mut store_failures = database::FailureBackoff::new(self.config.poll);
        loop {
            let round = match self.dispatch_due(&shutdown).await {
                Ok(()) if since_scan >= FOLLOW_SCAN_EVERY => {
                    since_scan = Duration::ZERO;
                    self.follow_running(&shutdown).await
                }
                other => other,
            };
            if let Err(error) = round {
                let pause = store_failures.failed();
                tracing::error!(%error, failures = store_failures.count, pause_ms = pause.as_millis() as u64, "report round failed; pausing");
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(pause) => {}
                }
                continue;
            }
            store_failures.succeeded();
            if since_prune >= PRUNE_EVERY {
                since_prune = Duration::ZERO;
                match self
                    .store
                    .prune_finished(self.config.retention, PRUNE_BATCH)
                    .await
                {
                    Ok(0) => {}
                    Ok(count) => tracing::info!(count, "pruned reports past their retention"),
                    Err(error) => tracing::error!(%error, "could not prune finished reports"),
                }
                if let Err(error) = self.store.prune_sessions().await {
                    tracing::error!(%error, "could not prune expired page sessions");
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(self.config.poll) => {
                    since_prune += self.config.poll;
                    since_scan += self.config.poll;
                }
            }
        }
    }

    /// The key of the report's tenant; a report whose key is no longer
    /// configured fails, saying so.
    async fn key_for(&self, report: &ReportRow) -> Result<Option<&Secret>, crate::Error> {
        if let Some(key) = self.tenants.key_of(&report.owner) {
            return Ok(Some(key));
        }
        self.store
            .update(
                &report.id,
                "failed",
                None,
                Some("the API key that asked for this report is no longer configured"),
            )
            .await?;
        Ok(None)
    }

    async fn dispatch_due(&self, shutdown: &CancellationToken) -> Result<(), crate::Error> {
        for report in self.store.due_for_dispatch(BATCH).await? {
            let span = report_span(&report.id);
            self.dispatch(report, shutdown).instrument(span).await?;
        }
        Ok(())
    }

    /// Submits the report's job and follows it from then on.
    async fn dispatch(
        &self,
        report: ReportRow,
        shutdown: &CancellationToken,
    ) -> Result<(), crate::Error> {
        let Some(key) = self.key_for(&report).await? else {
            return Ok(());
        };
        let parameters: ProjectionParameters =
            serde_json::from_str(&report.parameters).unwrap_or_default();
        match self.client.submit(key, &report.id, parameters).await {
            Ok(job_id) => {
                tracing::info!(%job_id, "report dispatched");
                if self.store.mark_dispatched(&report.id, &job_id).await? {
                    let dispatched = ReportRow {
                        status: "dispatched".into(),
                        job_id: Some(job_id),
                        ..report
                    };
                    self.following.follow(
                        &dispatched,
                        key.clone(),
                        &self.client,
                        &self.store,
                        shutdown,
                    );
                } else if let Err(error) = self.client.cancel(key, &job_id).await {
                    // Cancelled while its job was being submitted.
                    tracing::warn!(?error, "cannot cancel the job of a cancelled report");
                }
            }
            Err(CallError::Transient(reason)) => {
                let delay = self.backoff(&report);
                tracing::warn!(%reason, ?delay, "gateway unavailable; will retry");
                self.store.postpone(&report.id, delay, &reason).await?;
            }
            Err(CallError::Refused(reason)) => {
                tracing::warn!(%reason, "the gateway refused the report's job");
                self.store
                    .update(&report.id, "failed", None, Some(&reason))
                    .await?;
            }
        }
        Ok(())
    }

    /// Follows every running report not followed yet, a page at a time.
    async fn follow_running(&self, shutdown: &CancellationToken) -> Result<(), crate::Error> {
        let mut after = (i64::MIN, String::new());
        loop {
            let page = self.store.running_after(&after, BATCH).await?;
            let Some(last) = page.last() else {
                return Ok(());
            };
            after = (last.created_at, last.id.clone());
            for report in &page {
                if let Some(key) = self.key_for(report).await? {
                    self.following
                        .follow(report, key.clone(), &self.client, &self.store, shutdown);
                }
            }
        }
    }

    fn backoff(&self, report: &ReportRow) -> Duration {
        let exponent = report.dispatch_attempts.clamp(0, 16) as u32;
        Duration::from_millis(250)
            .saturating_mul(1 << exponent)
            .min(self.config.max_backoff)
    }
}
