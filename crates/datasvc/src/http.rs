//! `GET /api/customers/{customerId}/portfolio`, in JSON or Protobuf, and `/metrics`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use api::{Encoding, Problem, respond};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::DataStore;
use crate::access::{Access, require_credential};
use crate::portfolio::load_portfolio;

#[derive(Clone)]
struct AppState {
    store: DataStore,
    /// Portfolio requests served, for `/metrics`.
    portfolio_requests: Arc<AtomicU64>,
}

/// The portfolio API behind `access`; `/metrics` holds no customer data and is open.
pub fn router(store: DataStore, access: Access) -> Router {
    let state = AppState {
        store,
        portfolio_requests: Arc::default(),
    };
    Router::new()
        .route("/api/customers/{customer_id}/portfolio", get(portfolio))
        .route_layer(axum::middleware::from_fn_with_state(
            access,
            require_credential,
        ))
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// Prometheus text format.
async fn metrics(State(state): State<AppState>) -> String {
    format!(
        "# TYPE datasvc_portfolio_requests_total counter\ndatasvc_portfolio_requests_total {}\n",
        state.portfolio_requests.load(Ordering::Relaxed)
    )
}

async fn portfolio(
    State(state): State<AppState>,
    Path(customer_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    state.portfolio_requests.fetch_add(1, Ordering::Relaxed);
    let encoding = Encoding::of_accept(
        headers
            .get(header::ACCEPT)
            .and_then(|value| value.to_str().ok()),
    );
    match load_portfolio(state.store.pool(), &customer_id).await {
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
