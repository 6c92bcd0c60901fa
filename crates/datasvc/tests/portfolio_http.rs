//! The data service over real HTTP on loopback and a real SQLite file.

use api::wire::Portfolio;
use datasvc::{DataStore, load_portfolio, router};
use prost::Message;

async fn serve(store: DataStore) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router(store)).await.unwrap() });
    format!("http://{address}")
}

async fn open() -> (tempfile::TempDir, DataStore) {
    let directory = tempfile::tempdir().unwrap();
    let store = DataStore::open(&directory.path().join("datasvc.sqlite"))
        .await
        .unwrap();
    (directory, store)
}

#[tokio::test]
async fn portfolio_json_protobuf_and_404() {
    let (_directory, store) = open().await;
    let base = serve(store).await;
    let client = reqwest::Client::new();
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
async fn demo_data_is_deterministic_and_every_change_is_logged() {
    let (_first_directory, first) = open().await;
    let (_second_directory, second) = open().await;
    for customer in ["C-000001", "C-000500", "C-001000"] {
        let a = load_portfolio(first.pool(), customer)
            .await
            .unwrap()
            .unwrap();
        let b = load_portfolio(second.pool(), customer)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(a, b);
        assert_eq!(a.version, 1);
    }
    let (customers, out_of_range): (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), SUM(n < 3 OR n > 20) FROM (SELECT c.id, COUNT(h.asset_id) AS n FROM customers c
         LEFT JOIN holdings h ON h.customer_id = c.id GROUP BY c.id)",
    )
    .fetch_one(first.pool())
    .await
    .unwrap();
    assert_eq!((customers, out_of_range), (1000, 0));

    // A direct SQL write, as a legacy batch job would make it.
    sqlx::query("UPDATE holdings SET quantity = quantity + 1 WHERE customer_id = 'C-000007'")
        .execute(first.pool())
        .await
        .unwrap();
    let changed = load_portfolio(first.pool(), "C-000007")
        .await
        .unwrap()
        .unwrap();
    assert!(changed.version > 1);
    let (logged,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM change_log WHERE customer_id = 'C-000007'")
            .fetch_one(first.pool())
            .await
            .unwrap();
    assert!(logged >= 1);
}
