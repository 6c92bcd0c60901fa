//! The data service: the legacy Spring Boot/JPA portfolio API over its own store,
//! seeded with deterministic demo customers on first start.

mod http;
mod portfolio;
mod seed;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

pub use http::router;
pub use portfolio::load_portfolio;
pub use seed::DEMO_CUSTOMERS;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("data service database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error(
        "data service schema cannot be brought up to date (is this release older than the database?): {0}"
    )]
    Migration(#[from] sqlx::migrate::MigrateError),
}

/// The data service's store.
#[derive(Clone)]
pub struct DataStore {
    pool: SqlitePool,
}

impl DataStore {
    /// Opens (creating and seeding when new) the store at `path`.
    pub async fn open(path: &Path) -> Result<Self, Error> {
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        seed::seed_if_empty(&pool).await?;
        Ok(DataStore { pool })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}
