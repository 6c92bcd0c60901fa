//! The change feed over real HTTP, on a real SQLite file and a real PostgreSQL
//! database, fed by another application's SQL on its own connections.

use std::collections::HashSet;
use std::str::FromStr;
use std::time::{Duration, Instant};

use database::testing::TestDatabase;
use database::{Location, SchemaPolicy};
use datasvc::{Access, DataStore, router};
use prost::Message;
use service::Secret;
use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;
use wire::{ChangeFeed, Portfolio};

const TOKEN: &str = "feed-test-token";

/// A data service on a store, and another application's connection to it.
struct Service {
    _place: Box<dyn std::any::Any + Send + Sync>,
    store: DataStore,
    base: String,
    client: reqwest::Client,
    other: Other,
}

/// Another application writing SQL on its own connection.
enum Other {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

impl Other {
    async fn execute(&self, sql: &str) {
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

async fn on_sqlite() -> Service {
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

async fn on_postgres() -> Service {
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
    DataStore::open(location, SchemaPolicy::Apply, 50, 4)
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
    async fn feed(&self, query: &str) -> ChangeFeed {
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

    async fn portfolio(&self, customer: &str) -> Portfolio {
        datasvc::load_portfolio(self.store.pool(), customer)
            .await
            .unwrap()
            .unwrap()
    }

    /// The changes after `after` once they have all come: on PostgreSQL a
    /// committed change gets its place a moment after its commit.
    async fn changes_after(&self, after: i64, expected: usize) -> ChangeFeed {
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

/// Each kind of write, by plain SQL, lands in the feed once per customer it
/// changes, with the customer's version after it; writes that change nothing
/// do not.
async fn every_write_that_changes_an_answer_is_logged(service: Service) {
    let start = service.feed("after=0").await;
    assert!(start.changes.is_empty(), "seeding is not a change");
    assert!(!start.feed_id.is_empty());
    let first = service.portfolio("C-000001").await;
    let second = service.portfolio("C-000002").await;
    let held = first.assets[0].asset_id;
    let unheld = (1..=24)
        .find(|id| !first.assets.iter().any(|asset| asset.asset_id == *id))
        .unwrap();
    let holders_of_held: HashSet<String> = {
        let mut holders = HashSet::new();
        for number in 1..=50 {
            let customer = format!("C-{number:06}");
            if service
                .portfolio(&customer)
                .await
                .assets
                .iter()
                .any(|asset| asset.asset_id == held)
            {
                holders.insert(customer);
            }
        }
        holders
    };

    let writes: Vec<(String, Vec<&str>)> = vec![
        (
            format!(
                "UPDATE holdings SET quantity = quantity + 1 WHERE customer_id = 'C-000001' AND asset_id = {held}"
            ),
            vec!["C-000001"],
        ),
        (
            format!(
                "INSERT INTO holdings (customer_id, asset_id, quantity) VALUES ('C-000001', {unheld}, 3)"
            ),
            vec!["C-000001"],
        ),
        (
            format!(
                "UPDATE holdings SET customer_id = 'C-000002' WHERE customer_id = 'C-000001' AND asset_id = {unheld}"
            ),
            vec!["C-000001", "C-000002"],
        ),
        (
            format!("DELETE FROM holdings WHERE customer_id = 'C-000002' AND asset_id = {unheld}"),
            vec!["C-000002"],
        ),
        (
            "UPDATE customers SET name = 'Renamed Person' WHERE id = 'C-000002'".to_string(),
            vec!["C-000002"],
        ),
        (
            "INSERT INTO customers (id, name, base_currency) VALUES ('C-NEW', 'New Person', 'EUR')"
                .to_string(),
            vec!["C-NEW"],
        ),
        // Changes nothing a portfolio answer shows: not logged.
        (
            "UPDATE holdings SET quantity = quantity WHERE customer_id = 'C-000001'".to_string(),
            vec![],
        ),
        (
            "UPDATE customers SET name = name WHERE id = 'C-000001'".to_string(),
            vec![],
        ),
    ];
    let mut after = start.latest;
    for (sql, changed) in writes {
        service.other.execute(&sql).await;
        if changed.is_empty() {
            continue;
        }
        let feed = service.changes_after(after, changed.len()).await;
        let customers: Vec<&str> = feed
            .changes
            .iter()
            .map(|change| change.customer_id.as_str())
            .collect();
        let mut sorted = customers.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, changed, "{sql}");
        for change in &feed.changes {
            assert!(change.position > after, "{sql}: positions grow");
            if change.customer_id != "C-NEW" {
                let now = service.portfolio(&change.customer_id).await;
                assert_eq!(change.version, now.version, "{sql}: the version after");
                assert!(now.change_position >= change.position);
            }
            let age_ms = now_ms() - change.changed_at_ms;
            assert!(
                (0..60_000).contains(&age_ms),
                "{sql}: written {age_ms} ms ago"
            );
        }
        after = feed.changes.last().unwrap().position;
    }
    assert!(
        service.portfolio("C-000001").await.version > first.version
            && service.portfolio("C-000002").await.version > second.version
    );

    // A new price is part of every holder's answer.
    service
        .other
        .execute(&format!(
            "UPDATE assets SET price = price * 1.01 WHERE id = {held}"
        ))
        .await;
    let feed = service.changes_after(after, holders_of_held.len()).await;
    let repriced: HashSet<String> = feed
        .changes
        .iter()
        .map(|change| change.customer_id.clone())
        .collect();
    assert_eq!(repriced, holders_of_held);
}

#[tokio::test]
async fn on_sqlite_every_write_that_changes_an_answer_is_logged() {
    every_write_that_changes_an_answer_is_logged(on_sqlite().await).await;
}

#[tokio::test]
async fn on_postgres_every_write_that_changes_an_answer_is_logged() {
    every_write_that_changes_an_answer_is_logged(on_postgres().await).await;
}

/// A portfolio read before a change says a position the change comes after; a
/// read after it, one at or past it.
async fn a_portfolio_says_where_in_the_feed_it_was_read(service: Service) {
    let before = service.portfolio("C-000007").await;
    service
        .other
        .execute("UPDATE holdings SET quantity = quantity * 2 WHERE customer_id = 'C-000007'")
        .await;
    let feed = service
        .changes_after(before.change_position, before.assets.len())
        .await;
    assert!(
        feed.changes
            .iter()
            .all(|change| change.position > before.change_position)
    );
    let after = service.portfolio("C-000007").await;
    assert!(after.change_position >= feed.changes.last().unwrap().position);
    assert_eq!(after.version, feed.changes.last().unwrap().version);
}

#[tokio::test]
async fn on_sqlite_a_portfolio_says_where_in_the_feed_it_was_read() {
    a_portfolio_says_where_in_the_feed_it_was_read(on_sqlite().await).await;
}

#[tokio::test]
async fn on_postgres_a_portfolio_says_where_in_the_feed_it_was_read() {
    a_portfolio_says_where_in_the_feed_it_was_read(on_postgres().await).await;
}

/// A reader waiting at the end is answered when a change commits, not at the
/// end of its wait.
async fn a_waiting_reader_is_answered_at_the_commit(service: Service) {
    let end = service.feed("after=0").await.latest;
    let waiting = {
        let client = service.client.clone();
        let url = format!("{}/api/changes?after={end}&wait=30", service.base);
        tokio::spawn(async move {
            let response = client
                .get(url)
                .header("accept", wire::PROTOBUF)
                .send()
                .await
                .unwrap();
            (
                Instant::now(),
                ChangeFeed::decode(response.bytes().await.unwrap()).unwrap(),
            )
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "nothing changed yet");
    service
        .other
        .execute("UPDATE customers SET base_currency = 'CHF' WHERE id = 'C-000003'")
        .await;
    let committed = Instant::now();
    let (answered, feed) = waiting.await.unwrap();
    assert_eq!(feed.changes.len(), 1);
    assert_eq!(feed.changes[0].customer_id, "C-000003");
    let latency = answered.duration_since(committed);
    assert!(
        latency < Duration::from_secs(2),
        "answered {latency:?} after the commit"
    );

    // Nothing to say: the wait ends with no changes and the same end.
    let started = Instant::now();
    let quiet = service.feed(&format!("after={}&wait=1", feed.latest)).await;
    assert!(quiet.changes.is_empty());
    assert_eq!(quiet.latest, feed.latest);
    assert!(started.elapsed() >= Duration::from_millis(900));
}

#[tokio::test]
async fn on_sqlite_a_waiting_reader_is_answered_at_the_commit() {
    a_waiting_reader_is_answered_at_the_commit(on_sqlite().await).await;
}

#[tokio::test]
async fn on_postgres_a_waiting_reader_is_answered_at_the_commit() {
    a_waiting_reader_is_answered_at_the_commit(on_postgres().await).await;
}

/// Writers committing at once, in transactions of several changes: a reader
/// following the feed in small pages sees every change exactly once, in
/// increasing positions, even though the writers' commits interleave.
async fn concurrent_writers_reach_a_follower_exactly_once(service: Service) {
    const WRITERS: usize = 6;
    const TRANSACTIONS: usize = 25;
    let start = service.feed("after=0").await.latest;
    let service = std::sync::Arc::new(service);
    let follower = {
        let service = service.clone();
        tokio::spawn(async move {
            let mut cursor = start;
            let mut seen = Vec::new();
            while seen.len() < WRITERS * TRANSACTIONS * 2 {
                let page = service
                    .feed(&format!("after={cursor}&wait=10&limit=7"))
                    .await;
                assert!(!page.changes.is_empty(), "the feed went quiet at {cursor}");
                for change in page.changes {
                    assert!(change.position > cursor);
                    cursor = change.position;
                    seen.push((change.customer_id, change.version));
                }
            }
            seen
        })
    };
    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        let service = service.clone();
        writers.push(tokio::spawn(async move {
            for round in 0..TRANSACTIONS {
                // Two customers per transaction, in an order that keeps writers
                // from waiting on each other's locks in a cycle.
                let a = 1 + (writer * TRANSACTIONS + round) % 50;
                let b = 1 + (a + 17) % 50;
                let (low, high) = (a.min(b), a.max(b));
                service
                    .other
                    .execute(&format!(
                        "BEGIN;
                         UPDATE customers SET name = name || '.' WHERE id = 'C-{low:06}';
                         UPDATE customers SET name = name || '.' WHERE id = 'C-{high:06}';
                         PAUSE;
                         COMMIT;"
                    ))
                    .await;
            }
        }));
    }
    for writer in writers {
        writer.await.unwrap();
    }
    let seen = tokio::time::timeout(Duration::from_secs(60), follower)
        .await
        .expect("the follower saw every change")
        .unwrap();
    let distinct: HashSet<&(String, i64)> = seen.iter().collect();
    assert_eq!(distinct.len(), seen.len(), "no change seen twice");
    // Every version of every customer came, from its first to its last.
    for number in 1..=50 {
        let customer = format!("C-{number:06}");
        let mut versions: Vec<i64> = seen
            .iter()
            .filter(|(id, _)| *id == customer)
            .map(|(_, version)| *version)
            .collect();
        versions.sort_unstable();
        let now = service.portfolio(&customer).await.version;
        let expected: Vec<i64> = (now + 1 - versions.len() as i64..=now).collect();
        assert_eq!(versions, expected, "{customer}");
    }
}

#[tokio::test]
async fn on_sqlite_concurrent_writers_reach_a_follower_exactly_once() {
    concurrent_writers_reach_a_follower_exactly_once(on_sqlite().await).await;
}

#[tokio::test]
async fn on_postgres_concurrent_writers_reach_a_follower_exactly_once() {
    concurrent_writers_reach_a_follower_exactly_once(on_postgres().await).await;
}

/// Pruning moves the oldest cursor: a reader behind it is told at once, and a
/// portfolio read on an empty log still says where the feed stands.
async fn pruned_changes_move_the_oldest_cursor(service: Service) {
    service
        .other
        .execute("UPDATE holdings SET quantity = quantity + 1 WHERE customer_id = 'C-000009'")
        .await;
    let holdings = service.portfolio("C-000009").await.assets.len();
    let written = service.changes_after(0, holdings).await;
    assert_eq!(
        datasvc::prune_changes(service.store.pool(), Duration::from_secs(3600))
            .await
            .unwrap(),
        0,
        "nothing is older than an hour"
    );
    tokio::time::sleep(Duration::from_millis(5)).await;
    let pruned = datasvc::prune_changes(service.store.pool(), Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(pruned as usize, holdings);
    let started = Instant::now();
    let behind = service.feed("after=0&wait=30").await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "answered at once"
    );
    assert!(behind.changes.is_empty());
    assert_eq!(behind.oldest_cursor, written.latest);
    assert_eq!(behind.latest, written.latest);
    assert_eq!(behind.feed_id, written.feed_id);
    assert_eq!(
        service.portfolio("C-000009").await.change_position,
        written.latest
    );
}

#[tokio::test]
async fn on_sqlite_pruned_changes_move_the_oldest_cursor() {
    pruned_changes_move_the_oldest_cursor(on_sqlite().await).await;
}

#[tokio::test]
async fn on_postgres_pruned_changes_move_the_oldest_cursor() {
    pruned_changes_move_the_oldest_cursor(on_postgres().await).await;
}

#[tokio::test]
async fn the_feed_refuses_bad_cursors_and_callers_without_the_token() {
    let service = on_sqlite().await;
    for query in ["after=-1", "after=abc", "wait=61", "limit=0", "limit=10001"] {
        let response = service
            .client
            .get(format!("{}/api/changes?{query}", service.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{query}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert!(
            body["detail"].as_str().unwrap().contains("after=POSITION"),
            "{query}: {body}"
        );
    }
    let anonymous = reqwest::get(format!("{}/api/changes", service.base))
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let json: serde_json::Value = service
        .client
        .get(format!("{}/api/changes", service.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for member in ["feed_id", "changes", "oldest_cursor", "latest"] {
        assert!(json.get(member).is_some(), "missing {member}: {json}");
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}
