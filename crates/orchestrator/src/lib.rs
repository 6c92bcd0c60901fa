//! The orchestrator (the Rails controller and ActiveJob of the original): takes
//! report requests, dispatches them to the gateway through a durable outbox with
//! a stable idempotency key, follows each job to its end and keeps the result.

mod dispatch;
mod http;
mod store;

use std::time::Duration;

pub use dispatch::{Dispatcher, GatewayClient};
pub use http::router;
pub use store::ReportStore;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("orchestrator database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error(
        "orchestrator schema cannot be brought up to date (is this release older than the database?): {0}"
    )]
    Migration(#[from] sqlx::migrate::MigrateError),
}

#[derive(Debug, Clone)]
pub struct DispatchConfig {
    pub gateway_url: String,
    pub api_key: String,
    /// How often pending and running reports are looked at.
    pub poll: Duration,
    pub request_timeout: Duration,
    /// Largest wait between two dispatch attempts while the gateway is down.
    pub max_backoff: Duration,
}

impl DispatchConfig {
    pub fn new(gateway_url: impl Into<String>, api_key: impl Into<String>) -> Self {
        DispatchConfig {
            gateway_url: gateway_url.into(),
            api_key: api_key.into(),
            poll: Duration::from_millis(100),
            request_timeout: Duration::from_secs(5),
            max_backoff: Duration::from_secs(10),
        }
    }
}
