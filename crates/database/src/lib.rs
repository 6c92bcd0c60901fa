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
mod kind;
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
pub use integrity::{is_damage, is_full};
pub use kind::{Classify, ErrorKind};
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
    #[error(
        "the database URL {location} has the parameter {parameter:?}, which is not supported; remove it (supported: sslmode, sslrootcert, sslcert, sslkey, host, hostaddr, port, dbname, user, password, application_name, options)"
    )]
    UnknownParameter { parameter: String, location: String },
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
            refuse_unknown_parameters(url)?;
            PgConnectOptions::from_str(url).map_err(|_| Error::UnsupportedUrl(redact_url(url)))?;
            return Ok(Location::Postgres(url.to_string()));
        }
        Err(Error::UnsupportedUrl(redact_url(url)))
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Location::Postgres(_))
    }
}

/// The query parameters a PostgreSQL URL may carry. Any other is refused, as
/// libpq refuses it, rather than ignored with its value logged (the driver's
/// way, which would print a password given under a name it does not know).
const POSTGRES_PARAMETERS: &[&str] = &[
    "sslmode",
    "ssl-mode",
    "sslrootcert",
    "ssl-root-cert",
    "ssl-ca",
    "sslcert",
    "ssl-cert",
    "sslkey",
    "ssl-key",
    "statement-cache-capacity",
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "application_name",
    "options",
];

fn refuse_unknown_parameters(url: &str) -> Result<(), Error> {
    let Some((_, query)) = url.split_once('?') else {
        return Ok(());
    };
    let query = query.split('#').next().unwrap_or_default();
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let name = pair.split('=').next().unwrap_or_default();
        if !POSTGRES_PARAMETERS.contains(&name) {
            return Err(Error::UnknownParameter {
                parameter: name.chars().take(64).collect(),
                location: redact_url(url),
            });
        }
    }
    Ok(())
}

/// Shown in logs and errors: a PostgreSQL password never is.
impl fmt::Display for Location {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Sqlite(path) => write!(formatter, "sqlite://{}", path.display()),
            Location::Postgres(url) => formatter.write_str(&redact_url(url)),
        }
    }
}

impl fmt::Debug for Location {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, formatter)
    }
}

/// A URL as it may be shown in a log, an error or `projector config`: the
/// password of its authority and the value of every query parameter that
/// names a credential (`password`, `sslpassword`, `token`, `api_key`, ...)
/// replaced by `***`. The one redaction every role prints a URL through.
pub fn redact_url(url: &str) -> String {
    const HIDDEN: &str = "***";
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    // A password may hold a raw `/` or `#`: the credentials end at the last
    // `@` before the query.
    let before_query = rest.find('?').unwrap_or(rest.len());
    let (credentials, rest) = match rest[..before_query].rfind('@') {
        Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
        None => (None, rest),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (host, after_authority) = rest.split_at(authority_end);
    let authority = match credentials.map(|credentials| credentials.split_once(':')) {
        Some(Some((user, _))) => format!("{user}:{HIDDEN}@{host}"),
        Some(None) => format!("{}@{host}", credentials.unwrap_or_default()),
        None => host.to_string(),
    };
    let (before_fragment, fragment) = match after_authority.split_once('#') {
        Some((before, _)) => (before, Some(HIDDEN)),
        None => (after_authority, None),
    };
    let redacted_rest = match before_fragment.split_once('?') {
        Some((path, query)) => {
            let pairs: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((name, _)) if names_a_credential(name) => format!("{name}={HIDDEN}"),
                    _ => pair.to_string(),
                })
                .collect();
            format!("{path}?{}", pairs.join("&"))
        }
        None => before_fragment.to_string(),
    };
    let fragment = fragment
        .map(|hidden| format!("#{hidden}"))
        .unwrap_or_default();
    let scheme = if scheme.is_empty() {
        String::new()
    } else {
        format!("{scheme}://")
    };
    format!("{scheme}{authority}{redacted_rest}{fragment}")
}

/// Whether a query parameter's name says its value is a credential.
fn names_a_credential(name: &str) -> bool {
    const WORDS: [&str; 7] = [
        "pass",
        "pwd",
        "secret",
        "token",
        "key",
        "auth",
        "credential",
    ];
    let name = name.to_ascii_lowercase();
    WORDS.iter().any(|word| name.contains(word))
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
        .map_err(|_| Error::UnsupportedUrl(redact_url(url)))?
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
            location: redact_url(url),
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

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn every_credential_in_a_url_is_redacted_and_the_rest_kept() {
        let cases = [
            (
                "postgres://app:s3cret@db:5432/jobs",
                "postgres://app:***@db:5432/jobs",
            ),
            ("postgres://app@db/jobs", "postgres://app@db/jobs"),
            (
                "postgres://db/jobs?password=s3cret",
                "postgres://db/jobs?password=***",
            ),
            (
                "postgres://db/jobs?sslmode=require&sslpassword=s3cret&application_name=x",
                "postgres://db/jobs?sslmode=require&sslpassword=***&application_name=x",
            ),
            (
                "http://user:s3cret@gateway:8000",
                "http://user:***@gateway:8000",
            ),
            (
                "http://gateway:8000/api?token=s3cret",
                "http://gateway:8000/api?token=***",
            ),
            (
                "http://gateway:8000/api?API_KEY=s3cret",
                "http://gateway:8000/api?API_KEY=***",
            ),
            (
                "postgres://app:pa/ss#w@db/jobs",
                "postgres://app:***@db/jobs",
            ),
            ("postgres://app:p@ss@db/jobs", "postgres://app:***@db/jobs"),
            ("http://gateway:8000/#s3cret", "http://gateway:8000/#***"),
            ("sqlite://data/jobs.sqlite", "sqlite://data/jobs.sqlite"),
            ("not a url", "not a url"),
        ];
        for (url, shown) in cases {
            assert_eq!(redact_url(url), shown, "{url}");
            assert!(!redact_url(url).contains("s3cret"), "{url}");
        }
    }
}
