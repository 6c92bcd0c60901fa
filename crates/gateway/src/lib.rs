//! The compute gateway: accepts jobs (answering as soon as they are durable, never
//! waiting for them) and answers their status from the job store. Compatible with
//! the original Ray Serve gateway's clients.

mod answers;
mod cancel;
mod events;
mod follow;
mod rate;
mod status;
mod submit;

/// The gateway's API, as `/openapi.json` answers it.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Projector gateway",
        description = "Accepts projection jobs and answers their status from the job store."
    ),
    paths(
        submit::generate_projection,
        status::job_status,
        events::job_events,
        cancel::cancel_job
    )
)]
pub struct ApiDoc;

use std::sync::Arc;

use axum::Router;
use axum::extract::FromRef;
use axum::routing::{get, post};
use jobstore::{AnyJobStore, JobStore};
use rate::SubmissionLimiter;
use service::Tenants;
use service::server::{App, HttpListener, Limits, ReadinessCheck, Shutdown, StreamBudget};
use tokio_util::sync::CancellationToken;

/// What one job may ask for and be given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobLimits {
    /// Attempts a job gets before it fails for good.
    pub max_attempts: u32,
    /// Paths a job may ask for; more is refused with 422.
    pub max_paths: u32,
}

impl Default for JobLimits {
    fn default() -> Self {
        JobLimits {
            max_attempts: 3,
            max_paths: wire::DEFAULT_MAX_PATHS,
        }
    }
}

pub use rate::SubmissionRate;

/// How a gateway serves: whose jobs, how many of them, how fast.
#[derive(Clone)]
pub struct GatewayConfig {
    pub tenants: Tenants,
    pub limits: JobLimits,
    /// How fast each tenant may submit; `None` takes submissions as they come.
    pub submission_rate: Option<SubmissionRate>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot move earlier jobs to their keyed owners: {0}")]
    Adopt(#[from] jobstore::Error),
    #[error("the gateway's listener failed: {0}")]
    Listener(#[from] std::io::Error),
}

/// Serves the gateway over `store` on `listener` until `shutdown` stops it,
/// once the jobs that earlier releases recorded under plain key hashes are
/// their tenants' again. Over the store a URL names, not generic: the
/// handlers are compiled here once, not in every crate that starts a gateway.
pub async fn run(
    config: GatewayConfig,
    store: Arc<AnyJobStore>,
    listener: HttpListener,
    shutdown: Shutdown,
) -> Result<(), Error> {
    let mut gateway = Gateway::new(store, config.tenants).with_job_limits(config.limits);
    if let Some(rate) = config.submission_rate {
        gateway = gateway.with_submission_rate(rate);
    }
    let moved = gateway.adopt_legacy_owners().await?;
    if moved > 0 {
        tracing::info!(
            moved,
            "jobs of earlier releases moved to their keyed owners"
        );
    }
    Ok(gateway.serve(listener, shutdown).await?)
}

/// The handlers' state: cheap to clone, every field shared.
pub struct Gateway<S> {
    store: Arc<S>,
    tenants: Tenants,
    submissions: Option<Arc<SubmissionLimiter>>,
    limits: JobLimits,
    /// Event streams and long-polls open at once, in all and per tenant.
    streams: Arc<StreamBudget>,
    /// Fires when the gateway begins to drain: waits and event streams end.
    draining: CancellationToken,
}

impl<S> Clone for Gateway<S> {
    fn clone(&self) -> Self {
        Gateway {
            store: self.store.clone(),
            tenants: self.tenants.clone(),
            submissions: self.submissions.clone(),
            limits: self.limits,
            streams: self.streams.clone(),
            draining: self.draining.clone(),
        }
    }
}

/// For the [`service::Owner`] extractor.
impl<S> FromRef<Gateway<S>> for Tenants {
    fn from_ref(gateway: &Gateway<S>) -> Tenants {
        gateway.tenants.clone()
    }
}

impl<S: JobStore> Gateway<S> {
    /// A gateway that takes submissions as fast as they come.
    pub fn new(store: Arc<S>, tenants: Tenants) -> Self {
        Gateway {
            store,
            tenants,
            submissions: None,
            limits: JobLimits::default(),
            streams: StreamBudget::for_connections(Limits::default().max_connections),
            draining: CancellationToken::new(),
        }
    }

    /// Limits each API key to `rate` submissions (429 with `Retry-After` beyond).
    pub fn with_submission_rate(mut self, rate: SubmissionRate) -> Self {
        self.submissions = Some(Arc::new(SubmissionLimiter::new(rate)));
        self
    }

    pub fn with_job_limits(mut self, limits: JobLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Moves the jobs that earlier releases recorded under a key's plain hash
    /// to its keyed owner; returns how many moved.
    pub async fn adopt_legacy_owners(&self) -> Result<u64, jobstore::Error> {
        let mut moved = 0;
        for (legacy, owner) in self.tenants.renamed_owners() {
            moved += self.store.rename_owner(legacy, owner).await?;
        }
        Ok(moved)
    }

    pub fn router(self) -> Router {
        Router::new()
            .route(
                "/generate_projection",
                post(submit::generate_projection::<S>),
            )
            .route("/job_status/{job_id}", get(status::job_status::<S>))
            .route("/jobs/{job_id}/events", get(events::job_events::<S>))
            .route("/jobs/{job_id}/cancel", post(cancel::cancel_job::<S>))
            .with_state(self)
    }

    /// Serves on `listener` until `shutdown` stops it; ready while the job
    /// store answers. Event streams and long-polls may hold half of the
    /// listener's connections, a quarter of those one tenant's.
    async fn serve(mut self, listener: HttpListener, shutdown: Shutdown) -> std::io::Result<()> {
        self.streams = StreamBudget::for_connections(listener.limits.max_connections);
        self.draining = shutdown.draining_token();
        let store = self.store.clone();
        let readiness: ReadinessCheck = Arc::new(move || {
            let store = store.clone();
            Box::pin(async move {
                store
                    .ping()
                    .await
                    .map_err(|error| format!("the job store does not answer ({error})"))
            })
        });
        let counted = self.store.clone();
        let depth = service::metrics::queue_depth(move || {
            let store = counted.clone();
            async move {
                let depth = store.queue_depth().await?;
                Ok::<_, jobstore::Error>((depth.queued, depth.processing))
            }
        });
        let document = service::openapi::with_max_paths(
            <ApiDoc as utoipa::OpenApi>::openapi(),
            self.limits.max_paths,
        );
        let app = App::new(self.router(), readiness)
            .with_collect(depth)
            .with_openapi(document);
        service::server::serve(listener, app, shutdown).await
    }
}
