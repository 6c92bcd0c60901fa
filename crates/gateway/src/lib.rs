//! The compute gateway: accepts jobs (answering as soon as they are durable, never
//! waiting for them) and answers their status from the job store. Compatible with
//! the original Ray Serve gateway's clients.

mod auth;
mod status;
mod submit;

use std::sync::Arc;

use api::server::{HttpListener, Shutdown};
use axum::Router;
use axum::routing::{get, post};
use jobstore::JobStore;

pub use auth::owner_of;

/// Attempts a job gets before it fails for good.
pub const MAX_ATTEMPTS: u32 = 3;

pub struct Gateway<S> {
    store: Arc<S>,
    /// Owners (key hashes) of the accepted API keys.
    owners: Vec<String>,
}

impl<S: JobStore> Gateway<S> {
    pub fn new(store: Arc<S>, api_keys: &[String]) -> Self {
        Gateway {
            store,
            owners: api_keys.iter().map(|key| owner_of(key)).collect(),
        }
    }

    pub fn router(self) -> Router {
        Router::new()
            .route(
                "/generate_projection",
                post(submit::generate_projection::<S>),
            )
            .route("/job_status/{job_id}", get(status::job_status::<S>))
            .with_state(Arc::new(self))
    }

    /// Serves on `listener` until `shutdown` stops it.
    pub async fn run(
        self,
        listener: impl Into<HttpListener>,
        shutdown: Shutdown,
    ) -> std::io::Result<()> {
        api::server::serve(listener, self.router(), shutdown).await
    }
}
