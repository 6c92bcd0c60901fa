//! The pages people use, behind a sign-in with their tenant's API key: the
//! list of reports (`/`), the request form (`/reports/new`), and each report
//! (`/reports/{id}` when a browser asks for HTML) with live progress while it
//! runs, then its fan chart, headline numbers and downloads; a cancel button
//! while it runs. A tenant sees and cancels only its own reports.

mod chart;
mod session;
mod sign_in;
mod views;

use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use serde::Deserialize;
use wire::{ProjectionParameters, ProjectionResult};

use crate::follow::record;
use crate::report::{ReportStatus, job_id_of};
use crate::state::{AppState, Origins};
use crate::store::{ListFilter, ReportRow};
pub use session::Viewer;
use session::same_origin;
use views::{FieldError, ReportForm};

/// Reports on one page of the list.
const PAGE: u32 = 20;
/// How soon a browser opens a report's events again when they end early.
const RECONNECT: Duration = Duration::from_secs(1);

pub fn routes(origins: Origins) -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route("/reports/new", get(new_form).post(create))
        .route("/reports/{id}/events", get(events))
        .route("/reports/{id}/cancel", post(cancel))
        .route("/reports/{id}/result.json", get(result_json))
        .route("/reports/{id}/result.csv", get(result_csv))
        .merge(sign_in::routes())
        .layer(axum::middleware::from_fn_with_state(origins, same_origin))
}

/// A page that says what went wrong and what to do.
fn message(status: StatusCode, heading: &str, text: &str) -> Response {
    let page = views::layout(
        heading,
        true,
        maud::html! {},
        maud::html! { h1 { (heading) } p { (text) } p { a href="/" { "Back to your reports" } } },
    );
    (status, Html(page.into_string())).into_response()
}

fn unavailable(error: crate::Error) -> Response {
    tracing::error!(%error, "report store unavailable");
    message(
        StatusCode::SERVICE_UNAVAILABLE,
        "Reports are unavailable",
        "The report store does not answer; try again in a moment.",
    )
}

fn not_found() -> Response {
    message(
        StatusCode::NOT_FOUND,
        "No such report",
        "There is no report at this address for the key you signed in with.",
    )
}

/// The viewer's report `id`, or the answer to give instead.
async fn report_of(state: &AppState, owner: &str, id: &str) -> Result<ReportRow, Response> {
    match state.store.row(owner, id).await {
        Ok(Some(row)) => Ok(row),
        Ok(None) => Err(not_found()),
        Err(error) => Err(unavailable(error)),
    }
}

#[derive(Deserialize)]
struct ListQuery {
    status: Option<String>,
    customer: Option<String>,
    /// `created_at` and id of the last report of the previous page.
    before: Option<String>,
}

async fn index(
    State(state): State<AppState>,
    Viewer(owner): Viewer,
    Query(query): Query<ListQuery>,
) -> Response {
    let filter = ListFilter {
        status: query.status.filter(|status| !status.is_empty()),
        customer_id: query
            .customer
            .map(|customer| customer.trim().to_string())
            .filter(|customer| !customer.is_empty()),
    };
    let before = query.before.as_deref().and_then(|before| {
        let (at, id) = before.split_once('_')?;
        Some((at.parse::<i64>().ok()?, id.to_string()))
    });
    let rows = match state
        .store
        .page(&owner, &filter, before.as_ref(), PAGE)
        .await
    {
        Ok(rows) => rows,
        Err(error) => return unavailable(error),
    };
    let older = (rows.len() == PAGE as usize)
        .then(|| rows.last())
        .flatten()
        .map(|last| {
            let pairs = [
                ("status", filter.status.clone()),
                ("customer", filter.customer_id.clone()),
                ("before", Some(format!("{}_{}", last.created_at, last.id))),
            ];
            let query: Vec<String> = pairs
                .into_iter()
                .filter_map(|(name, value)| {
                    let value = value?;
                    let encoded = percent_encoding::utf8_percent_encode(
                        &value,
                        percent_encoding::NON_ALPHANUMERIC,
                    );
                    Some(format!("{name}={encoded}"))
                })
                .collect();
            format!("/?{}", query.join("&"))
        });
    Html(views::list(&rows, &filter, older).into_string()).into_response()
}

async fn new_form(_viewer: Viewer) -> Html<String> {
    let form = ReportForm {
        time_horizon_years: "30".into(),
        risk_profile: "balanced".into(),
        ..ReportForm::default()
    };
    Html(views::new_report(&form, None).into_string())
}

async fn create(
    State(state): State<AppState>,
    Viewer(owner): Viewer,
    Form(form): Form<ReportForm>,
) -> Response {
    let parameters = match parameters_of(&form) {
        Ok(parameters) => parameters,
        Err(error) => return invalid(&form, &error),
    };
    if let Err(error) = wire::report_parameters(&parameters, state.max_paths) {
        let error = FieldError {
            field: error.field,
            message: error.rule,
        };
        return invalid(&form, &error);
    }
    match state.store.create(&owner, &parameters).await {
        Ok(report) => Redirect::to(&format!("/reports/{}", report.id)).into_response(),
        Err(error) => unavailable(error),
    }
}

fn invalid(form: &ReportForm, error: &FieldError) -> Response {
    let page = views::new_report(form, Some(error));
    (StatusCode::UNPROCESSABLE_ENTITY, Html(page.into_string())).into_response()
}

/// The form's text as parameters; a field that is not a number is named.
fn parameters_of(form: &ReportForm) -> Result<ProjectionParameters, FieldError> {
    let number = |field: &str, text: &str, example: &str| -> Result<Option<f64>, FieldError> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(None);
        }
        text.parse::<f64>().map(Some).map_err(|_| FieldError {
            field: field.into(),
            message: format!("must be a number, such as {example}"),
        })
    };
    let horizon = form.time_horizon_years.trim();
    let time_horizon_years = horizon.parse::<u64>().map_err(|_| FieldError {
        field: "time_horizon_years".into(),
        message: "must be a whole number of years, such as 30".into(),
    })?;
    Ok(ProjectionParameters {
        customer_id: form.customer_id.trim().to_string(),
        time_horizon_years,
        risk_profile: form.risk_profile.clone(),
        monthly_contribution: number("monthly_contribution", &form.monthly_contribution, "500")?,
        annual_fee: number("annual_fee", &form.annual_fee, "0.005")?,
        inflation: number("inflation", &form.inflation, "0.025")?,
        ..ProjectionParameters::default()
    })
}

/// The report's page, for `GET /reports/{id}` from a browser.
pub async fn report_page(state: &AppState, viewer: Viewer, id: &str) -> Response {
    let row = match report_of(state, &viewer.0, id).await {
        Ok(row) => row,
        Err(response) => return response,
    };
    let progress = if row.status == ReportStatus::Processing {
        current_progress(state, &viewer.0, &row).await
    } else {
        0.0
    };
    Html(views::report(&row, progress).into_string()).into_response()
}

/// The job's progress as the gateway has it now; 0 when it cannot say.
async fn current_progress(state: &AppState, owner: &str, row: &ReportRow) -> f64 {
    let Some(key) = state.tenants.key_of(owner) else {
        return 0.0;
    };
    match state.gateway.status(key, &job_id_of(&row.id)).await {
        Ok(job) => job.progress,
        Err(_) => 0.0,
    }
}

/// The report's job events, relayed from the gateway for the page's script;
/// the end is recorded before it is relayed, so the page the script fetches
/// then shows it.
async fn events(
    State(state): State<AppState>,
    Viewer(owner): Viewer,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
) -> Response {
    let row = match report_of(&state, &owner, &id).await {
        Ok(row) => row,
        Err(response) => return response,
    };
    let retry_soon = || {
        let again = futures_util::stream::once(async {
            Ok::<_, Infallible>(Event::default().retry(RECONNECT).comment("not started yet"))
        });
        Sse::new(again).into_response()
    };
    let last_event_id = headers
        .get("last-event-id")
        .and_then(|value| value.to_str().ok());
    if row.status.is_final() {
        // A page that has seen events has seen the end: 204 stops it. One
        // rendered just before the end learns it here.
        if last_event_id.is_some() {
            return StatusCode::NO_CONTENT.into_response();
        }
        let progress = if row.status == ReportStatus::Completed {
            1.0
        } else {
            0.0
        };
        let data = serde_json::json!({"status": row.status.as_str(), "progress": progress});
        let ended = Event::default()
            .event(row.status.as_str())
            .data(data.to_string());
        return Sse::new(futures_util::stream::once(async {
            Ok::<_, Infallible>(ended)
        }))
        .into_response();
    }
    let Some(key) = state.tenants.key_of(&owner) else {
        return not_found();
    };
    let response = match state
        .gateway
        .events(key, &job_id_of(&row.id), last_event_id)
        .await
    {
        Ok(response) => response,
        // Not submitted yet, or the gateway is away: the browser asks again.
        Err(_) => return retry_soon(),
    };
    let (store, report_id) = (state.store.clone(), row.id.clone());
    let status = row.status;
    let relayed = response
        .bytes_stream()
        .eventsource()
        .take_while(|event| std::future::ready(event.is_ok()))
        .filter_map(move |event| {
            let (store, report_id) = (store.clone(), report_id.clone());
            async move {
                let event = event.ok()?;
                let ended = event
                    .event
                    .parse::<ReportStatus>()
                    .is_ok_and(ReportStatus::is_final);
                if ended
                    && let Ok(job) = serde_json::from_str(&event.data)
                    && let Err(error) = record(&store, &report_id, status, job).await
                {
                    tracing::warn!(report = %report_id, %error, "cannot record the report's end; the dispatcher will");
                }
                Some(Ok::<_, Infallible>(
                    Event::default()
                        .event(event.event)
                        .id(event.id)
                        .retry(RECONNECT)
                        .data(event.data),
                ))
            }
        });
    Sse::new(relayed)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// Cancels the report: at once if its job was not submitted, otherwise its
/// job too, wherever it runs.
async fn cancel(
    State(state): State<AppState>,
    Viewer(owner): Viewer,
    Path(id): Path<String>,
) -> Response {
    let row = match state.store.cancel(&owner, &id).await {
        Ok(Some(row)) => row,
        Ok(None) => return not_found(),
        Err(error) => return unavailable(error),
    };
    if row.status == ReportStatus::Cancelled
        && let Some(key) = state.tenants.key_of(&owner)
        && let Err(error) = state.gateway.cancel(key, &job_id_of(&row.id)).await
    {
        tracing::warn!(report = %row.id, ?error, "cannot cancel the report's job now");
    }
    Redirect::to(&format!("/reports/{}", row.id)).into_response()
}

async fn result_of(state: &AppState, owner: &str, id: &str) -> Result<ProjectionResult, Response> {
    let row = report_of(state, owner, id).await?;
    row.result
        .as_deref()
        .and_then(|json| serde_json::from_str(json).ok())
        .ok_or_else(|| {
            message(
                StatusCode::CONFLICT,
                "No result yet",
                "This report has no result yet; download it once it has completed.",
            )
        })
}

fn download(content_type: &str, file_name: String, body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file_name}\""),
            ),
        ],
        body,
    )
        .into_response()
}

async fn result_json(
    State(state): State<AppState>,
    Viewer(owner): Viewer,
    Path(id): Path<String>,
) -> Response {
    match result_of(&state, &owner, &id).await {
        Ok(result) => download(
            "application/json",
            format!("report-{id}.json"),
            serde_json::to_string_pretty(&result).unwrap_or_default(),
        ),
        Err(response) => response,
    }
}

async fn result_csv(
    State(state): State<AppState>,
    Viewer(owner): Viewer,
    Path(id): Path<String>,
) -> Response {
    match result_of(&state, &owner, &id).await {
        Ok(result) => download("text/csv", format!("report-{id}.csv"), csv_of(&result)),
        Err(response) => response,
    }
}

/// One row per year: the nominal percentiles, then the real ones.
fn csv_of(result: &ProjectionResult) -> String {
    let mut csv = String::from(
        "year,nominal_p5,nominal_p25,nominal_p50,nominal_p75,nominal_p95,real_p5,real_p25,real_p50,real_p75,real_p95\n",
    );
    for year in &result.yearly {
        let (nominal, real) = (
            year.nominal.unwrap_or_default(),
            year.real.unwrap_or_default(),
        );
        csv.push_str(&format!(
            "{},{:.2},{:.2},{:.2},{:.2},{:.2},{:.2},{:.2},{:.2},{:.2},{:.2}\n",
            year.year,
            nominal.p5,
            nominal.p25,
            nominal.p50,
            nominal.p75,
            nominal.p95,
            real.p5,
            real.p25,
            real.p50,
            real.p75,
            real.p95
        ));
    }
    csv
}
