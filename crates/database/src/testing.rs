//! A PostgreSQL database of its own for each test: created with a random name on
//! the server that `PROJECTOR_TEST_DATABASE_URL` names (the local server by
//! default), dropped when the test ends, whether it passed or not. Tests never
//! touch another database on the server.

use std::str::FromStr;

use rand::Rng;
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};

/// The server tests use when `PROJECTOR_TEST_DATABASE_URL` is not set.
pub const DEFAULT_SERVER: &str = "postgres://postgres@127.0.0.1:5432/postgres";

pub struct TestDatabase {
    server: PgConnectOptions,
    name: String,
    url: String,
}

impl TestDatabase {
    /// Creates an empty database; fails the test, saying what is missing, when no
    /// PostgreSQL server answers. A test that needs PostgreSQL never skips.
    pub async fn create() -> TestDatabase {
        let server_url =
            std::env::var("PROJECTOR_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_SERVER.into());
        let server = PgConnectOptions::from_str(&server_url).unwrap_or_else(|error| {
            panic!("PROJECTOR_TEST_DATABASE_URL is not a PostgreSQL URL ({error})")
        });
        let mut admin = PgConnection::connect_with(&server).await.unwrap_or_else(|error| {
            panic!(
                "no PostgreSQL server answers at {} ({error}); the PostgreSQL tests need one where \
                 this user may create databases: start the local server (`pg_ctlcluster 15 main start`), \
                 install one (`apt-get install postgresql`), or point PROJECTOR_TEST_DATABASE_URL at one",
                crate::redact_url(&server_url)
            )
        });
        let suffix: u64 = rand::rng().random();
        let name = format!("projector_test_{suffix:016x}");
        // The name is made here from hex digits, never taken from input.
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|error| panic!("cannot create the test database {name}: {error}"));
        let _ = admin.close().await;
        let url = database_url(&server_url, &name);
        TestDatabase { server, name, url }
    }

    /// The URL of this test's database.
    pub fn url(&self) -> &str {
        &self.url
    }
}

/// The server URL with its database replaced by `name`, query parameters kept.
fn database_url(server_url: &str, name: &str) -> String {
    let (base, query) = match server_url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (server_url, String::new()),
    };
    let scheme_end = base.find("://").map_or(0, |index| index + 3);
    let authority_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |index| scheme_end + index);
    format!("{}/{name}{query}", &base[..authority_end])
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let server = self.server.clone();
        let name = self.name.clone();
        // Drop runs inside the test's runtime, which cannot be blocked on: the
        // database is dropped from a thread with a runtime of its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async move {
                let mut admin = PgConnection::connect_with(&server).await?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut admin)
                    .await?;
                admin.close().await?;
                Ok::<_, sqlx::Error>(())
            })?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        })
        .join();
        if let Ok(Err(error)) = dropped {
            eprintln!("could not drop the test database {}: {error}", self.name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::database_url;

    #[test]
    fn the_database_is_replaced_and_the_rest_kept() {
        assert_eq!(
            database_url("postgres://postgres@127.0.0.1:5432/postgres", "t1"),
            "postgres://postgres@127.0.0.1:5432/t1"
        );
        assert_eq!(
            database_url("postgres://u:p@db/main?sslmode=disable", "t2"),
            "postgres://u:p@db/t2?sslmode=disable"
        );
        assert_eq!(
            database_url("postgres://db:5433", "t3"),
            "postgres://db:5433/t3"
        );
    }
}
