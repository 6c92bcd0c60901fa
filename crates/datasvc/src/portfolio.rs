//! One customer's portfolio, read with a single SQL query whatever the number of
//! holdings (the original service's JPA mapping issued one query per holding),
//! with the change feed's position in the same snapshot.

use database::{Pool, on_pool};
use sqlx::FromRow;
use wire::{Asset, Portfolio};

#[derive(FromRow)]
struct PortfolioRow {
    customer_id: String,
    name: String,
    base_currency: String,
    version: i64,
    change_position: i64,
    asset_id: Option<i64>,
    symbol: Option<String>,
    asset_class: Option<String>,
    quantity: Option<f64>,
    price: Option<f64>,
    price_as_of: Option<String>,
}

const PORTFOLIO_QUERY: &str = "
    SELECT c.id AS customer_id, c.name, c.base_currency, c.version,
           (SELECT COALESCE(MAX(position), (SELECT pruned_through FROM change_feed))
            FROM changes) AS change_position,
           a.id AS asset_id, a.symbol, a.asset_class, h.quantity, a.price, a.price_as_of
    FROM customers c
    LEFT JOIN holdings h ON h.customer_id = c.id
    LEFT JOIN assets a ON a.id = h.asset_id
    WHERE c.id = $1
    ORDER BY a.id";

/// The portfolio of `customer_id`, or `None` when there is no such customer.
pub async fn load_portfolio(
    pool: &Pool,
    customer_id: &str,
) -> Result<Option<Portfolio>, sqlx::Error> {
    let rows: Vec<PortfolioRow> = on_pool!(pool, pool => {
        sqlx::query_as(PORTFOLIO_QUERY)
            .bind(customer_id)
            .fetch_all(pool)
            .await?
    });
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let mut portfolio = Portfolio {
        customer_id: first.customer_id.clone(),
        name: first.name.clone(),
        base_currency: first.base_currency.clone(),
        as_of: String::new(),
        version: first.version,
        change_position: first.change_position,
        assets: Vec::with_capacity(rows.len()),
    };
    for row in rows {
        let (Some(asset_id), Some(symbol), Some(asset_class), Some(quantity), Some(price)) = (
            row.asset_id,
            row.symbol,
            row.asset_class,
            row.quantity,
            row.price,
        ) else {
            continue;
        };
        if let Some(date) = row.price_as_of.filter(|date| *date > portfolio.as_of) {
            portfolio.as_of = date;
        }
        portfolio.assets.push(Asset {
            asset_id,
            symbol,
            asset_class,
            quantity,
            price,
            market_value: quantity * price,
        });
    }
    Ok(Some(portfolio))
}
