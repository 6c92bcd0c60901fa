//! `POST /reports`, `GET /reports/{id}` and `GET /reports`, each for the tenant
//! whose `X-API-Key` asks: a tenant sees only its own reports. The pages for
//! people (`pages`) share the state and answer `GET /reports/{id}` for a browser.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum_extra::extract::cookie::Key;
use service::{Accepts, Decoded, Owner, Problem, Tenants, respond};
use wire::{ProjectionParameters, ReportList};

use crate::ReportStore;
use crate::gateway_client::GatewayClient;
use crate::pages::Viewer;
use crate::state::{AppState, Origins};

const LISTED: u32 = 100;

/// The API and the pages, taking reports of at most `config.max_paths` paths.
pub fn router(
    store: ReportStore,
    tenants: Tenants,
    gateway: GatewayClient,
    config: &crate::DispatchConfig,
) -> Router {
    let cookies = Key::from(&tenants.derived_key("page sessions"));
    Router::new()
        .route("/reports", get(list).post(create))
        .route("/reports/{id}", get(show))
        .merge(crate::pages::routes(Origins {
            public: config.public_origin.clone(),
        }))
        .with_state(AppState {
            store,
            tenants,
            gateway,
            max_paths: config.max_paths,
            cookies,
            secure_cookies: config.secure_cookies,
        })
}

fn unavailable(error: crate::Error) -> Problem {
    Problem::of_store(
        &error,
        "report store",
        "the report store is unavailable; retry shortly",
    )
}

/// Asks for a report: kept at once, dispatched to the gateway from an outbox.
#[utoipa::path(post, path = "/reports", tag = "reports",
    security(("tenant_key" = [])),
    request_body(content = ProjectionParameters, content_type = "application/json"),
    responses(
        (status = 202, description = "Kept; `Location` names the report", body = wire::Report),
        (status = 422, description = "A field breaks a rule", body = Problem, content_type = "application/problem+json"),
        service::openapi::StoreFailures,
        service::openapi::TenantRefusals,
    ),
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    Owner(owner): Owner,
    Accepts(encoding): Accepts,
    Decoded(parameters): Decoded<ProjectionParameters>,
) -> Result<Response, Problem> {
    wire::report_parameters(&parameters, state.max_paths)?;
    let report = state
        .store
        .create(&owner, &parameters)
        .await
        .map_err(unavailable)?;
    let mut response = respond(StatusCode::ACCEPTED, encoding, &report);
    if let Ok(location) = HeaderValue::from_str(&format!("/reports/{}", report.id)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// A report: its page for a browser (which asks for HTML), its body for an
/// API client.
#[utoipa::path(get, path = "/reports/{id}", tag = "reports",
    security(("tenant_key" = [])),
    params(("id" = String, Path, description = "The report's id")),
    responses(
        (status = 200, description = "The report, with its result once done", body = wire::Report),
        service::openapi::NotFound,
        service::openapi::StoreFailures,
        service::openapi::TenantRefusals,
    ),
)]
pub(crate) async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Accepts(encoding): Accepts,
    headers: HeaderMap,
    service::Client(client): service::Client,
    viewer: Result<Viewer, Response>,
) -> Response {
    let wants_page = headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"))
        && !headers.contains_key(service::API_KEY_HEADER);
    if wants_page {
        return match viewer {
            Ok(viewer) => crate::pages::report_page(&state, viewer, &id).await,
            Err(sign_in) => sign_in,
        };
    }
    let owner = match state.tenants.authenticate(&headers, client) {
        Ok(owner) => owner,
        Err(problem) => return problem.into_response(),
    };
    match state.store.get(&owner, &id).await {
        Ok(Some(report)) => respond(StatusCode::OK, encoding, &report),
        Ok(None) => Problem::new(
            StatusCode::NOT_FOUND,
            format!("no report {id:?} for this API key"),
        )
        .with_error("Report not found")
        .into_response(),
        Err(error) => unavailable(error).into_response(),
    }
}

/// The key's latest reports, newest first.
#[utoipa::path(get, path = "/reports", tag = "reports",
    security(("tenant_key" = [])),
    responses(
        (status = 200, description = "Up to 100 reports", body = ReportList),
        service::openapi::StoreFailures,
        service::openapi::TenantRefusals,
    ),
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    Owner(owner): Owner,
    Accepts(encoding): Accepts,
) -> Result<Response, Problem> {
    let reports = state
        .store
        .list(&owner, LISTED)
        .await
        .map_err(unavailable)?;
    Ok(respond(StatusCode::OK, encoding, &ReportList { reports }))
}
