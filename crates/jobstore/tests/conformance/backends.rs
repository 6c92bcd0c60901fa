//! The backends the suite runs against: a real SQLite file in a temporary
//! directory, and a real PostgreSQL database of the test's own.

use database::SchemaPolicy;
use database::testing::TestDatabase;
use jobstore::{AnyJobStore, Clock, Error, StoreOptions};

/// A place a store lives, that can be opened again (durability) or by a second
/// process-like handle (racing nodes).
pub trait Backend: Sized {
    async fn create() -> Self;
    fn location(&self) -> database::Location;

    async fn open_with(&self, clock: &Clock, policy: SchemaPolicy) -> Result<AnyJobStore, Error> {
        let options = StoreOptions {
            policy,
            clock: clock.clone(),
            max_connections: 4,
        };
        AnyJobStore::open(&self.location(), options).await
    }

    async fn open(&self, clock: &Clock) -> AnyJobStore {
        self.open_with(clock, SchemaPolicy::Apply).await.unwrap()
    }

    /// Records a migration this release does not know, as a newer release would.
    async fn add_future_migration(&self);

    /// The store a gateway next to `worker_side` submits through: on SQLite wake-ups
    /// stay within one process, on PostgreSQL they cross processes.
    async fn peer(&self, worker_side: &AnyJobStore, clock: &Clock) -> AnyJobStore;
}

pub struct Sqlite(tempfile::TempDir);

impl Backend for Sqlite {
    async fn create() -> Self {
        Sqlite(tempfile::tempdir().unwrap())
    }

    fn location(&self) -> database::Location {
        database::Location::Sqlite(self.0.path().join("jobs.sqlite"))
    }

    async fn add_future_migration(&self) {
        let database::Location::Sqlite(path) = self.location() else {
            unreachable!()
        };
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
             VALUES (9999, 'from the future', 1, x'00', 0)",
        )
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;
    }

    async fn peer(&self, worker_side: &AnyJobStore, _clock: &Clock) -> AnyJobStore {
        worker_side.clone()
    }
}

pub struct Postgres(TestDatabase);

impl Backend for Postgres {
    async fn create() -> Self {
        Postgres(TestDatabase::create().await)
    }

    fn location(&self) -> database::Location {
        database::Location::Postgres(self.0.url().to_string())
    }

    async fn add_future_migration(&self) {
        let pool = sqlx::PgPool::connect(self.0.url()).await.unwrap();
        sqlx::query(
            "INSERT INTO jobstore._sqlx_migrations (version, description, success, checksum, execution_time)
             VALUES (9999, 'from the future', true, '\\x00', 0)",
        )
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;
    }

    async fn peer(&self, _worker_side: &AnyJobStore, clock: &Clock) -> AnyJobStore {
        self.open(clock).await
    }
}
