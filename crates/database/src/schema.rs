//! The schema check: compare the migrations a database has applied with the
//! ones this release carries, then migrate, refuse, or say what to run.

use sqlx::migrate::Migrator;
use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;

use crate::Error;

/// A store's identity and its migrations for each backend.
pub struct Store {
    /// For people: "job store", "report store", "data service store".
    pub name: &'static str,
    /// The PostgreSQL schema that holds the store's tables.
    pub postgres_schema: &'static str,
    /// Settings for the store's PostgreSQL sessions, beyond the shared ones.
    pub postgres_settings: &'static [(&'static str, &'static str)],
    pub sqlite: &'static Migrator,
    pub postgres: &'static Migrator,
}

/// Declares the calling crate's `pub static STORE`: its name for people, its
/// PostgreSQL schema, optionally the settings its PostgreSQL sessions need,
/// and the migrations in the crate's `migrations/sqlite` and
/// `migrations/postgres`.
#[macro_export]
macro_rules! store {
    ($name:literal, schema $schema:literal $(, settings $settings:expr)? $(,)?) => {
        /// The store's identity and migrations, for `projector migrate` and the schema check.
        pub static STORE: $crate::Store = $crate::Store {
            name: $name,
            postgres_schema: $schema,
            postgres_settings: $crate::store!(@settings $($settings)?),
            sqlite: {
                static MIGRATIONS: ::sqlx::migrate::Migrator =
                    ::sqlx::migrate!("./migrations/sqlite");
                &MIGRATIONS
            },
            postgres: {
                static MIGRATIONS: ::sqlx::migrate::Migrator =
                    ::sqlx::migrate!("./migrations/postgres");
                &MIGRATIONS
            },
        };
    };
    (@settings) => { &[] };
    (@settings $settings:expr) => { $settings };
}

/// What a role may do to a schema that is behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaPolicy {
    /// `projector migrate`, and `up` on its own embedded stores.
    Apply,
    /// A role in a cluster: only `projector migrate` changes a shared schema.
    Require,
}

/// What the database has applied: (version, description).
type Applied = Vec<(i64, String)>;

/// Brings an SQLite store to this release's schema, or checks that it is there.
pub async fn prepare_sqlite(
    pool: &SqlitePool,
    store: &Store,
    location: &str,
    policy: SchemaPolicy,
) -> Result<(), Error> {
    let failed = |source| query_failed(store, location, source);
    let (tables,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
    )
    .fetch_one(pool)
    .await
    .map_err(failed)?;
    let applied: Applied = if tables == 0 {
        Vec::new()
    } else {
        sqlx::query_as(APPLIED)
            .fetch_all(pool)
            .await
            .map_err(failed)?
    };
    if !must_migrate(store, store.sqlite, location, &applied, policy)? {
        return Ok(());
    }
    store
        .sqlite
        .run(pool)
        .await
        .map_err(|source| migrate_failed(store, location, source))
}

/// Brings a PostgreSQL store (its own schema) to this release, or checks it.
pub async fn prepare_postgres(
    pool: &PgPool,
    store: &Store,
    location: &str,
    policy: SchemaPolicy,
) -> Result<(), Error> {
    let failed = |source| query_failed(store, location, source);
    let (exists,): (bool,) = sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = $1 AND tablename = '_sqlx_migrations')",
    )
    .bind(store.postgres_schema)
    .fetch_one(pool)
    .await
    .map_err(failed)?;
    let applied: Applied = if exists {
        sqlx::query_as(APPLIED)
            .fetch_all(pool)
            .await
            .map_err(failed)?
    } else {
        Vec::new()
    };
    if !must_migrate(store, store.postgres, location, &applied, policy)? {
        return Ok(());
    }
    // The schema name is a constant of this release, never input.
    sqlx::query(&format!(
        "CREATE SCHEMA IF NOT EXISTS {}",
        store.postgres_schema
    ))
    .execute(pool)
    .await
    .map_err(failed)?;
    store
        .postgres
        .run(pool)
        .await
        .map_err(|source| migrate_failed(store, location, source))
}

const APPLIED: &str =
    "SELECT version, description FROM _sqlx_migrations WHERE success ORDER BY version";

fn query_failed(store: &Store, location: &str, source: sqlx::Error) -> Error {
    Error::Query {
        store: store.name,
        location: location.to_string(),
        source,
    }
}

fn migrate_failed(store: &Store, location: &str, source: sqlx::migrate::MigrateError) -> Error {
    Error::Migrate {
        store: store.name,
        location: location.to_string(),
        source,
    }
}

/// Whether migrations are to run: false when the schema is current; an error
/// when it is behind and may not be changed, ahead, or another store's.
fn must_migrate(
    store: &Store,
    migrator: &Migrator,
    location: &str,
    applied: &Applied,
    policy: SchemaPolicy,
) -> Result<bool, Error> {
    let pending = compare(store, migrator, location, applied)?;
    match (pending, policy) {
        (0, _) => Ok(false),
        (_, SchemaPolicy::Apply) => Ok(true),
        (pending, SchemaPolicy::Require) => Err(Error::SchemaBehind {
            store: store.name,
            location: location.to_string(),
            pending,
        }),
    }
}

/// The number of this release's migrations not yet applied; an error when the
/// database has one this release does not know or another store's history.
fn compare(
    store: &Store,
    migrator: &Migrator,
    location: &str,
    applied: &Applied,
) -> Result<usize, Error> {
    for (version, description) in applied {
        match migrator
            .iter()
            .find(|migration| migration.version == *version)
        {
            None => {
                return Err(Error::SchemaAhead {
                    store: store.name,
                    location: location.to_string(),
                    version: *version,
                    description: description.clone(),
                });
            }
            Some(known) if known.description != *description => {
                return Err(Error::ForeignSchema {
                    store: store.name,
                    location: location.to_string(),
                    version: *version,
                    found: description.clone(),
                    expected: known.description.to_string(),
                });
            }
            Some(_) => {}
        }
    }
    Ok(migrator.iter().count() - applied.len())
}
