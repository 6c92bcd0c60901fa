//! The orchestrator (the Rails controller and ActiveJob of the original): takes
//! report requests, dispatches them to the gateway through a durable outbox with
//! a stable idempotency key, follows each job to its end and keeps the result.

mod dispatch;
mod follow;
mod gateway_client;
mod http;
mod pages;
mod report;
mod state;
mod store;

/// The orchestrator's API, as `/openapi.json` answers it; its pages for
/// people are not part of it.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Projector orchestrator",
        description = "Takes report requests, dispatches them to the gateway and keeps their results."
    ),
    paths(http::list, http::create, http::show)
)]
pub struct ApiDoc;

use std::time::Duration;

use std::sync::Arc;

use service::Tenants;
use service::server::{App, ReadinessCheck};

pub use dispatch::Dispatcher;
pub use gateway_client::GatewayClient;
pub use http::router;
pub use store::ReportStore;

/// Serves the orchestrator on `listener` and dispatches reports to the gateway,
/// until `shutdown`: dispatch ends when draining starts, HTTP when it stops.
pub async fn run(
    config: DispatchConfig,
    tenants: Tenants,
    store: ReportStore,
    listener: impl Into<service::server::HttpListener>,
    shutdown: service::server::Shutdown,
) -> std::io::Result<()> {
    let unbuilt = |error: reqwest::Error| {
        std::io::Error::other(format!("cannot build the gateway client: {error}"))
    };
    let gateway = GatewayClient::new(config.clone()).map_err(unbuilt)?;
    let max_paths = config.max_paths;
    let routes = router(store.clone(), tenants.clone(), gateway.clone(), &config);
    let dispatcher = Dispatcher::new(store.clone(), tenants, config).map_err(unbuilt)?;
    let dispatching = tokio::spawn(dispatcher.run(shutdown.draining_token()));
    let app = App::new(routes, readiness(store, gateway)).with_openapi(
        service::openapi::with_max_paths(<ApiDoc as utoipa::OpenApi>::openapi(), max_paths),
    );
    let served = service::server::serve(listener, app, shutdown).await;
    let _ = dispatching.await;
    served
}

/// Ready while the report store and the gateway answer.
fn readiness(store: ReportStore, gateway: GatewayClient) -> ReadinessCheck {
    Arc::new(move || {
        let (store, gateway) = (store.clone(), gateway.clone());
        Box::pin(async move {
            store
                .ping()
                .await
                .map_err(|error| format!("the report store does not answer ({error})"))?;
            gateway.alive().await
        })
    })
}

/// The report store's identity and migrations.
pub static STORE: database::Store = database::Store {
    name: "report store",
    postgres_schema: "reports",
    postgres_settings: &[],
    sqlite: &SQLITE_MIGRATIONS,
    postgres: &POSTGRES_MIGRATIONS,
};
static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("report store failed: {0}")]
    Query(#[from] sqlx::Error),
    #[error(transparent)]
    Database(#[from] database::Error),
}

impl database::Classify for Error {
    fn kind(&self) -> database::ErrorKind {
        match self {
            Error::Query(source) => source.kind(),
            Error::Database(source) => source.kind(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct DispatchConfig {
    pub gateway_url: String,
    /// How often pending and running reports are looked at.
    pub poll: Duration,
    pub request_timeout: Duration,
    /// Largest wait between two dispatch attempts while the gateway is down.
    pub max_backoff: Duration,
    /// Finished reports are deleted this long after they ended.
    pub retention: Duration,
    /// Paths a report may ask for; more is refused with 422.
    pub max_paths: u32,
    /// Session cookies are sent over HTTPS only (`Secure`): on when people
    /// reach the pages through TLS.
    pub secure_cookies: bool,
    /// The origin people's browsers reach the pages at (`https://host`),
    /// when a proxy in front gives the orchestrator another host: forms
    /// posted from it are this site's.
    pub public_origin: Option<String>,
}

/// How long finished reports are kept by default: thirty days.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

impl DispatchConfig {
    pub fn new(gateway_url: impl Into<String>) -> Self {
        DispatchConfig {
            gateway_url: gateway_url.into(),
            poll: Duration::from_millis(100),
            request_timeout: Duration::from_secs(5),
            max_backoff: Duration::from_secs(10),
            retention: DEFAULT_RETENTION,
            max_paths: wire::DEFAULT_MAX_PATHS,
            secure_cookies: false,
            public_origin: None,
        }
    }
}
