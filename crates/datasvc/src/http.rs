//! `GET /api/customers/{customerId}/portfolio` and `GET /api/changes`, in JSON
//! or Protobuf.

use std::time::Duration;

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use service::server::Shutdown;
use service::{Accepts, Problem, respond};

use crate::DataStore;
use crate::access::{Access, require_credential};
use crate::feed;
use crate::portfolio::load_portfolio;

/// Longest long-poll a reader may ask for.
const MAX_WAIT_SECONDS: u64 = 60;
const DEFAULT_LIMIT: i64 = 1_000;
const MAX_LIMIT: i64 = 10_000;

#[derive(Clone)]
pub(crate) struct AppState {
    store: DataStore,
    /// Long-polls answer at once when the server starts draining.
    shutdown: Shutdown,
}

/// The portfolio API and the change feed behind `access`.
pub fn router(store: DataStore, access: Access) -> Router {
    routes(store, access, Shutdown::new())
}

pub(crate) fn routes(store: DataStore, access: Access, shutdown: Shutdown) -> Router {
    let state = AppState { store, shutdown };
    Router::new()
        .route("/api/customers/{customer_id}/portfolio", get(portfolio))
        .route("/api/changes", get(changes))
        .route_layer(axum::middleware::from_fn_with_state(
            access,
            require_credential,
        ))
        .with_state(state)
}

/// A customer's portfolio, as the original's `PortfolioDTO`.
#[utoipa::path(get, path = "/api/customers/{customer_id}/portfolio", tag = "portfolios",
    security(("service_token" = [])),
    params(("customer_id" = String, Path, description = "The customer's id, such as C-000042")),
    responses(
        (status = 200, description = "The portfolio", body = wire::Portfolio),
        service::openapi::NotFound,
        service::openapi::StoreFailures,
        service::openapi::ServiceRefusals,
    ),
)]
pub(crate) async fn portfolio(
    State(state): State<AppState>,
    Path(customer_id): Path<String>,
    Accepts(encoding): Accepts,
) -> Response {
    metrics::counter!(service::metrics::PORTFOLIO_REQUESTS).increment(1);
    match load_portfolio(state.store.pool(), &customer_id).await {
        Ok(Some(portfolio)) => respond(StatusCode::OK, encoding, &portfolio),
        Ok(None) => Problem::new(
            StatusCode::NOT_FOUND,
            format!("Customer {customer_id} not found"),
        )
        .into_response(),
        Err(error) => Problem::of_store(
            &error,
            "portfolio store",
            "the portfolio store is unavailable; retry shortly",
        )
        .into_response(),
    }
}

#[derive(serde::Deserialize)]
pub(crate) struct FeedQuery {
    #[serde(default)]
    after: i64,
    #[serde(default)]
    wait: u64,
    #[serde(default = "default_limit")]
    limit: i64,
}

fn default_limit() -> i64 {
    DEFAULT_LIMIT
}

const FEED_USAGE: &str = "send after=POSITION (0, or the position of the last change read), wait=SECONDS (0 to 60) and limit=N (1 to 10000)";

/// The changes after a cursor, in commit order. With `wait`, an answer with no
/// changes waits until one is committed or the wait ends. A cursor below
/// `oldest_cursor` (pruned) or above `latest` (another log) is answered at once.
#[utoipa::path(get, path = "/api/changes", tag = "changes",
    security(("service_token" = [])),
    params(
        ("after" = Option<i64>, Query, minimum = 0, description = "The position of the last change read (0 for the start)"),
        ("wait" = Option<u64>, Query, minimum = 0, maximum = 60, description = "Seconds an answer without changes may wait for one"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 10000, description = "Most changes in one answer (1000 when absent)"),
    ),
    responses(
        (status = 200, description = "The changes after `after`, in commit order", body = wire::ChangeFeed),
        (status = 400, description = "A parameter out of its range", body = Problem, content_type = "application/problem+json"),
        service::openapi::StoreFailures,
        service::openapi::ServiceRefusals,
    ),
)]
pub(crate) async fn changes(
    State(state): State<AppState>,
    query: Result<Query<FeedQuery>, QueryRejection>,
    Accepts(encoding): Accepts,
) -> Response {
    let query = match query {
        Ok(Query(query)) => query,
        Err(rejection) => {
            return Problem::new(
                StatusCode::BAD_REQUEST,
                format!("{}; {FEED_USAGE}", rejection.body_text()),
            )
            .into_response();
        }
    };
    if query.after < 0 || query.wait > MAX_WAIT_SECONDS || !(1..=MAX_LIMIT).contains(&query.limit) {
        return Problem::new(StatusCode::BAD_REQUEST, FEED_USAGE).into_response();
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(query.wait);
    let mut end = state.store.feed().subscribe();
    loop {
        let page = match feed::read(state.store.pool(), query.after, query.limit).await {
            Ok(page) => page,
            Err(error) => {
                return Problem::of_store(
                    &error,
                    "change log",
                    "the change log is unavailable; retry shortly",
                )
                .into_response();
            }
        };
        let answer_now = !page.changes.is_empty()
            || query.after < page.oldest_cursor
            || query.after > page.latest;
        if answer_now || tokio::time::Instant::now() >= deadline {
            return respond(StatusCode::OK, encoding, &page);
        }
        tokio::select! {
            moved = end.changed() => if moved.is_err() {
                return respond(StatusCode::OK, encoding, &page);
            },
            () = tokio::time::sleep_until(deadline) => {}
            () = state.shutdown.draining() => return respond(StatusCode::OK, encoding, &page),
        }
    }
}
