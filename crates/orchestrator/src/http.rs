//! `POST /reports`, `GET /reports/{id}` and `GET /reports`.

use api::wire::{ProjectionParameters, ReportList};
use api::{DecodeError, Encoding, Problem, respond};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::ReportStore;

const LISTED: u32 = 100;

pub fn router(store: ReportStore) -> Router {
    Router::new()
        .route("/reports", get(list).post(create))
        .route("/reports/{id}", get(show))
        .with_state(store)
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

async fn create(State(store): State<ReportStore>, headers: HeaderMap, bytes: Bytes) -> Response {
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
    match store.create(&parameters).await {
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
    State(store): State<ReportStore>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    match store.get(&id).await {
        Ok(Some(report)) => respond(StatusCode::OK, encoding_of(&headers), &report),
        Ok(None) => Problem::new(StatusCode::NOT_FOUND, format!("no report {id:?}"))
            .with_error("Report not found")
            .into_response(),
        Err(error) => unavailable(error),
    }
}

async fn list(State(store): State<ReportStore>, headers: HeaderMap) -> Response {
    match store.list(LISTED).await {
        Ok(reports) => respond(
            StatusCode::OK,
            encoding_of(&headers),
            &ReportList { reports },
        ),
        Err(error) => unavailable(error),
    }
}
