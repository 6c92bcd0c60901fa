//! The portfolio endpoint's promise: one SQL statement per request, whatever the
//! number of holdings (the original JPA mapping made one per holding).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use database::testing::TestDatabase;
use database::{Location, SchemaPolicy, on_pool};
use datasvc::{DataStore, load_portfolio};
use tracing_subscriber::layer::SubscriberExt;

async fn open(location: &Location) -> DataStore {
    DataStore::open(location, SchemaPolicy::Apply, datasvc::DEMO_CUSTOMERS, 2)
        .await
        .unwrap()
}

/// Counts the SQL statements sqlx executes (it traces each under `sqlx::query`),
/// leaving out the PRAGMAs that set up a new pooled connection and what the
/// change feed runs in the background.
struct StatementCounter(Arc<AtomicUsize>);

/// The `summary` of a statement event: its first words.
#[derive(Default)]
struct Summary(String);

impl tracing::field::Visit for Summary {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "summary" {
            self.0 = format!("{value:?}").trim_matches('"').to_string();
        }
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for StatementCounter {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if event.metadata().target() != "sqlx::query" {
            return;
        }
        let mut summary = Summary::default();
        event.record(&mut summary);
        let background = ["PRAGMA", "SET", "BEGIN", "COMMIT", "/* change feed"];
        if !background.iter().any(|start| summary.0.starts_with(start)) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}

#[tokio::test]
async fn one_sql_query_per_portfolio_whatever_the_holdings() {
    let counter = Arc::new(AtomicUsize::new(0));
    // Global: sqlx runs SQLite statements on its own worker thread. This file
    // holds this one test so that nothing else runs statements meanwhile.
    let subscriber = tracing_subscriber::registry().with(StatementCounter(counter.clone()));
    tracing::subscriber::set_global_default(subscriber).unwrap();
    let directory = tempfile::tempdir().unwrap();
    let database = TestDatabase::create().await;
    for location in [
        Location::Sqlite(directory.path().join("datasvc.sqlite")),
        Location::Postgres(database.url().to_string()),
    ] {
        let store = open(&location).await;
        let rows: Vec<(String, i64)> = on_pool!(store.pool(), pool => {
            sqlx::query_as("SELECT customer_id, COUNT(*) FROM holdings GROUP BY customer_id ORDER BY 2, 1")
                .fetch_all(pool)
                .await
                .unwrap()
        });
        let few = rows.iter().take(3).map(|(id, _)| id.clone());
        let many = rows.iter().rev().take(3).map(|(id, _)| id.clone());
        for customer in few.chain(many) {
            let before = counter.load(Ordering::SeqCst);
            let portfolio = load_portfolio(store.pool(), &customer)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(
                counter.load(Ordering::SeqCst) - before,
                1,
                "{customer} with {} holdings on {location}",
                portfolio.assets.len()
            );
        }
        store.close().await;
    }
}
