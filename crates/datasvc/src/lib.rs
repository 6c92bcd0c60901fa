//! The data service: the legacy Spring Boot/JPA portfolio API over its own store
//! (SQLite on one machine, PostgreSQL as the source of truth of a cluster),
//! seeded with deterministic demo customers on the first start.

mod access;
mod feed;
mod http;
mod portfolio;
mod seed;

use std::time::Duration;

use database::{Location, Pool, SchemaPolicy};

pub use access::Access;
pub use feed::prune as prune_changes;
pub use http::router;

/// The data service's API, as `/openapi.json` answers it.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Projector data service",
        description = "Customers' portfolios and the change feed that tells worker caches what changed."
    ),
    paths(http::portfolio, http::changes)
)]
pub struct ApiDoc;

/// How long the change log keeps a change: a worker node down for longer
/// starts its cache afresh.
pub const DEFAULT_CHANGE_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

#[derive(Debug, Clone)]
pub struct ServiceConfig {
    pub access: Access,
    pub change_retention: Duration,
}

/// Serves the data service on `listener`, and prunes its change log, until
/// `shutdown` stops it.
pub async fn run(
    config: ServiceConfig,
    store: DataStore,
    listener: service::server::HttpListener,
    shutdown: service::server::Shutdown,
) -> Result<(), Error> {
    let pruner = tokio::spawn(prune_while_serving(
        store.clone(),
        config.change_retention,
        shutdown.clone(),
    ));
    let checked = store.clone();
    let readiness: service::server::ReadinessCheck = std::sync::Arc::new(move || {
        let checked = checked.clone();
        Box::pin(async move {
            checked
                .pool()
                .ping()
                .await
                .map_err(|error| format!("the data service store does not answer ({error})"))
        })
    });
    let routes = http::routes(store, config.access, shutdown.clone());
    let app = service::server::App::new(routes, readiness)
        .with_openapi(<ApiDoc as utoipa::OpenApi>::openapi());
    let served = service::server::serve(listener, app, shutdown).await;
    pruner.abort();
    Ok(served?)
}

/// Prunes the change log every quarter of the retention, at least once a
/// minute and at most once a second.
async fn prune_while_serving(
    store: DataStore,
    retention: Duration,
    shutdown: service::server::Shutdown,
) {
    let every = (retention / 4).clamp(Duration::from_secs(1), Duration::from_secs(60));
    loop {
        tokio::select! {
            () = shutdown.stopping() => return,
            () = tokio::time::sleep(every) => {}
        }
        match feed::prune(store.pool(), retention).await {
            Ok(0) => {}
            Ok(pruned) => tracing::info!(pruned, "pruned changes older than the retention"),
            Err(error) => tracing::warn!(%error, "cannot prune the change log; trying again later"),
        }
    }
}
pub use portfolio::load_portfolio;
pub use seed::DEMO_CUSTOMERS;

database::store!("data service store", schema "datasvc");

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Database(#[from] database::Error),
    #[error("data service store failed: {0}")]
    Query(#[from] sqlx::Error),
    #[error("the data service's listener failed: {0}")]
    Listener(#[from] std::io::Error),
}

impl database::Classify for Error {
    fn kind(&self) -> database::ErrorKind {
        match self {
            Error::Query(source) => source.kind(),
            Error::Database(source) => source.kind(),
            Error::Listener(_) => database::ErrorKind::Unavailable,
        }
    }
}

/// The data service's store, and the end of its change feed as last seen.
#[derive(Clone)]
pub struct DataStore {
    pool: Pool,
    feed: feed::Feed,
}

impl DataStore {
    /// Opens the store; an empty one is seeded with `customers` demo customers.
    pub async fn open(
        location: &Location,
        policy: SchemaPolicy,
        customers: u32,
        max_connections: u32,
    ) -> Result<Self, Error> {
        let pool = Pool::open(location, &STORE, policy, max_connections).await?;
        seed::seed_if_empty(&pool, customers).await?;
        let feed = feed::Feed::start(pool.clone()).await;
        Ok(DataStore { pool, feed })
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    fn feed(&self) -> &feed::Feed {
        &self.feed
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}
