//! The report store on a real SQLite file and a real PostgreSQL database: each
//! file holds one concern and runs its tests once per backend
//! (`report_suite!`).

/// Runs each named test once per backend, as `<concern>::sqlite::<test>` and
/// `<concern>::postgres::<test>`; each test takes the store and closes it.
macro_rules! report_suite {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $test() {
                    let (_place, store) = crate::report_store::on_sqlite().await;
                    super::$test(store).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $test() {
                    let (_place, store) = crate::report_store::on_postgres().await;
                    super::$test(store).await
                }
            )*
        }
    };
}

mod reports;
mod sessions;

use database::testing::TestDatabase;
use database::{Location, SchemaPolicy};
use orchestrator::ReportStore;

/// Keeps a test's store alive: its directory or its database.
type Place = Box<dyn std::any::Any>;

async fn on_sqlite() -> (Place, ReportStore) {
    let directory = tempfile::tempdir().unwrap();
    let location = Location::Sqlite(directory.path().join("reports.sqlite"));
    (Box::new(directory), open(&location).await)
}

async fn on_postgres() -> (Place, ReportStore) {
    let database = TestDatabase::create().await;
    let location = Location::parse(database.url()).unwrap();
    (Box::new(database), open(&location).await)
}

async fn open(location: &Location) -> ReportStore {
    ReportStore::open(location, SchemaPolicy::Apply, 2)
        .await
        .unwrap()
}
