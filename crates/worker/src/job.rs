//! One actor: claim a job, run it under its lease, store the outcome.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use api::wire::{Portfolio, ProjectionParameters};
use engine::{Assumptions, Observer, ProjectionResult, Shocks};
use jobstore::{Claimed, Failure, JobStore};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::Node;
use crate::client::FetchError;

pub async fn actor_loop<S: JobStore>(
    node: Arc<Node<S>>,
    actor: usize,
    shutdown: CancellationToken,
) {
    let worker_name = format!("{}/actor-{actor}", node.config.node_id);
    while !shutdown.is_cancelled() {
        let claimed = match node.store.claim(&worker_name, 1, node.config.lease).await {
            Ok(claimed) => claimed,
            Err(error) => {
                tracing::error!(%error, worker = %worker_name, "cannot claim jobs; retrying");
                Vec::new()
            }
        };
        if claimed.is_empty() {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(node.config.idle_poll) => continue,
            }
        }
        for claim in claimed {
            run_under_lease(&node, claim).await;
        }
    }
}

/// Progress and cancellation shared by the engine, the heartbeat and the actor.
#[derive(Default)]
struct JobControl {
    progress_bits: AtomicU64,
    lease_lost: AtomicBool,
}

impl Observer for JobControl {
    fn is_cancelled(&self) -> bool {
        self.lease_lost.load(Ordering::Relaxed)
    }

    fn on_progress(&self, fraction: f64) {
        self.progress_bits
            .store(fraction.to_bits(), Ordering::Relaxed);
    }
}

enum Outcome {
    Completed(ProjectionResult),
    Failed(Failure),
}

async fn run_under_lease<S: JobStore>(node: &Arc<Node<S>>, claim: Claimed) {
    let job_id = claim.job.id.clone();
    tracing::info!(%job_id, attempt = claim.job.attempts, customer = %claim.job.customer_id, "job started");
    let control = Arc::new(JobControl::default());
    let heartbeat_stop = CancellationToken::new();
    let heartbeat = tokio::spawn(heartbeat_loop(
        node.clone(),
        claim.clone(),
        control.clone(),
        heartbeat_stop.clone(),
    ));
    let outcome = run(node, &claim, control.clone()).await;
    heartbeat_stop.cancel();
    let _ = heartbeat.await;
    let stored = match outcome {
        Outcome::Completed(result) => match serde_json::to_string(&result) {
            Ok(json) => node.store.complete(&claim, &json).await,
            Err(error) => {
                let reason = format!("the result could not be encoded: {error}");
                node.store.fail(&claim, Failure::Permanent { reason }).await
            }
        },
        Outcome::Failed(failure) => {
            tracing::warn!(%job_id, ?failure, "job attempt failed");
            node.store.fail(&claim, failure).await
        }
    };
    match stored {
        Ok(true) => tracing::info!(%job_id, "job attempt recorded"),
        Ok(false) => {
            tracing::warn!(%job_id, "lease lost before the outcome could be stored; another attempt owns the job")
        }
        Err(error) => {
            tracing::error!(%job_id, %error, "job outcome could not be stored; the lease will expire and the job run again")
        }
    }
}

async fn run<S: JobStore>(node: &Node<S>, claim: &Claimed, control: Arc<JobControl>) -> Outcome {
    let parameters: ProjectionParameters = match serde_json::from_str(&claim.job.request) {
        Ok(parameters) => parameters,
        Err(error) => return permanent(format!("the stored request is unreadable: {error}")),
    };
    let params = match api::projection_params(&parameters) {
        Ok(params) => params,
        Err(error) => return permanent(error.to_string()),
    };
    let customer_id = parameters.customer_id.as_str();
    let fetched = node
        .cache
        .get_or_fetch(customer_id, || node.client.portfolio(customer_id))
        .await;
    let portfolio = match fetched {
        Ok((portfolio, _source)) => portfolio,
        Err(FetchError::NotFound(customer)) => {
            return permanent(format!("customer {customer:?} not found"));
        }
        Err(error @ (FetchError::Unavailable { .. } | FetchError::Cache(_))) => {
            return retry_later(error.to_string(), claim.job.attempts);
        }
        Err(error @ FetchError::Rejected { .. }) => return permanent(error.to_string()),
    };
    let initial_values = match initial_values(&portfolio) {
        Ok(values) => values,
        Err(error) => {
            return permanent(format!(
                "customer {customer_id:?} has an unusable portfolio: {error}"
            ));
        }
    };
    let (reply, answer) = oneshot::channel();
    let engine_control = control.clone();
    node.engine_pool.spawn(move || {
        let result = engine::project(
            &initial_values,
            &params,
            &Assumptions::default(),
            &Shocks::Random,
            &*engine_control,
        );
        let _ = reply.send(result);
    });
    match answer.await {
        Ok(Ok(result)) => Outcome::Completed(result),
        Ok(Err(engine::Error::Cancelled)) => {
            retry_later("the attempt was stopped".into(), claim.job.attempts)
        }
        Ok(Err(error)) => permanent(error.to_string()),
        Err(_) => retry_later(
            "the engine thread stopped unexpectedly".into(),
            claim.job.attempts,
        ),
    }
}

fn initial_values(portfolio: &Portfolio) -> Result<[f64; engine::K], engine::Error> {
    engine::initial_values_by_class(
        portfolio
            .assets
            .iter()
            .map(|asset| (asset.asset_class.as_str(), asset.market_value)),
    )
}

fn permanent(reason: String) -> Outcome {
    Outcome::Failed(Failure::Permanent { reason })
}

/// Job-level backoff between attempts: 1 s, 2 s, 4 s, ...
fn retry_later(reason: String, attempts: u32) -> Outcome {
    let retry_after = Duration::from_secs(1 << attempts.saturating_sub(1).min(6));
    Outcome::Failed(Failure::Retryable {
        reason,
        retry_after,
    })
}

/// Renews the lease and reports progress until stopped; a lost lease stops the engine.
async fn heartbeat_loop<S: JobStore>(
    node: Arc<Node<S>>,
    claim: Claimed,
    control: Arc<JobControl>,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(node.config.heartbeat) => {}
        }
        let progress = f64::from_bits(control.progress_bits.load(Ordering::Relaxed));
        match node
            .store
            .heartbeat(&claim, progress, node.config.lease)
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(job_id = %claim.job.id, "lease lost; stopping the attempt");
                control.lease_lost.store(true, Ordering::Relaxed);
                return;
            }
            Err(error) => {
                tracing::error!(job_id = %claim.job.id, %error, "heartbeat failed; will retry")
            }
        }
    }
}
