//! What every request passes before a role sees it, and every error answer
//! after: the size limits and the body deadline answer problem+json, and an
//! error the framework answers in plain text (no such route, wrong method, a
//! path that does not decode) is turned into problem+json too. Pages (HTML)
//! keep their own error answers.

use std::time::Duration;

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::Problem;

/// Longest request target (path and query) answered; longer gets 414.
const MAX_URI_BYTES: usize = 8 * 1024;
/// Most header bytes (names and values) answered; more gets 431.
const MAX_HEADER_BYTES: usize = 16 * 1024;
/// Most headers answered; more gets 431.
pub(super) const MAX_HEADERS: usize = 64;
/// Most bytes a connection buffers while a request's head arrives: the
/// longest target and headers answered above, with room for their framing.
/// A longer head (an invented method of 400 KB, say) is refused by the
/// listener (431) before it is read whole.
pub(super) const MAX_HEAD_BYTES: usize = 32 * 1024;

/// Longest echo of a client's input in an error message.
const MAX_ECHO_CHARS: usize = 200;
/// Most bytes of a framework's plain-text error kept as the problem's detail.
const MAX_PLAIN_ERROR_BYTES: usize = 4 * 1024;

#[derive(Debug, Clone, Copy)]
pub(super) struct Rules {
    pub max_bytes: usize,
    /// For the whole body to arrive.
    pub deadline: Duration,
    /// For the answer to start; the timeout layer answers a bare 503 beyond.
    pub answer_within: Duration,
}

/// Checks the request's size, reads its whole body within the deadline, and
/// answers every error as problem+json.
pub(super) async fn guard(State(rules): State<Rules>, request: Request, next: Next) -> Response {
    // Kept for the words of an error answer; cloning shares the bytes.
    let (method, uri) = (request.method().clone(), request.uri().clone());
    let response = match read_whole(request, rules).await {
        Ok(request) => next.run(request).await,
        Err(problem) => return closing(problem),
    };
    if response.status().is_client_error() || response.status().is_server_error() {
        return as_problem(response, &method, &echo(&uri.to_string()), rules).await;
    }
    response
}

/// A refusal of a request whose rest is unread: the connection cannot carry
/// another one, and the client must know not to reuse it.
fn closing(problem: Problem) -> Response {
    let mut refused = problem.into_response();
    refused
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    refused
}

async fn read_whole(request: Request, rules: Rules) -> Result<Request, Problem> {
    let target_bytes = request
        .uri()
        .path_and_query()
        .map_or(0, |target| target.as_str().len());
    if target_bytes > MAX_URI_BYTES {
        return Err(Problem::new(
            StatusCode::URI_TOO_LONG,
            format!(
                "the request target is longer than {MAX_URI_BYTES} bytes; send the data in the body"
            ),
        ));
    }
    let headers = request.headers();
    let header_bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if headers.len() > MAX_HEADERS || header_bytes > MAX_HEADER_BYTES {
        return Err(Problem::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            format!(
                "the request has {} headers of {header_bytes} bytes; at most {MAX_HEADERS} headers of {MAX_HEADER_BYTES} bytes in all are accepted",
                headers.len()
            ),
        ));
    }
    let too_large = || {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body is larger than {} bytes", rules.max_bytes),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > rules.max_bytes as u64) {
        return Err(too_large());
    }
    let (parts, body) = request.into_parts();
    let bytes = match tokio::time::timeout(rules.deadline, to_bytes(body, rules.max_bytes)).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(_)) => return Err(too_large()),
        Err(_) => {
            return Err(Problem::new(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the request body did not arrive within {} s; send it at once",
                    rules.deadline.as_secs_f64()
                ),
            ));
        }
    };
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

async fn as_problem(
    response: Response,
    method: &axum::http::Method,
    target: &str,
    rules: Rules,
) -> Response {
    // A problem, or a page for a person (a form beside its errors), is
    // answered as the role wrote it.
    let deliberate = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value == "application/problem+json" || value.starts_with("text/html"));
    if deliberate {
        return response;
    }
    let status = response.status();
    let allow = response.headers().get(header::ALLOW).cloned();
    let plain = to_bytes(response.into_body(), MAX_PLAIN_ERROR_BYTES)
        .await
        .unwrap_or_default();
    let detail = match status {
        StatusCode::NOT_FOUND => format!("no resource at {target}; check the path"),
        StatusCode::METHOD_NOT_ALLOWED => format!(
            "{} is not allowed on {target}; allowed: {}",
            echo_method(method),
            allow
                .as_ref()
                .and_then(|value| value.to_str().ok())
                .unwrap_or("none")
        ),
        StatusCode::SERVICE_UNAVAILABLE if plain.is_empty() => format!(
            "{method} {target} was not answered within {} s; try again later",
            rules.answer_within.as_secs_f64()
        ),
        _ => echo(String::from_utf8_lossy(&plain).trim()),
    };
    let mut answer = Problem::new(status, detail).into_response();
    if let Some(allow) = allow {
        answer.headers_mut().insert(header::ALLOW, allow);
    }
    answer
}

/// A request's method as it may be quoted back: a method of HTTP's own, or
/// the first characters of one a client made up.
fn echo_method(method: &axum::http::Method) -> String {
    const MAX_METHOD_ECHO_CHARS: usize = 32;
    crate::problem::cut(method.to_string(), MAX_METHOD_ECHO_CHARS)
}

/// A client's input as it may be quoted back: at most `MAX_ECHO_CHARS`
/// characters, marked when cut.
pub fn echo(input: &str) -> String {
    crate::problem::cut(input.to_string(), MAX_ECHO_CHARS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_cuts_long_input_on_a_character_boundary() {
        assert_eq!(echo("short"), "short");
        let long = "é".repeat(MAX_ECHO_CHARS + 50);
        let echoed = echo(&long);
        assert_eq!(echoed.chars().count(), MAX_ECHO_CHARS + 1);
        assert!(echoed.ends_with('…'));
    }
}
