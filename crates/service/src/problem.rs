//! Errors as `application/problem+json` (RFC 9457), with the `error` member the
//! original clients read.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

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
