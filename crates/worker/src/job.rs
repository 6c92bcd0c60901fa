//! One job on one actor: run it under its lease, with a heartbeat that renews
//! the lease and reports progress, and store the outcome.

use service::trace::Quoted;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use engine::{Assumptions, Observer, ProjectionResult, Shocks};
use jobstore::{Claimed, Classify, Failure, JobStore};
use service::trace::TraceParent;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use wire::{Portfolio, ProjectionParameters};

use cache::{Fetched, Lookup, Source};

use crate::Node;
use crate::client::FetchError;
use crate::engine_threads::{EngineFault, on_engine};
use crate::reuse::{keep_result, result_digest, reusable_result};

/// Wait between attempts to store an outcome while the job store is unreachable.
const STORE_RETRY: Duration = Duration::from_secs(1);

/// A result, and what the job's answer says of where it came from.
struct Completed {
    result: ProjectionResult,
    /// Taken from the node's result cache rather than computed.
    reused: bool,
    portfolio_as_of: String,
    portfolio_version: i64,
    /// The portfolio was an expired cache entry: the data service was down.
    portfolio_stale: bool,
}

impl Completed {
    /// The job's result as the gateway serves it.
    fn to_json(&self) -> serde_json::Result<String> {
        let mut answer = wire::ProjectionResult::from(&self.result);
        answer.reused = self.reused;
        answer.portfolio_as_of = self.portfolio_as_of.clone();
        answer.portfolio_version = self.portfolio_version;
        answer.portfolio_stale = self.portfolio_stale;
        serde_json::to_string(&answer)
    }
}

/// Progress and cancellation shared by the engine, the heartbeat and the actor.
struct JobControl {
    progress_bits: AtomicU64,
    /// The lease is gone: the job was reclaimed or cancelled.
    lease_lost: AtomicBool,
    /// The node stops: give the job back rather than finish it.
    abandon: CancellationToken,
}

impl Observer for JobControl {
    fn is_cancelled(&self) -> bool {
        self.lease_lost.load(Ordering::Relaxed) || self.abandon.is_cancelled()
    }

    fn on_progress(&self, fraction: f64) {
        self.progress_bits
            .store(fraction.to_bits(), Ordering::Relaxed);
    }
}

enum Outcome {
    Completed(Completed),
    Failed(Failure),
    /// The node stops before the job could finish: it goes back to the queue.
    Abandoned,
}

/// Runs one attempt in a span naming the job and its trace, so that every log
/// line of the attempt carries the trace its submission started.
pub async fn run_under_lease<S: JobStore>(
    node: &Arc<Node<S>>,
    claim: Claimed,
    abandon: CancellationToken,
) {
    let trace = claim
        .job
        .traceparent
        .as_deref()
        .and_then(TraceParent::parse)
        .unwrap_or_else(TraceParent::start);
    let span =
        tracing::info_span!("job", job_id = %Quoted(&claim.job.id), trace_id = %trace.trace_id());
    attempt(node, claim, trace, abandon).instrument(span).await
}

async fn attempt<S: JobStore>(
    node: &Arc<Node<S>>,
    claim: Claimed,
    trace: TraceParent,
    abandon: CancellationToken,
) {
    let job_id = claim.job.id.clone();
    tracing::info!(job_id = %Quoted(&job_id), attempt = claim.job.attempts, customer = %claim.job.customer_id, "job started");
    record_claim(&claim.job);
    let started = Instant::now();
    let control = Arc::new(JobControl {
        progress_bits: AtomicU64::new(0),
        lease_lost: AtomicBool::new(false),
        abandon,
    });
    let heartbeat_stop = CancellationToken::new();
    let heartbeat = tokio::spawn(
        heartbeat_loop(
            node.clone(),
            claim.clone(),
            control.clone(),
            heartbeat_stop.clone(),
        )
        .in_current_span(),
    );
    let outcome = tokio::select! {
        outcome = run(node, &claim, trace, control.clone()) => outcome,
        () = control.abandon.cancelled() => Outcome::Abandoned,
    };
    heartbeat_stop.cancel();
    let _ = heartbeat.await;
    let outcome = match outcome {
        Outcome::Failed(_) if control.abandon.is_cancelled() => Outcome::Abandoned,
        outcome => outcome,
    };
    let ended = ending(&outcome, &claim);
    metrics::histogram!(service::metrics::JOB_RUN, "outcome" => ended.label())
        .record(started.elapsed());
    let stored = store_outcome(node, &claim, outcome, &control.abandon).await;
    match stored {
        Ok(true) => {
            ended.count();
            tracing::info!(job_id = %Quoted(&job_id), "job attempt recorded")
        }
        Ok(false) => {
            tracing::warn!(job_id = %Quoted(&job_id), "lease lost before the outcome could be stored; another attempt owns the job, or it was cancelled")
        }
        Err(error) => {
            tracing::error!(job_id = %Quoted(&job_id), %error, "job outcome could not be stored; the lease will expire and the job run again")
        }
    }
}

/// How an attempt ends, as the metrics count it.
#[derive(Debug, Clone, Copy)]
enum Ending {
    Completed,
    /// The job failed for good.
    Failed,
    /// The job goes back to the queue for another attempt.
    Retried,
    /// The node stops; the job goes back to the queue without using an attempt.
    Abandoned,
}

impl Ending {
    fn label(self) -> &'static str {
        match self {
            Ending::Completed => "completed",
            Ending::Failed => "failed",
            Ending::Retried => "retried",
            Ending::Abandoned => "abandoned",
        }
    }

    /// Counts an ending the job store recorded.
    fn count(self) {
        let name = match self {
            Ending::Completed => service::metrics::JOBS_COMPLETED,
            Ending::Failed => service::metrics::JOBS_FAILED,
            Ending::Retried => service::metrics::JOBS_RETRIED,
            Ending::Abandoned => return,
        };
        metrics::counter!(name).increment(1);
    }
}

fn ending(outcome: &Outcome, claim: &Claimed) -> Ending {
    match outcome {
        Outcome::Completed(_) => Ending::Completed,
        Outcome::Failed(Failure::Retryable { .. })
            if claim.job.attempts < claim.job.max_attempts =>
        {
            Ending::Retried
        }
        Outcome::Failed(_) => Ending::Failed,
        Outcome::Abandoned => Ending::Abandoned,
    }
}

/// A claim, which attempt it is, and for a first attempt how long the job
/// waited from its submission.
fn record_claim(job: &jobstore::Job) {
    metrics::counter!(service::metrics::JOBS_CLAIMED).increment(1);
    metrics::histogram!(service::metrics::JOB_ATTEMPT).record(f64::from(job.attempts));
    if job.attempts == 1
        && let Some(started_at) = job.started_at
    {
        let waited_ms = started_at.saturating_sub(job.created_at).max(0);
        metrics::histogram!(service::metrics::COMMIT_TO_CLAIM).record(waited_ms as f64 / 1000.0);
    }
}

/// Stores the outcome, retrying while the job store is unreachable: a computed
/// result is kept until it can be stored, unless the node is stopping.
async fn store_outcome<S: JobStore>(
    node: &Node<S>,
    claim: &Claimed,
    outcome: Outcome,
    abandon: &CancellationToken,
) -> jobstore::Result<bool> {
    let result_json = match &outcome {
        Outcome::Completed(completed) => match completed.to_json() {
            Ok(json) => Some(json),
            Err(error) => {
                let reason = format!("the result could not be encoded: {error}");
                return node.store.fail(claim, Failure::Permanent { reason }).await;
            }
        },
        _ => None,
    };
    loop {
        let stored = match (&outcome, &result_json) {
            (Outcome::Completed(_), Some(json)) => node.store.complete(claim, json).await,
            (Outcome::Failed(failure), _) => {
                tracing::warn!(job_id = %Quoted(&claim.job.id), ?failure, "job attempt failed");
                node.store.fail(claim, failure.clone()).await
            }
            _ => node.store.release(claim).await,
        };
        match stored {
            // A full disk passes too, once its operator frees space.
            Err(error)
                if matches!(
                    error.kind(),
                    jobstore::ErrorKind::Unavailable | jobstore::ErrorKind::Full
                ) && !abandon.is_cancelled() =>
            {
                tracing::warn!(job_id = %Quoted(&claim.job.id), %error, "job store cannot take the outcome now; keeping it and retrying");
                tokio::time::sleep(STORE_RETRY).await;
            }
            stored => return stored,
        }
    }
}

async fn run<S: JobStore>(
    node: &Node<S>,
    claim: &Claimed,
    trace: TraceParent,
    control: Arc<JobControl>,
) -> Outcome {
    let parameters: ProjectionParameters = match serde_json::from_str(&claim.job.request) {
        Ok(parameters) => parameters,
        Err(error) => return permanent(format!("the stored request is unreadable: {error}")),
    };
    let params = match wire::projection_params(&parameters, node.config.max_paths) {
        Ok(params) => params,
        Err(error) => return permanent(error.to_string()),
    };
    let customer_id = parameters.customer_id.as_str();
    let fetched = node
        .cache
        .get_or_fetch(
            customer_id,
            || async {
                match node.client.portfolio(customer_id, Some(trace)).await {
                    Ok(portfolio) => Ok(Fetched::Portfolio(portfolio)),
                    Err(FetchError::NotFound(_)) => Ok(Fetched::Unknown),
                    Err(error) => Err(error),
                }
            },
            // Down, not wrong: an expired portfolio is better than none.
            |error| matches!(error, FetchError::Unavailable { .. }),
        )
        .await;
    let (portfolio, stale) = match fetched {
        Ok(Lookup::Found(portfolio, source)) => (portfolio, source == Source::Stale),
        Ok(Lookup::Unknown) => {
            return permanent(format!("customer {customer_id:?} not found"));
        }
        Err(FetchError::NotFound(customer)) => {
            return permanent(format!("customer {customer:?} not found"));
        }
        Err(
            error @ (FetchError::Unavailable { .. }
            | FetchError::Unauthorized { .. }
            | FetchError::Cache(_)),
        ) => {
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
    let inputs = match engine::model_inputs(&initial_values, &params, &Assumptions::default()) {
        Ok(inputs) => inputs,
        Err(error) => return permanent(error.to_string()),
    };
    let completed = |result, reused| {
        Outcome::Completed(Completed {
            result,
            reused,
            portfolio_as_of: portfolio.as_of.clone(),
            portfolio_version: portfolio.version,
            portfolio_stale: stale,
        })
    };
    let digest = result_digest(&claim.job.owner, &inputs);
    if let Some(result) = reusable_result(node, &digest, &claim.job.id).await {
        return completed(result, true);
    }
    let engine_control = control.clone();
    let computing = Instant::now();
    let projected = on_engine(&node.engine_pool, move || {
        let shocks = Shocks::Random;
        let mut simulation = engine::simulate(&inputs, &shocks, &*engine_control)?;
        Ok(engine::statistics(&inputs, shocks.kind(), &mut simulation))
    })
    .await;
    match projected {
        Ok(Ok(result)) => {
            record_engine_speed(&params, computing.elapsed());
            keep_result(node, &digest, &result).await;
            completed(result, false)
        }
        Ok(Err(engine::Error::Cancelled)) => {
            retry_later("the attempt was stopped".into(), claim.job.attempts)
        }
        Ok(Err(error)) => permanent(error.to_string()),
        // The same input would fail the same way: no retry.
        Err(EngineFault::Panicked(message)) => permanent(format!(
            "the engine failed unexpectedly ({message}); this is a defect in projector, please report it with the job's parameters"
        )),
        Err(EngineFault::Vanished) => retry_later(
            "the engine thread stopped unexpectedly".into(),
            claim.job.attempts,
        ),
    }
}

/// The projection's path-steps (paths times months), and how fast they ran.
fn record_engine_speed(params: &engine::ProjectionParams, took: Duration) {
    let steps = u64::from(params.paths) * u64::from(params.time_horizon_years) * 12;
    metrics::counter!(service::metrics::ENGINE_PATH_STEPS).increment(steps);
    if !took.is_zero() {
        metrics::gauge!(service::metrics::ENGINE_PATH_STEPS_PER_SECOND)
            .set(steps as f64 / took.as_secs_f64());
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

/// Renews the lease and records progress until stopped; a lost lease, or a
/// cancellation pushed by the job store, stops the engine at its next check.
async fn heartbeat_loop<S: JobStore>(
    node: Arc<Node<S>>,
    claim: Claimed,
    control: Arc<JobControl>,
    stop: CancellationToken,
) {
    let mut watch = node.store.changes().watch(claim.job.seq);
    let config = &node.config;
    let tick = config.progress_every.min(config.heartbeat);
    let (mut recorded, mut renewed) = (0.0, Instant::now());
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = watch.cancelled() => {
                tracing::info!(job_id = %Quoted(&claim.job.id), "job cancelled; stopping the attempt");
                control.lease_lost.store(true, Ordering::Relaxed);
                return;
            }
            () = tokio::time::sleep(tick) => {}
        }
        let progress = f64::from_bits(control.progress_bits.load(Ordering::Relaxed));
        if progress == recorded && renewed.elapsed() < config.heartbeat {
            continue;
        }
        match node.store.heartbeat(&claim, progress, config.lease).await {
            Ok(true) => (recorded, renewed) = (progress, Instant::now()),
            Ok(false) => {
                tracing::warn!(job_id = %Quoted(&claim.job.id), "lease lost; stopping the attempt");
                control.lease_lost.store(true, Ordering::Relaxed);
                return;
            }
            Err(error) => {
                tracing::error!(job_id = %Quoted(&claim.job.id), %error, "heartbeat failed; will retry")
            }
        }
    }
}
