//! The outbox dispatcher and the job follower. Each report goes to the gateway
//! under its own tenant's key; a refusal (a 4xx other than 429) ends it as
//! failed with the reason, and every running report is followed on its job's
//! event stream (`follow.rs`).

use std::time::Duration;

use service::{Secret, Tenants};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use wire::ProjectionParameters;

use crate::DispatchConfig;
use crate::follow::Following;
use crate::gateway_client::{CallError, GatewayClient};
use crate::report::{ReportStatus, report_span};
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
                ReportStatus::Failed,
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
                        status: ReportStatus::Dispatched,
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
                    .update(&report.id, ReportStatus::Failed, None, Some(&reason))
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
