//! The data service: the legacy Spring Boot/JPA portfolio API over its own store
//! (SQLite on one machine, PostgreSQL as the source of truth of a cluster),
//! seeded with deterministic demo customers on the first start.

mod access;
mod http;
mod portfolio;
mod seed;

use database::{Location, Pool, SchemaPolicy};

pub use access::Access;
pub use http::router;

/// Serves the data service on `listener` until `shutdown` stops it.
pub async fn run(
    store: DataStore,
    access: Access,
    listener: impl Into<api::server::HttpListener>,
    shutdown: api::server::Shutdown,
) -> std::io::Result<()> {
    let checked = store.clone();
    let readiness: api::server::ReadinessCheck = std::sync::Arc::new(move || {
        let checked = checked.clone();
        Box::pin(async move {
            checked
                .pool()
                .ping()
                .await
                .map_err(|error| format!("the data service store does not answer ({error})"))
        })
    });
    let app = api::server::App::new(router(store, access), readiness);
    api::server::serve(listener, app, shutdown).await
}
pub use portfolio::load_portfolio;
pub use seed::DEMO_CUSTOMERS;

/// The data service store's identity and migrations.
pub static STORE: database::Store = database::Store {
    name: "data service store",
    postgres_schema: "datasvc",
    postgres_settings: &[],
    sqlite: &SQLITE_MIGRATIONS,
    postgres: &POSTGRES_MIGRATIONS,
};
static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Database(#[from] database::Error),
    #[error("data service store failed: {0}")]
    Query(#[from] sqlx::Error),
}

/// The data service's store.
#[derive(Clone)]
pub struct DataStore {
    pool: Pool,
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
        Ok(DataStore { pool })
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}
