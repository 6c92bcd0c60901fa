//! Deterministic demo data: the same 1,000 customers on every machine.

use engine::AssetClass;
use engine::rng::mix64;
use sqlx::SqlitePool;

pub const DEMO_CUSTOMERS: u32 = 1000;
const PRICE_DATE: &str = "2026-11-27";
const FIRST_NAMES: [&str; 8] = [
    "Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken",
];
const LAST_NAMES: [&str; 8] = [
    "Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson",
];
const CURRENCIES: [&str; 3] = ["USD", "EUR", "GBP"];
/// Three instruments per asset class.
const ASSETS_PER_CLASS: u64 = 3;

/// Seeds customers, the catalogue and holdings in one transaction when the store is empty.
pub async fn seed_if_empty(pool: &SqlitePool) -> Result<(), sqlx::Error> {
    let (customers,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM customers")
        .fetch_one(pool)
        .await?;
    if customers > 0 {
        return Ok(());
    }
    let mut transaction = pool.begin().await?;
    for (class_index, class) in AssetClass::ALL.iter().enumerate() {
        for number in 0..ASSETS_PER_CLASS {
            let id = class_index as u64 * ASSETS_PER_CLASS + number + 1;
            let price = 10.0 + (mix64(id) % 49_000) as f64 / 100.0;
            sqlx::query("INSERT INTO assets (id, symbol, asset_class, price, price_as_of) VALUES (?1, ?2, ?3, ?4, ?5)")
                .bind(id as i64)
                .bind(format!("{}-{}", class.key().to_uppercase().replace('_', ""), number + 1))
                .bind(class.key())
                .bind(price)
                .bind(PRICE_DATE)
                .execute(&mut *transaction)
                .await?;
        }
    }
    let asset_count = AssetClass::ALL.len() as u64 * ASSETS_PER_CLASS;
    for number in 1..=u64::from(DEMO_CUSTOMERS) {
        let id = format!("C-{number:06}");
        let hash = mix64(number);
        let name = format!(
            "{} {}",
            FIRST_NAMES[(hash % 8) as usize],
            LAST_NAMES[((hash >> 8) % 8) as usize]
        );
        sqlx::query("INSERT INTO customers (id, name, base_currency) VALUES (?1, ?2, ?3)")
            .bind(&id)
            .bind(name)
            .bind(CURRENCIES[((hash >> 16) % 3) as usize])
            .execute(&mut *transaction)
            .await?;
        // 3 to 20 distinct holdings, at stepped positions through the catalogue.
        let holdings = 3 + (hash >> 24) % 18;
        let start = (hash >> 32) % asset_count;
        for slot in 0..holdings {
            let asset_id = (start + slot * 5) % asset_count + 1;
            let quantity = 1.0 + (mix64(hash ^ slot) % 50_000) as f64 / 100.0;
            sqlx::query("INSERT OR IGNORE INTO holdings (customer_id, asset_id, quantity) VALUES (?1, ?2, ?3)")
                .bind(&id)
                .bind(asset_id as i64)
                .bind(quantity)
                .execute(&mut *transaction)
                .await?;
        }
    }
    // Seeding is not a change: start every customer at version 1 with an empty log.
    sqlx::query("UPDATE customers SET version = 1")
        .execute(&mut *transaction)
        .await?;
    sqlx::query("DELETE FROM change_log")
        .execute(&mut *transaction)
        .await?;
    transaction.commit().await
}
