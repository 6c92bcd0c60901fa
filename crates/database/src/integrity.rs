//! Checks a store before a role relies on it: a file that was emptied or
//! damaged, or a database this process cannot write, is refused at start with
//! what to do, instead of being taken for a new store or failing on every write.

use std::path::Path;

use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;

use crate::{Error, Store};

/// SQLite's result codes for a damaged file: SQLITE_CORRUPT and SQLITE_NOTADB.
const SQLITE_DAMAGE_CODES: [&str; 2] = ["11", "26"];
/// SQLITE_READONLY and its extended codes end in this primary code.
const SQLITE_READONLY: i64 = 8;
/// PostgreSQL's SQLSTATEs for corrupted data and indexes.
const POSTGRES_DAMAGE_STATES: [&str; 2] = ["XX001", "XX002"];
/// Problems `quick_check` reports at most.
const QUICK_CHECK_LIMIT: u32 = 5;

/// SQLite's result code for a full disk (SQLITE_FULL), the low byte of its
/// extended codes too.
const SQLITE_FULL: i64 = 13;
/// PostgreSQL's SQLSTATE for a full disk (disk_full).
const POSTGRES_DISK_FULL: &str = "53100";

/// Whether `error` says the store's disk is full: writes fail until an
/// operator frees space, and then succeed again.
pub fn is_full(error: &sqlx::Error) -> bool {
    let Some(database) = error.as_database_error() else {
        return false;
    };
    database.code().is_some_and(|code| {
        code == POSTGRES_DISK_FULL
            || code
                .parse::<i64>()
                .is_ok_and(|code| code & 0xff == SQLITE_FULL)
    })
}

/// Whether `error` says the store's data is damaged, rather than unreachable.
pub fn is_damage(error: &sqlx::Error) -> bool {
    let Some(database) = error.as_database_error() else {
        return false;
    };
    database.code().is_some_and(|code| {
        SQLITE_DAMAGE_CODES.contains(&code.as_ref())
            || POSTGRES_DAMAGE_STATES.contains(&code.as_ref())
    })
}

/// Refuses a store file that exists but is empty (with no write-ahead log that
/// could hold its pages): it was truncated or replaced, and opening it would
/// silently start a new, empty store.
pub(crate) fn check_sqlite_file(store: &Store, path: &Path) -> Result<(), Error> {
    let Ok(metadata) = std::fs::metadata(path) else {
        return Ok(());
    };
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    let wal_holds_pages = std::fs::metadata(&wal).is_ok_and(|wal| wal.len() > 0);
    if metadata.len() == 0 && !wal_holds_pages {
        return Err(Error::EmptyFile {
            store: store.name,
            path: path.display().to_string(),
        });
    }
    Ok(())
}

/// Runs SQLite's own consistency check, and proves that a write would succeed
/// (SQLite opens a file it may not write read-only, without a word).
pub(crate) async fn check_sqlite(
    pool: &SqlitePool,
    store: &Store,
    location: &str,
) -> Result<(), Error> {
    let findings: Vec<(String,)> =
        sqlx::query_as(&format!("PRAGMA quick_check({QUICK_CHECK_LIMIT})"))
            .fetch_all(pool)
            .await
            .map_err(|source| opening_failed(store, location, source))?;
    let findings: Vec<String> = findings.into_iter().map(|(finding,)| finding).collect();
    if findings != ["ok"] {
        return Err(Error::Damaged {
            store: store.name,
            location: location.to_string(),
            detail: findings.join("; "),
        });
    }
    // A write that changes nothing, rolled back: refused on a read-only file.
    let mut connection = pool
        .acquire()
        .await
        .map_err(|source| opening_failed(store, location, source))?;
    let (version,): (i64,) = sqlx::query_as("PRAGMA user_version")
        .fetch_one(&mut *connection)
        .await
        .map_err(|source| opening_failed(store, location, source))?;
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut *connection)
        .await
        .map_err(|source| opening_failed(store, location, source))?;
    let written = sqlx::query(&format!("PRAGMA user_version = {version}"))
        .execute(&mut *connection)
        .await;
    let rolled_back = sqlx::query("ROLLBACK").execute(&mut *connection).await;
    match written {
        Err(source) if is_read_only(&source) => Err(Error::ReadOnly {
            store: store.name,
            location: location.to_string(),
            why: "the file or its directory cannot be written by this process".to_string(),
        }),
        Err(source) => Err(opening_failed(store, location, source)),
        Ok(_) => rolled_back
            .map(|_| ())
            .map_err(|source| opening_failed(store, location, source)),
    }
}

/// Refuses a PostgreSQL server that takes no writes (a standby, or read-only
/// by default): every submission and claim would fail.
pub(crate) async fn check_postgres(
    pool: &PgPool,
    store: &Store,
    location: &str,
) -> Result<(), Error> {
    let (in_recovery, read_only): (bool, String) = sqlx::query_as(
        "SELECT pg_is_in_recovery(), current_setting('default_transaction_read_only')",
    )
    .fetch_one(pool)
    .await
    .map_err(|source| opening_failed(store, location, source))?;
    let why = if in_recovery {
        "the server is a standby in recovery; point the role at the primary"
    } else if read_only == "on" {
        "default_transaction_read_only is on for this database or user"
    } else {
        return Ok(());
    };
    Err(Error::ReadOnly {
        store: store.name,
        location: location.to_string(),
        why: why.to_string(),
    })
}

fn is_read_only(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .and_then(|database| database.code())
        .and_then(|code| code.parse::<i64>().ok())
        .is_some_and(|code| code & 0xff == SQLITE_READONLY)
}

/// The store named damaged, when `source` says it is.
pub(crate) fn damage(store: &Store, location: &str, source: &sqlx::Error) -> Option<Error> {
    is_damage(source).then(|| Error::Damaged {
        store: store.name,
        location: location.to_string(),
        detail: source.to_string(),
    })
}

/// An error while opening: damage named as such, anything else as it came.
fn opening_failed(store: &Store, location: &str, source: sqlx::Error) -> Error {
    damage(store, location, &source).unwrap_or_else(|| Error::Query {
        store: store.name,
        location: location.to_string(),
        source,
    })
}
