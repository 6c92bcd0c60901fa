//! Portfolios as the workers and the original clients read them, and the
//! log of every change made to them.

use database::testing::TestDatabase;
use database::{Location, SchemaPolicy, on_pool};
use datasvc::{Access, DataStore, load_portfolio, router};
use prost::Message;
use service::Secret;
use wire::Portfolio;

use crate::backends::{SEEDED, Service};

/// Keeps a test's store alive: its directory or its database.
type Place = Box<dyn std::any::Any>;

async fn open_sqlite() -> (Place, DataStore) {
    let directory = tempfile::tempdir().unwrap();
    let location = Location::Sqlite(directory.path().join("datasvc.sqlite"));
    (Box::new(directory), open_at(&location).await)
}

async fn open_postgres() -> (Place, DataStore) {
    let database = TestDatabase::create().await;
    let location = Location::Postgres(database.url().to_string());
    (Box::new(database), open_at(&location).await)
}

async fn open_at(location: &Location) -> DataStore {
    DataStore::open(location, SchemaPolicy::Apply, datasvc::DEMO_CUSTOMERS, 2)
        .await
        .unwrap()
}

const TOKEN: &str = "datasvc-test-token";

async fn serve(store: DataStore, access: Access) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        service::server::serve(listener, router(store, access), Default::default())
            .await
            .unwrap()
    });
    format!("http://{address}")
}

/// A client that presents `token`, as the workers do.
fn client_with(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("authorization", format!("Bearer {token}").parse().unwrap());
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap()
}

async fn portfolio_json_protobuf_and_404(service: Service) {
    let (base, client) = (&service.base, &service.client);
    let response = client
        .get(format!("{base}/api/customers/C-000042/portfolio"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let json: serde_json::Value = response.json().await.unwrap();
    for member in [
        "customer_id",
        "name",
        "base_currency",
        "as_of",
        "version",
        "assets",
    ] {
        assert!(json.get(member).is_some(), "missing {member}: {json}");
    }
    assert_eq!(json["customer_id"], "C-000042");
    let assets = json["assets"].as_array().unwrap();
    assert!((3..=20).contains(&assets.len()));
    for asset in assets {
        for member in [
            "asset_id",
            "symbol",
            "asset_class",
            "quantity",
            "price",
            "market_value",
        ] {
            assert!(asset.get(member).is_some(), "missing {member}: {asset}");
        }
        let product = asset["quantity"].as_f64().unwrap() * asset["price"].as_f64().unwrap();
        assert_eq!(asset["market_value"].as_f64().unwrap(), product);
        assert!(engine::AssetClass::from_key(asset["asset_class"].as_str().unwrap()).is_some());
    }

    let protobuf = client
        .get(format!("{base}/api/customers/C-000042/portfolio"))
        .header("accept", "application/x-protobuf")
        .send()
        .await
        .unwrap();
    assert_eq!(protobuf.headers()["content-type"], "application/x-protobuf");
    let decoded = Portfolio::decode(protobuf.bytes().await.unwrap()).unwrap();
    assert_eq!(decoded.assets.len(), assets.len());
    assert_eq!(serde_json::to_value(&decoded).unwrap(), json);

    let missing = client
        .get(format!("{base}/api/customers/C-999999/portfolio"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let body: serde_json::Value = missing.json().await.unwrap();
    assert_eq!(body["error"], "Customer C-999999 not found");
}

#[tokio::test]
async fn portfolios_need_the_service_token_unless_anonymous_callers_are_allowed() {
    let (_place, store) = open_sqlite().await;
    let portfolio = "/api/customers/C-000042/portfolio";
    let strict = serve(store.clone(), Access::token(Secret::new(TOKEN))).await;
    let lenient = serve(
        store,
        Access {
            token: Some(Secret::new(TOKEN)),
            allow_anonymous: true,
        },
    )
    .await;
    let anonymous = reqwest::Client::new();
    let wrong = client_with("not-the-token");
    let cases = [
        (&strict, &anonymous, 401),
        (&strict, &wrong, 401),
        (&strict, &client_with(TOKEN), 200),
        (&lenient, &anonymous, 200),
        (&lenient, &wrong, 401),
    ];
    for (base, client, expected) in cases {
        let response = client
            .get(format!("{base}{portfolio}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), expected, "{base}");
        if expected == 401 {
            assert!(
                response.headers()["www-authenticate"]
                    .to_str()
                    .unwrap()
                    .starts_with("Bearer")
            );
            let body: serde_json::Value = response.json().await.unwrap();
            assert!(
                body["detail"]
                    .as_str()
                    .unwrap()
                    .contains("PROJECTOR_DATASVC_TOKEN")
            );
        }
    }
    let metrics = anonymous
        .get(format!("{strict}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), 200, "metrics hold no customer data");
}

#[tokio::test]
async fn demo_data_is_the_same_on_every_machine_and_backend() {
    let (_first_place, first) = open_sqlite().await;
    let (_second_place, second) = open_sqlite().await;
    let (_third_place, third) = open_postgres().await;
    for customer in ["C-000001", "C-000500", "C-001000"] {
        let a = load_portfolio(first.pool(), customer)
            .await
            .unwrap()
            .unwrap();
        let b = load_portfolio(second.pool(), customer)
            .await
            .unwrap()
            .unwrap();
        let c = load_portfolio(third.pool(), customer)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(a, b);
        assert_eq!(a, c, "PostgreSQL serves the same portfolio as SQLite");
        assert_eq!(a.version, 1);
    }
}

async fn every_change_is_logged(service: Service) {
    let store = &service.store;
    let (customers, out_of_range): (i64, i64) = on_pool!(store.pool(), pool => {
        sqlx::query_as(
            "SELECT COUNT(*), SUM(CASE WHEN n < 3 OR n > 20 THEN 1 ELSE 0 END)
             FROM (SELECT c.id, COUNT(h.asset_id) AS n FROM customers c
                   LEFT JOIN holdings h ON h.customer_id = c.id GROUP BY c.id) AS counts",
        )
        .fetch_one(pool)
        .await
        .unwrap()
    });
    assert_eq!((customers, out_of_range), (SEEDED, 0));
    let (logged_at_start,): (i64,) = on_pool!(store.pool(), pool => {
        sqlx::query_as("SELECT COUNT(*) FROM change_log").fetch_one(pool).await.unwrap()
    });
    assert_eq!(logged_at_start, 0, "seeding is not a change");

    // A direct SQL write, as a legacy batch job makes it on its own connection.
    service
        .other
        .execute("UPDATE holdings SET quantity = quantity + 1 WHERE customer_id = 'C-000007';")
        .await;
    let changed = load_portfolio(store.pool(), "C-000007")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(changed.version, 1 + changed.assets.len() as i64);
    let (logged,): (i64,) = on_pool!(store.pool(), pool => {
        sqlx::query_as("SELECT COUNT(*) FROM change_log WHERE customer_id = 'C-000007'")
            .fetch_one(pool)
            .await
            .unwrap()
    });
    assert_eq!(
        logged,
        changed.assets.len() as i64,
        "one entry per changed holding"
    );
}

feed_suite!(portfolio_json_protobuf_and_404, every_change_is_logged);
