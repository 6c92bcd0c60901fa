//! `POST /reports`, `GET /reports/{id}` and `GET /reports`, each for the tenant
//! whose `X-API-Key` asks: a tenant sees only its own reports.

use api::wire::{ProjectionParameters, ReportList};
use api::{DecodeError, Encoding, Owner, Problem, Tenants, respond};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRef, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::ReportStore;

const LISTED: u32 = 100;

#[derive(Clone)]
struct AppState {
    store: ReportStore,
    tenants: Tenants,
}

impl FromRef<AppState> for Tenants {
    fn from_ref(state: &AppState) -> Tenants {
        state.tenants.clone()
    }
}

pub fn router(store: ReportStore, tenants: Tenants) -> Router {
    Router::new()
        .route("/reports", get(list).post(create))
        .route("/reports/{id}", get(show))
        .with_state(AppState { store, tenants })
}

fn encoding_of(headers: &HeaderMap) -> Encoding {
    Encoding::of_accept(
        headers
            .get(header::ACCEPT)
            .and_then(|value| value.to_str().ok()),
    )
}

fn unavailable(error: crate::Error) -> Response {
    tracing::error!(%error, "report store unavailable");
    Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "the report store is unavailable; retry shortly",
    )
    .into_response()
}

async fn create(
    State(state): State<AppState>,
    Owner(owner): Owner,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok());
    let parameters: ProjectionParameters =
        match api::decode(Encoding::of_content_type(content_type), &bytes) {
            Ok(parameters) => parameters,
            Err(error @ DecodeError::Malformed { .. }) => {
                return Problem::new(StatusCode::BAD_REQUEST, error.to_string()).into_response();
            }
            Err(DecodeError::WrongType { field, detail }) => {
                return Problem::invalid(field, detail).into_response();
            }
        };
    if let Err(error) = api::report_parameters(&parameters) {
        return Problem::from(error).into_response();
    }
    match state.store.create(&owner, &parameters).await {
        Ok(report) => {
            let mut response = respond(StatusCode::ACCEPTED, encoding_of(&headers), &report);
            if let Ok(location) = HeaderValue::from_str(&format!("/reports/{}", report.id)) {
                response.headers_mut().insert(header::LOCATION, location);
            }
            response
        }
        Err(error) => unavailable(error),
    }
}

async fn show(
    State(state): State<AppState>,
    Owner(owner): Owner,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    match state.store.get(&owner, &id).await {
        Ok(Some(report)) => respond(StatusCode::OK, encoding_of(&headers), &report),
        Ok(None) => Problem::new(
            StatusCode::NOT_FOUND,
            format!("no report {id:?} for this API key"),
        )
        .with_error("Report not found")
        .into_response(),
        Err(error) => unavailable(error),
    }
}

async fn list(State(state): State<AppState>, Owner(owner): Owner, headers: HeaderMap) -> Response {
    match state.store.list(&owner, LISTED).await {
        Ok(reports) => respond(
            StatusCode::OK,
            encoding_of(&headers),
            &ReportList { reports },
        ),
        Err(error) => unavailable(error),
    }
}
