//! The data service over real HTTP on loopback, on a real SQLite file and a
//! real PostgreSQL database: its portfolios (`portfolio`), and its change feed
//! fed by another application's SQL on its own connections, a file per
//! concern, each test run once per backend (`feed_suite!`).

/// Runs each named test once per backend, as `<concern>::sqlite::<test>` and
/// `<concern>::postgres::<test>`.
macro_rules! feed_suite {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test(crate::backends::on_sqlite().await).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test(crate::backends::on_postgres().await).await
                }
            )*
        }
    };
}

mod backends;
mod logged;
mod portfolio;
mod readers;
