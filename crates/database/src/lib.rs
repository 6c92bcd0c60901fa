//! Where a store lives and how its schema is kept: a `sqlite://FILE` or
//! `postgres://…` URL, connection options that every store shares, and the
//! schema check that lets only `projector migrate` (or the embedded `up`) change
//! a schema, refuses a schema newer than this release, and tells the operator
//! what to run when it is behind.
//!
//! On PostgreSQL each store keeps its tables (and its migration history) in a
//! schema of its own, so that the job store, the report store and the data
//! service can share one database without their migrations colliding.

mod backoff;
mod integrity;
pub mod notifications;
mod schema;
#[cfg(feature = "testing")]
pub mod testing;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};

pub use backoff::FailureBackoff;
pub use integrity::is_damage;
pub use schema::{SchemaPolicy, Store};
use schema::{prepare_postgres, prepare_sqlite};

/// How long a caller waits for a PostgreSQL connection before the store answers
/// "unavailable": a database that is down must never hang a request.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);
/// How long SQLite waits on another process's write lock.
pub const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "unsupported database URL {0:?}: use sqlite://PATH (a file on this machine) or postgres://USER@HOST:PORT/DATABASE"
    )]
    UnsupportedUrl(String),
    #[error("cannot reach the {store} at {location}: {source}")]
    Connect {
        store: &'static str,
        location: String,
        source: sqlx::Error,
    },
    #[error(
        "the {store} at {location} is behind this release ({pending} migration(s) to apply); run `projector migrate --database-url <URL>` first"
    )]
    SchemaBehind {
        store: &'static str,
        location: String,
        pending: usize,
    },
    #[error(
        "the {store} at {location} has migration {version} ({description:?}), which this release does not know: it was migrated by a newer release; run that release or a newer one"
    )]
    SchemaAhead {
        store: &'static str,
        location: String,
        version: i64,
        description: String,
    },
    #[error(
        "{location} holds another store's schema (migration {version} is {found:?}, the {store} expects {expected:?}); give each store its own SQLite file"
    )]
    ForeignSchema {
        store: &'static str,
        location: String,
        version: i64,
        found: String,
        expected: String,
    },
    #[error("cannot bring the {store} at {location} up to date: {source}")]
    Migrate {
        store: &'static str,
        location: String,
        source: sqlx::migrate::MigrateError,
    },
    #[error(
        "the {store} file {path} exists but is empty: what it held is gone (truncated or replaced). Restore it from a backup; delete it only to start an empty store on purpose"
    )]
    EmptyFile { store: &'static str, path: String },
    #[error(
        "the {store} at {location} is damaged ({detail}); stop every process that uses it and restore it from a backup (deleting it starts an empty store: its data is lost)"
    )]
    Damaged {
        store: &'static str,
        location: String,
        detail: String,
    },
    #[error("the {store} at {location} cannot be written: {why}")]
    ReadOnly {
        store: &'static str,
        location: String,
        why: String,
    },
    #[error("the {store} at {location} failed: {source}")]
    Query {
        store: &'static str,
        location: String,
        source: sqlx::Error,
    },
}

/// A store's location, parsed from its URL.
#[derive(Clone, PartialEq, Eq)]
pub enum Location {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Location {
    pub fn parse(url: &str) -> Result<Location, Error> {
        if let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            if path.is_empty() {
                return Err(Error::UnsupportedUrl(url.to_string()));
            }
            return Ok(Location::Sqlite(PathBuf::from(path)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            PgConnectOptions::from_str(url).map_err(|_| Error::UnsupportedUrl(redact(url)))?;
            return Ok(Location::Postgres(url.to_string()));
        }
        Err(Error::UnsupportedUrl(redact(url)))
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Location::Postgres(_))
    }
}

/// Shown in logs and errors: a PostgreSQL password never is.
impl fmt::Display for Location {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Sqlite(path) => write!(formatter, "sqlite://{}", path.display()),
            Location::Postgres(url) => formatter.write_str(&redact(url)),
        }
    }
}

impl fmt::Debug for Location {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, formatter)
    }
}

/// The URL with any password replaced.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.split_once('@') {
        Some((credentials, host)) if credentials.contains(':') => {
            let user = credentials.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}")
        }
        _ => url.to_string(),
    }
}

/// The options every SQLite store opens with: created when missing, WAL, every
/// commit durable, foreign keys on, and a wait on other processes' locks.
fn sqlite_options(path: &std::path::Path) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(SQLITE_BUSY_TIMEOUT)
}

/// A PostgreSQL pool whose connections see `store`'s schema first. Statements
/// are prepared once per connection and planned once: every statement of ours is
/// a short OLTP statement whose best plan does not depend on its values, and
/// re-planning (PostgreSQL's default for a statement's first executions, with
/// SQL functions parsed again each time) cost more than running them.
async fn postgres_pool(url: &str, store: &Store, max_connections: u32) -> Result<PgPool, Error> {
    let options = PgConnectOptions::from_str(url)
        .map_err(|_| Error::UnsupportedUrl(redact(url)))?
        .application_name(&format!("projector {}", store.name))
        .options([
            ("search_path", store.postgres_schema),
            ("plan_cache_mode", "force_generic_plan"),
        ])
        .options(store.postgres_settings.iter().copied());
    PgPoolOptions::new()
        .max_connections(max_connections)
        .min_connections(0)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        // A ping before every statement doubles the round trips; a dead
        // connection shows in the statement's own error, which callers retry.
        .test_before_acquire(false)
        .connect_with(options)
        .await
        .map_err(|source| Error::Connect {
            store: store.name,
            location: redact(url),
            source,
        })
}

/// A store's connections on either backend, for stores whose SQL is the same
/// on both (`$1` placeholders, portable types): run it with [`on_pool!`].
#[derive(Clone)]
pub enum Pool {
    Sqlite(sqlx::SqlitePool),
    Postgres(PgPool),
}

impl Pool {
    /// Opens `location` for `store` and checks (or, with [`SchemaPolicy::Apply`],
    /// migrates) its schema.
    pub async fn open(
        location: &Location,
        store: &Store,
        policy: SchemaPolicy,
        max_connections: u32,
    ) -> Result<Pool, Error> {
        let shown = location.to_string();
        match location {
            Location::Sqlite(path) => {
                integrity::check_sqlite_file(store, path)?;
                let pool = sqlx::sqlite::SqlitePoolOptions::new()
                    .max_connections(max_connections)
                    .connect_with(sqlite_options(path))
                    .await
                    .map_err(|source| {
                        integrity::damage(store, &shown, &source).unwrap_or_else(|| {
                            Error::Connect {
                                store: store.name,
                                location: shown.clone(),
                                source,
                            }
                        })
                    })?;
                integrity::check_sqlite(&pool, store, &shown).await?;
                prepare_sqlite(&pool, store, &shown, policy).await?;
                Ok(Pool::Sqlite(pool))
            }
            Location::Postgres(url) => {
                let pool = postgres_pool(url, store, max_connections).await?;
                integrity::check_postgres(&pool, store, &shown).await?;
                prepare_postgres(&pool, store, &shown, policy).await?;
                Ok(Pool::Postgres(pool))
            }
        }
    }

    pub async fn close(&self) {
        on_pool!(self, pool => pool.close().await)
    }

    /// Whether the database answers a query now.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        on_pool!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()))
    }
}

/// Runs the same expression on whichever backend `pool` is: `pool` is bound to
/// the backend's own pool inside it.
#[macro_export]
macro_rules! on_pool {
    ($pool:expr, $inner:ident => $body:expr) => {
        match $pool {
            $crate::Pool::Sqlite($inner) => $body,
            $crate::Pool::Postgres($inner) => $body,
        }
    };
}
