//! Errors as `application/problem+json` (RFC 9457), with the `error` member the
//! original clients read.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use database::{Classify, ErrorKind};
use serde::Serialize;

/// Seconds a client waits before retrying a store that did not answer.
pub const STORE_RETRY_AFTER_SECONDS: u32 = 2;

/// An error (RFC 9457): what went wrong and, for a broken rule, the field.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
    /// The same text as `detail`, under the name the original clients read.
    pub error: String,
    /// The request field that broke a rule (422).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Seconds after which a retry may succeed, sent as `Retry-After`.
    #[serde(skip)]
    pub retry_after: Option<u32>,
}

/// Longest detail: a client's input quoted back is never sent back whole.
const MAX_DETAIL_CHARS: usize = 600;
const MAX_FIELD_CHARS: usize = 200;

impl Problem {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        let detail = cut(detail.into(), MAX_DETAIL_CHARS);
        Problem {
            kind: "about:blank",
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            error: detail.clone(),
            detail,
            field: None,
            retry_after: None,
        }
    }

    /// 503 with `Retry-After`: a store or upstream is down, nothing was done.
    pub fn unavailable(detail: impl Into<String>, retry_after_seconds: u32) -> Self {
        let mut problem = Problem::new(StatusCode::SERVICE_UNAVAILABLE, detail);
        problem.retry_after = Some(retry_after_seconds);
        problem
    }

    /// The one answer to a store's failure, logged: damaged data is 500 and a
    /// full disk 507 (an operator must act; retrying cannot help), a conflict
    /// 409 and a refusal 422 (the caller's to change), anything else 503 with
    /// `Retry-After`, whose detail `unavailable` says what it meant for this
    /// request. `store` names the store ("job store").
    pub fn of_store<E>(error: &E, store: &str, unavailable: &str) -> Self
    where
        E: Classify + std::fmt::Display,
    {
        match error.kind() {
            ErrorKind::Damaged => {
                tracing::error!(%error, "the {store} is damaged: restore it from a backup");
                Problem::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("the {store} is damaged; its operator must restore it from a backup"),
                )
            }
            ErrorKind::Full => {
                tracing::error!(%error, "the {store}'s disk is full: free space on it");
                Problem::new(
                    StatusCode::INSUFFICIENT_STORAGE,
                    format!(
                        "the {store}'s disk is full; nothing was recorded. Its operator must free space on that disk; retry once they have"
                    ),
                )
            }
            ErrorKind::Conflict => Problem::new(StatusCode::CONFLICT, error.to_string()),
            ErrorKind::Refused => Problem::new(StatusCode::UNPROCESSABLE_ENTITY, error.to_string()),
            ErrorKind::Unavailable | ErrorKind::Misconfigured => {
                tracing::error!(%error, "{store} unavailable");
                Problem::unavailable(unavailable, STORE_RETRY_AFTER_SECONDS)
            }
        }
    }

    /// 429 with `Retry-After`: `detail` is given the whole seconds to wait
    /// (`wait`, rounded up, so that retrying then is admitted).
    pub fn too_many(wait: std::time::Duration, detail: impl FnOnce(u32) -> String) -> Self {
        let retry_after = u32::try_from(wait.as_secs()).unwrap_or(u32::MAX - 1) + 1;
        let mut problem = Problem::new(StatusCode::TOO_MANY_REQUESTS, detail(retry_after));
        problem.retry_after = Some(retry_after);
        problem
    }

    /// A rule broken by one field: 422 naming the field and the rule.
    pub fn invalid(field: impl Into<String>, rule: impl std::fmt::Display) -> Self {
        let field = cut(field.into(), MAX_FIELD_CHARS);
        let mut problem = Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("invalid {field}: {rule}"),
        );
        problem.field = Some(field);
        problem
    }

    /// A problem whose `error` keeps the exact text the original clients expect.
    pub fn with_error(mut self, error: impl Into<String>) -> Self {
        self.error = cut(error.into(), MAX_DETAIL_CHARS);
        self
    }
}

/// `text` cut to at most `max_chars` characters, marked when cut.
pub(crate) fn cut(text: String, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text,
    }
}

impl From<wire::ValidationError> for Problem {
    fn from(error: wire::ValidationError) -> Self {
        Problem::invalid(error.field, error.rule)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (status, body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_failure_is_answered_by_its_kind() {
        let timed_out = Problem::of_store(
            &sqlx::Error::PoolTimedOut,
            "job store",
            "the job store is unavailable; retry shortly",
        );
        assert_eq!(timed_out.status, 503);
        assert_eq!(timed_out.retry_after, Some(STORE_RETRY_AFTER_SECONDS));
        assert_eq!(
            timed_out.detail,
            "the job store is unavailable; retry shortly"
        );

        let damaged = database::Error::Damaged {
            store: "report store",
            location: "reports.sqlite".into(),
            detail: "database disk image is malformed".into(),
        };
        let answer = Problem::of_store(&damaged, "report store", "unused");
        assert_eq!(answer.status, 500);
        assert_eq!(answer.retry_after, None);
        assert_eq!(
            answer.detail,
            "the report store is damaged; its operator must restore it from a backup"
        );

        let behind = database::Error::SchemaBehind {
            store: "job store",
            location: "jobs.sqlite".into(),
            pending: 1,
        };
        assert_eq!(Problem::of_store(&behind, "job store", "retry").status, 503);
    }
}
