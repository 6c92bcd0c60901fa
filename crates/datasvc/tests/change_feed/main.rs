//! The change feed over real HTTP, on a real SQLite file and a real PostgreSQL
//! database, fed by another application's SQL on its own connections. Each
//! file holds one concern and runs its tests once per backend (`feed_suite!`).

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
mod readers;
