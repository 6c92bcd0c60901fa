//! Following a dispatched report's job on the gateway's event stream, one task
//! per running report: its progress and its end are pushed to the orchestrator,
//! which never polls a job. A stream that breaks (the gateway restarts or
//! drains) is opened again by the dispatcher's next round, after a pause.
//!
//! However many reports run, at most [`STREAMS`] streams are open at once:
//! a task waits for a slot, holds it for a [`TURN`], then gives it to the
//! next in line (first come, first served) and follows again later. A job
//! that ended meanwhile is seen at once when its stream opens, so no end is
//! missed, and the gateway's connections stay free for everyone else.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tracing::Instrument;

use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use service::Secret;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use wire::JobStatus;

use crate::gateway_client::{CallError, GatewayClient};
use crate::report::{ReportStatus, report_span};
use crate::store::{ReportRow, ReportStore};

/// Pause before a report whose stream broke is followed again.
const FOLLOW_AGAIN_AFTER: Duration = Duration::from_secs(1);
/// Event streams open at once, for every report together.
const STREAMS: usize = 16;
/// How long one report's stream may hold its slot.
const TURN: Duration = Duration::from_secs(20);

/// The reports followed now, by id, and the slots their streams take turns in.
#[derive(Clone)]
pub struct Following {
    followed: Arc<Mutex<HashSet<String>>>,
    slots: Arc<Semaphore>,
}

impl Default for Following {
    fn default() -> Self {
        Following {
            followed: Arc::default(),
            slots: Arc::new(Semaphore::new(STREAMS)),
        }
    }
}

impl Following {
    fn lock(&self) -> MutexGuard<'_, HashSet<String>> {
        // The set is valid whatever a panicking holder was doing.
        self.followed
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Follows the report's job unless it is followed already; the task ends
    /// with the job, a broken stream, or `shutdown`.
    pub fn follow(
        &self,
        report: &ReportRow,
        key: Secret,
        client: &GatewayClient,
        store: &ReportStore,
        shutdown: &CancellationToken,
    ) {
        let Some(job_id) = report.job_id.clone() else {
            return;
        };
        if !self.lock().insert(report.id.clone()) {
            return;
        }
        let follower = Follower {
            client: client.clone(),
            store: store.clone(),
            report_id: report.id.clone(),
            job_id,
            key,
            status: report.status,
        };
        let (following, shutdown) = (self.clone(), shutdown.clone());
        let span = report_span(&report.id);
        tokio::spawn(
            async move {
                let report_id = follower.report_id.clone();
                tokio::select! {
                    () = shutdown.cancelled() => {}
                    () = follower.run(following.slots.clone()) => {}
                }
                following.lock().remove(&report_id);
            }
            .instrument(span),
        );
    }
}

struct Follower {
    client: GatewayClient,
    store: ReportStore,
    report_id: String,
    job_id: String,
    key: Secret,
    /// The report's status as stored.
    status: ReportStatus,
}

impl Follower {
    /// Follows the job for one turn in a slot; the dispatcher's next round
    /// follows it again unless it ended.
    async fn run(mut self, slots: Arc<Semaphore>) {
        let Ok(slot) = slots.acquire_owned().await else {
            return;
        };
        let followed = tokio::time::timeout(TURN, self.follow()).await;
        drop(slot);
        match followed {
            Ok(Ok(true)) => return,
            // The turn is over: the next report in line takes the slot.
            Err(_) => return,
            Ok(Ok(false)) => {}
            Ok(Err(error)) => {
                tracing::error!(report = %self.report_id, %error, "cannot record the job's progress; will follow it again")
            }
        }
        tokio::time::sleep(FOLLOW_AGAIN_AFTER).await;
    }

    /// Follows the stream until the job ends (true) or the stream does (false).
    async fn follow(&mut self) -> Result<bool, crate::Error> {
        let response = match self.client.events(&self.key, &self.job_id, None).await {
            Ok(response) => response,
            Err(CallError::Transient(reason)) => {
                tracing::debug!(report = %self.report_id, %reason, "job events unavailable; will ask again");
                return Ok(false);
            }
            Err(CallError::Refused(reason)) => {
                tracing::warn!(report = %self.report_id, %reason, "the gateway refused the job's events; the report fails");
                self.store
                    .update(&self.report_id, ReportStatus::Failed, None, Some(&reason))
                    .await?;
                return Ok(true);
            }
        };
        let mut events = response.bytes_stream().eventsource();
        while let Some(event) = events.next().await {
            let event = match event {
                Ok(event) => event,
                Err(error) => {
                    tracing::debug!(report = %self.report_id, %error, "job event stream broke; will follow again");
                    return Ok(false);
                }
            };
            match serde_json::from_str::<JobStatus>(&event.data) {
                Ok(job) => {
                    if self.record(job).await? {
                        return Ok(true);
                    }
                }
                Err(error) => {
                    tracing::warn!(report = %self.report_id, %error, "unreadable job event; skipped")
                }
            }
        }
        Ok(false)
    }

    /// Records what the job's state means for the report: true once it ended.
    async fn record(&mut self, job: JobStatus) -> Result<bool, crate::Error> {
        self.status = record(&self.store, &self.report_id, self.status, job).await?;
        Ok(self.status.is_final())
    }
}

/// Records what the job's state means for report `report_id`, whose stored
/// status is `status`: the report's status after.
pub(crate) async fn record(
    store: &ReportStore,
    report_id: &str,
    status: ReportStatus,
    job: JobStatus,
) -> Result<ReportStatus, crate::Error> {
    let (new_status, result, error) = match job.status.as_str() {
        "completed" => {
            let result = job
                .result
                .as_ref()
                .and_then(|result| serde_json::to_string(result).ok());
            (ReportStatus::Completed, result, None)
        }
        "failed" => {
            let error = job
                .error
                .unwrap_or_else(|| "the job failed without a reason".to_string());
            (ReportStatus::Failed, None, Some(error))
        }
        "cancelled" => (
            ReportStatus::Cancelled,
            None,
            Some("the job was cancelled".to_string()),
        ),
        "processing" if status != ReportStatus::Processing => {
            (ReportStatus::Processing, None, None)
        }
        _ => return Ok(status),
    };
    store
        .update(report_id, new_status, result.as_deref(), error.as_deref())
        .await?;
    Ok(new_status)
}
