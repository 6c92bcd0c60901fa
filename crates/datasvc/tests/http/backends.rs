//! The two places the feed is served from: a real SQLite file and a real
//! PostgreSQL database of the test's own, each with a data service on
//! loopback in front and another application's connection beside it.

use std::str::FromStr;
use std::time::Duration;

use database::testing::TestDatabase;
use database::{Location, SchemaPolicy};
use datasvc::{Access, DataStore, router};
use prost::Message;
use service::Secret;
use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;
use wire::{ChangeFeed, Portfolio};

pub(crate) const TOKEN: &str = "feed-test-token";
/// Demo customers seeded into each store.
pub(crate) const SEEDED: i64 = 50;

/// A data service on a store, and another application's connection to it.
pub(crate) struct Service {
    _place: Box<dyn std::any::Any + Send + Sync>,
    pub(crate) store: DataStore,
    pub(crate) base: String,
    pub(crate) client: reqwest::Client,
    pub(crate) other: Other,
}

/// Another application writing SQL on its own connection.
pub(crate) enum Other {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

impl Other {
    pub(crate) async fn execute(&self, sql: &str) {
        let outcome = match self {
            // A deferred transaction would not wait for another writer's lock.
            Other::Sqlite(pool) => {
                let sql = sql
                    .replace("BEGIN;", "BEGIN IMMEDIATE;")
                    .replace("PAUSE;", "");
                sqlx::raw_sql(&sql).execute(pool).await.map(drop)
            }
            // A pause between a change and its commit lets later transactions
            // commit first: the order the feed must not be fooled by.
            Other::Postgres(pool) => {
                let sql = sql.replace("PAUSE;", "SELECT pg_sleep(0.003);");
                sqlx::raw_sql(&sql).execute(pool).await.map(drop)
            }
        };
        outcome.unwrap_or_else(|error| panic!("{sql}: {error}"));
    }
}

pub(crate) async fn on_sqlite() -> Service {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("datasvc.sqlite");
    let store = open(&Location::Sqlite(path.clone())).await;
    let other = sqlx::SqlitePool::connect_with(
        SqliteConnectOptions::new()
            .filename(&path)
            .busy_timeout(Duration::from_secs(10)),
    )
    .await
    .unwrap();
    start(Box::new(directory), store, Other::Sqlite(other)).await
}

pub(crate) async fn on_postgres() -> Service {
    let database = TestDatabase::create().await;
    let store = open(&Location::Postgres(database.url().to_string())).await;
    let options = PgConnectOptions::from_str(database.url())
        .unwrap()
        .options([("search_path", "datasvc")]);
    let other = sqlx::postgres::PgPoolOptions::new()
        .max_connections(8)
        .connect_with(options)
        .await
        .unwrap();
    start(Box::new(database), store, Other::Postgres(other)).await
}

async fn open(location: &Location) -> DataStore {
    DataStore::open(location, SchemaPolicy::Apply, SEEDED as u32, 4)
        .await
        .unwrap()
}

async fn start(
    place: Box<dyn std::any::Any + Send + Sync>,
    store: DataStore,
    other: Other,
) -> Service {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let served = router(store.clone(), Access::token(Secret::new(TOKEN)));
    tokio::spawn(async move {
        service::server::serve(listener, served, Default::default())
            .await
            .unwrap()
    });
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("authorization", format!("Bearer {TOKEN}").parse().unwrap());
    let client = reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap();
    Service {
        _place: place,
        store,
        base,
        client,
        other,
    }
}

impl Service {
    pub(crate) async fn feed(&self, query: &str) -> ChangeFeed {
        let response = self
            .client
            .get(format!("{}/api/changes?{query}", self.base))
            .header("accept", wire::PROTOBUF)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{query}");
        ChangeFeed::decode(response.bytes().await.unwrap()).unwrap()
    }

    pub(crate) async fn portfolio(&self, customer: &str) -> Portfolio {
        datasvc::load_portfolio(self.store.pool(), customer)
            .await
            .unwrap()
            .unwrap()
    }

    /// The changes after `after` once they have all come: on PostgreSQL a
    /// committed change gets its place a moment after its commit.
    pub(crate) async fn changes_after(&self, after: i64, expected: usize) -> ChangeFeed {
        let mut feed = self.feed(&format!("after={after}&wait=5")).await;
        while feed.changes.len() < expected {
            let more = self
                .feed(&format!("after={}&wait=5", feed.latest.max(after)))
                .await;
            assert!(!more.changes.is_empty(), "only {feed:?} arrived");
            feed.latest = more.latest;
            feed.changes.extend(more.changes);
        }
        feed
    }
}
