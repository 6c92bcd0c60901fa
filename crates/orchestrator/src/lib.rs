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
pub use report::ReportStatus;
pub use store::ReportStore;

/// How the orchestrator serves: whose reports, and where it dispatches them.
#[derive(Clone)]
pub struct OrchestratorConfig {
    pub dispatch: DispatchConfig,
    pub tenants: Tenants,
}

/// Serves the orchestrator on `listener` and dispatches reports to the gateway,
/// until `shutdown`: dispatch ends when draining starts, HTTP when it stops.
/// Reports of earlier releases (all asked for under the first key) go to that
/// key's tenant first.
pub async fn run(
    config: OrchestratorConfig,
    store: ReportStore,
    listener: service::server::HttpListener,
    shutdown: service::server::Shutdown,
) -> Result<(), Error> {
    let OrchestratorConfig { dispatch, tenants } = config;
    adopt_unowned_reports(&store, &tenants).await?;
    let gateway = GatewayClient::new(dispatch.clone()).map_err(Error::GatewayClient)?;
    let max_paths = dispatch.max_paths;
    let routes = router(store.clone(), tenants.clone(), gateway.clone(), &dispatch);
    let dispatcher =
        Dispatcher::new(store.clone(), tenants, dispatch).map_err(Error::GatewayClient)?;
    let dispatching = tokio::spawn(dispatcher.run(shutdown.draining_token()));
    let app = App::new(routes, readiness(store, gateway)).with_openapi(
        service::openapi::with_max_paths(<ApiDoc as utoipa::OpenApi>::openapi(), max_paths),
    );
    let served = service::server::serve(listener, app, shutdown).await;
    let _ = dispatching.await;
    Ok(served?)
}

async fn adopt_unowned_reports(store: &ReportStore, tenants: &Tenants) -> Result<(), Error> {
    let Some(first) = tenants.first_owner() else {
        return Ok(());
    };
    let adopted = store
        .adopt_unowned(first)
        .await
        .map_err(|source| Error::Adopt(Box::new(source)))?;
    if adopted > 0 {
        tracing::info!(
            adopted,
            "reports of earlier releases given to the first key's tenant"
        );
    }
    Ok(())
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

database::store!("report store", schema "reports");

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("report store failed: {0}")]
    Query(#[from] sqlx::Error),
    #[error(transparent)]
    Database(#[from] database::Error),
    #[error("cannot give earlier reports to the first key's tenant: {0}")]
    Adopt(Box<Error>),
    #[error("cannot build the gateway client: {0}")]
    GatewayClient(reqwest::Error),
    #[error("the orchestrator's listener failed: {0}")]
    Listener(#[from] std::io::Error),
}

impl database::Classify for Error {
    fn kind(&self) -> database::ErrorKind {
        match self {
            Error::Query(source) => source.kind(),
            Error::Database(source) => source.kind(),
            Error::Adopt(source) => source.kind(),
            Error::GatewayClient(_) => database::ErrorKind::Misconfigured,
            Error::Listener(_) => database::ErrorKind::Unavailable,
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
