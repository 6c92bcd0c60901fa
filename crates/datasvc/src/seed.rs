//! Deterministic demo data: the same customers on every machine and backend.

use database::Pool;
use engine::AssetClass;
use engine::rng::mix64;
use sqlx::{PgPool, QueryBuilder, SqlitePool};

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
const ASSET_COUNT: u64 = AssetClass::ALL.len() as u64 * ASSETS_PER_CLASS;
/// Customers written per statement when seeding PostgreSQL (about 57,000
/// holdings, half a second a statement).
const POSTGRES_BATCH: u32 = 5_000;
/// Rows per insert when seeding SQLite (three or five bound values a row, well
/// under SQLite's limit on bound values).
const SQLITE_ROWS_PER_STATEMENT: usize = 1000;
/// Serialises the seeding of data services that start together on one database.
const SEED_LOCK: i64 = 0x5345_4544_4441_5441;

struct AssetSeed {
    id: i64,
    symbol: String,
    class: &'static str,
    price: f64,
}

struct CustomerSeed {
    id: String,
    name: String,
    currency: &'static str,
    /// (asset id, quantity), distinct assets.
    holdings: Vec<(i64, f64)>,
}

fn catalogue() -> Vec<AssetSeed> {
    let mut assets = Vec::new();
    for (class_index, class) in AssetClass::ALL.iter().enumerate() {
        for number in 0..ASSETS_PER_CLASS {
            let id = class_index as u64 * ASSETS_PER_CLASS + number + 1;
            assets.push(AssetSeed {
                id: id as i64,
                symbol: format!(
                    "{}-{}",
                    class.key().to_uppercase().replace('_', ""),
                    number + 1
                ),
                class: class.key(),
                price: 10.0 + (mix64(id) % 49_000) as f64 / 100.0,
            });
        }
    }
    assets
}

fn customer(number: u64) -> CustomerSeed {
    let hash = mix64(number);
    // 3 to 20 distinct holdings, at stepped positions through the catalogue
    // (the step, 5, is prime to the catalogue's 24 entries).
    let count = 3 + (hash >> 24) % 18;
    let start = (hash >> 32) % ASSET_COUNT;
    CustomerSeed {
        id: format!("C-{number:06}"),
        name: format!(
            "{} {}",
            FIRST_NAMES[(hash % 8) as usize],
            LAST_NAMES[((hash >> 8) % 8) as usize]
        ),
        currency: CURRENCIES[((hash >> 16) % 3) as usize],
        holdings: (0..count)
            .map(|slot| {
                let asset_id = ((start + slot * 5) % ASSET_COUNT + 1) as i64;
                let quantity = 1.0 + (mix64(hash ^ slot) % 50_000) as f64 / 100.0;
                (asset_id, quantity)
            })
            .collect(),
    }
}

/// Seeds the catalogue, `customers` customers and their holdings in one
/// transaction when the store has no customers. Seeding is not a change: every
/// customer starts at version 1 with an empty change log.
pub async fn seed_if_empty(pool: &Pool, customers: u32) -> Result<(), sqlx::Error> {
    let started = std::time::Instant::now();
    let seeded = match pool {
        Pool::Sqlite(pool) => seed_sqlite(pool, customers).await?,
        Pool::Postgres(pool) => seed_postgres(pool, customers).await?,
    };
    if seeded {
        tracing::info!(
            customers,
            seconds = started.elapsed().as_secs_f64(),
            "seeded the empty store with demo customers"
        );
    }
    Ok(())
}

/// True when the store was empty and is now seeded.
async fn seed_sqlite(pool: &SqlitePool, customers: u32) -> Result<bool, sqlx::Error> {
    let mut transaction = pool.begin_with("BEGIN IMMEDIATE").await?;
    let (existing,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM customers")
        .fetch_one(&mut *transaction)
        .await?;
    if existing > 0 {
        return Ok(false);
    }
    // Multi-row inserts with bound values: a round trip per statement to
    // SQLite's thread is most of the cost of seeding, not the rows.
    let mut assets =
        QueryBuilder::new("INSERT INTO assets (id, symbol, asset_class, price, price_as_of) ");
    assets.push_values(catalogue(), |mut row, asset| {
        row.push_bind(asset.id)
            .push_bind(asset.symbol)
            .push_bind(asset.class)
            .push_bind(asset.price)
            .push_bind(PRICE_DATE);
    });
    assets.build().execute(&mut *transaction).await?;
    let everyone: Vec<CustomerSeed> = (1..=u64::from(customers)).map(customer).collect();
    for chunk in everyone.chunks(SQLITE_ROWS_PER_STATEMENT) {
        let mut rows = QueryBuilder::new("INSERT INTO customers (id, name, base_currency) ");
        rows.push_values(chunk, |mut row, customer| {
            row.push_bind(&customer.id)
                .push_bind(&customer.name)
                .push_bind(customer.currency);
        });
        rows.build().execute(&mut *transaction).await?;
    }
    let holdings: Vec<(&String, i64, f64)> = everyone
        .iter()
        .flat_map(|customer| {
            customer
                .holdings
                .iter()
                .map(move |&(asset_id, quantity)| (&customer.id, asset_id, quantity))
        })
        .collect();
    for chunk in holdings.chunks(SQLITE_ROWS_PER_STATEMENT) {
        let mut rows = QueryBuilder::new("INSERT INTO holdings (customer_id, asset_id, quantity) ");
        rows.push_values(chunk, |mut row, (customer_id, asset_id, quantity)| {
            row.push_bind(*customer_id)
                .push_bind(*asset_id)
                .push_bind(*quantity);
        });
        rows.build().execute(&mut *transaction).await?;
    }
    // The triggers counted the seed as changes; it is the starting point.
    sqlx::query("UPDATE customers SET version = 1")
        .execute(&mut *transaction)
        .await?;
    sqlx::query("DELETE FROM change_log")
        .execute(&mut *transaction)
        .await?;
    sqlx::query("DELETE FROM sqlite_sequence WHERE name = 'change_log'")
        .execute(&mut *transaction)
        .await?;
    transaction.commit().await?;
    Ok(true)
}

/// Multi-row inserts from arrays, with the change triggers off inside the
/// seeding transaction (`ALTER TABLE` takes a lock that other writers wait on): a million customers load in well under a minute.
async fn seed_postgres(pool: &PgPool, customers: u32) -> Result<bool, sqlx::Error> {
    let mut transaction = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(SEED_LOCK)
        .execute(&mut *transaction)
        .await?;
    let (existing,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM customers")
        .fetch_one(&mut *transaction)
        .await?;
    if existing > 0 {
        return Ok(false);
    }
    for table in ["customers", "holdings"] {
        sqlx::query(&format!("ALTER TABLE {table} DISABLE TRIGGER USER"))
            .execute(&mut *transaction)
            .await?;
    }
    let assets = catalogue();
    sqlx::query(
        "INSERT INTO assets (id, symbol, asset_class, price, price_as_of)
         SELECT id, symbol, class, price, $5
         FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::float8[]) AS a (id, symbol, class, price)",
    )
    .bind(assets.iter().map(|asset| asset.id).collect::<Vec<_>>())
    .bind(assets.iter().map(|asset| asset.symbol.clone()).collect::<Vec<_>>())
    .bind(assets.iter().map(|asset| asset.class).collect::<Vec<_>>())
    .bind(assets.iter().map(|asset| asset.price).collect::<Vec<_>>())
    .bind(PRICE_DATE)
    .execute(&mut *transaction)
    .await?;
    let mut first = 1;
    while first <= customers {
        let last = customers.min(first.saturating_add(POSTGRES_BATCH - 1));
        let batch: Vec<CustomerSeed> = (first..=last).map(|n| customer(u64::from(n))).collect();
        sqlx::query(
            "INSERT INTO customers (id, name, base_currency)
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[])",
        )
        .bind(batch.iter().map(|c| c.id.clone()).collect::<Vec<_>>())
        .bind(batch.iter().map(|c| c.name.clone()).collect::<Vec<_>>())
        .bind(batch.iter().map(|c| c.currency).collect::<Vec<_>>())
        .execute(&mut *transaction)
        .await?;
        let holdings = batch
            .iter()
            .flat_map(|c| c.holdings.iter().map(move |h| (&c.id, h)));
        let (owners, assets_and_quantities): (Vec<String>, Vec<(i64, f64)>) =
            holdings.map(|(id, holding)| (id.clone(), *holding)).unzip();
        let (asset_ids, quantities): (Vec<i64>, Vec<f64>) =
            assets_and_quantities.into_iter().unzip();
        sqlx::query(
            "INSERT INTO holdings (customer_id, asset_id, quantity)
             SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::float8[])",
        )
        .bind(owners)
        .bind(asset_ids)
        .bind(quantities)
        .execute(&mut *transaction)
        .await?;
        first = last + 1;
    }
    for table in ["customers", "holdings"] {
        sqlx::query(&format!("ALTER TABLE {table} ENABLE TRIGGER USER"))
            .execute(&mut *transaction)
            .await?;
    }
    transaction.commit().await?;
    Ok(true)
}
