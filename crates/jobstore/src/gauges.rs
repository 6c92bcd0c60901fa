//! The job store's part of `/metrics`: how many jobs wait and run, read when
//! a scrape asks rather than kept up to date on every write.

use std::sync::Arc;

use api::metrics::{Collect, JOBS};

use crate::JobStore;

/// Reads the queue depth into the `projector_jobs` gauge, by status.
pub fn queue_depth<S: JobStore>(store: Arc<S>) -> Collect {
    Arc::new(move || {
        let store = store.clone();
        Box::pin(async move {
            match store.queue_depth().await {
                Ok(depth) => {
                    metrics::gauge!(JOBS, "status" => "queued").set(depth.queued as f64);
                    metrics::gauge!(JOBS, "status" => "processing").set(depth.processing as f64);
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot read the queue depth for /metrics; the last one read is shown")
                }
            }
        })
    })
}
