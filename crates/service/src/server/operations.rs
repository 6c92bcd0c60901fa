//! What every role serves besides its own API: `/health` (the original's: 503
//! while draining), `/healthz` (alive), `/readyz` (503 while draining or while
//! a store or upstream does not answer, naming it), `/metrics`, and the role's
//! `/openapi.json`. None needs a tenant's key.

use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use utoipa::OpenApi;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};

use super::{ReadinessCheck, Shutdown};
use crate::metrics::{self, Collect};
use crate::openapi::{SCRAPE_TOKEN, SERVICE_TOKEN, TENANT_KEY};
use crate::{Problem, Secret};

/// Longest a readiness check may take before the answer is "not ready".
const READINESS_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Clone)]
pub(crate) struct Operations {
    pub shutdown: Shutdown,
    pub readiness: ReadinessCheck,
    pub scrape_token: Option<Secret>,
    pub collect: Option<Collect>,
}

#[derive(OpenApi)]
#[openapi(paths(health, healthz, readyz, scrape,), components(schemas(Problem)))]
struct Shared;

/// A role's document with the operations, schemas and credentials every role shares.
fn document_with_shared(mut role: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    role.merge(Shared::openapi());
    let components = role.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        TENANT_KEY,
        SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new(crate::API_KEY_HEADER))),
    );
    let bearer = || SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build());
    components.add_security_scheme(SERVICE_TOKEN, bearer());
    components.add_security_scheme(SCRAPE_TOKEN, bearer());
    role
}

pub(super) fn routes(operations: Operations, openapi: Option<utoipa::openapi::OpenApi>) -> Router {
    let router = Router::new()
        .route("/health", get(health))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(scrape))
        .with_state(operations);
    match openapi {
        Some(document) => {
            let json = Bytes::from(
                serde_json::to_vec(&document_with_shared(document)).unwrap_or_default(),
            );
            router.route(
                "/openapi.json",
                get(move || async move { ([(header::CONTENT_TYPE, "application/json")], json) }),
            )
        }
        None => router,
    }
}

/// Whether this instance takes work: the original clients' health check.
#[utoipa::path(get, path = "/health", tag = "operations", responses(
    (status = 200, description = "Serving", body = String, content_type = "text/plain"),
    (status = 503, description = "Draining: this instance is stopping", body = String, content_type = "text/plain"),
))]
pub(crate) async fn health(State(operations): State<Operations>) -> (StatusCode, &'static str) {
    if operations.shutdown.is_draining() {
        (StatusCode::SERVICE_UNAVAILABLE, "draining")
    } else {
        (StatusCode::OK, "ok")
    }
}

/// Alive: the process serves.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses(
    (status = 200, description = "Alive", body = String, content_type = "text/plain"),
))]
pub(crate) async fn healthz() -> (StatusCode, &'static str) {
    (StatusCode::OK, "alive")
}

/// Ready: not draining, and its stores and upstreams answer.
#[utoipa::path(get, path = "/readyz", tag = "operations", responses(
    (status = 200, description = "Ready", body = String, content_type = "text/plain"),
    (status = 503, description = "Draining, or a store or upstream does not answer (named)", body = Problem, content_type = "application/problem+json"),
))]
pub(crate) async fn readyz(State(operations): State<Operations>) -> Response {
    if operations.shutdown.is_draining() {
        return Problem::unavailable("draining: this instance is stopping", 1).into_response();
    }
    match tokio::time::timeout(READINESS_TIMEOUT, (operations.readiness)()).await {
        Ok(Ok(())) => (StatusCode::OK, "ready").into_response(),
        Ok(Err(what)) => Problem::unavailable(format!("not ready: {what}"), 1).into_response(),
        Err(_) => Problem::unavailable(
            format!(
                "not ready: its checks did not answer within {} s",
                READINESS_TIMEOUT.as_secs()
            ),
            1,
        )
        .into_response(),
    }
}

/// The process's metrics in Prometheus text, after the role has read in what
/// it counts elsewhere; behind the scrape token when one is set.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    security((), ("scrape_token" = [])),
    responses(
        (status = 200, description = "Prometheus text exposition", body = String, content_type = "text/plain"),
        (status = 401, description = "A scrape token is set and was not presented", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub(crate) async fn scrape(State(operations): State<Operations>, headers: HeaderMap) -> Response {
    if let Some(token) = &operations.scrape_token
        && !crate::bearer(&headers).is_some_and(|presented| token.matches(presented))
    {
        return Problem::new(
            StatusCode::UNAUTHORIZED,
            "send the scrape token as `Authorization: Bearer TOKEN` (PROJECTOR_METRICS_TOKEN)",
        )
        .into_response();
    }
    if let Some(collect) = &operations.collect
        && tokio::time::timeout(READINESS_TIMEOUT, collect())
            .await
            .is_err()
    {
        tracing::warn!(
            "reading the store's counts for /metrics took over {} s; they are left as they were",
            READINESS_TIMEOUT.as_secs()
        );
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        metrics::render(),
    )
        .into_response()
}
