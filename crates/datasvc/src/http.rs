//! `GET /api/customers/{customerId}/portfolio`, in JSON or Protobuf.

use api::{Encoding, Problem, respond};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::DataStore;
use crate::portfolio::load_portfolio;

pub fn router(store: DataStore) -> Router {
    Router::new()
        .route("/api/customers/{customer_id}/portfolio", get(portfolio))
        .route("/health", get(|| async { "ok" }))
        .with_state(store)
}

async fn portfolio(
    State(store): State<DataStore>,
    Path(customer_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let encoding = Encoding::of_accept(
        headers
            .get(header::ACCEPT)
            .and_then(|value| value.to_str().ok()),
    );
    match load_portfolio(store.pool(), &customer_id).await {
        Ok(Some(portfolio)) => respond(StatusCode::OK, encoding, &portfolio),
        Ok(None) => Problem::new(
            StatusCode::NOT_FOUND,
            format!("Customer {customer_id} not found"),
        )
        .into_response(),
        Err(error) => {
            tracing::error!(%error, %customer_id, "portfolio query failed");
            Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the portfolio store is unavailable; retry shortly",
            )
            .into_response()
        }
    }
}
