//! Who may read portfolios: callers presenting the service token as a bearer
//! token, and anonymous callers only where the operator opted in for legacy
//! clients on a trusted network.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use service::{Problem, Secret};

#[derive(Debug, Clone)]
pub struct Access {
    /// The service token the workers present; `None` only with anonymous access.
    pub token: Option<Secret>,
    /// Callers without credentials are served (a wrong token is still refused).
    pub allow_anonymous: bool,
}

impl Access {
    pub fn token(token: Secret) -> Self {
        Access {
            token: Some(token),
            allow_anonymous: false,
        }
    }
}

pub(crate) async fn require_credential(
    State(access): State<Access>,
    request: Request,
    next: Next,
) -> Response {
    let headers = request.headers();
    let allowed = match (service::bearer(headers), &access.token) {
        (Some(presented), Some(token)) => token.matches(presented),
        // Credentials of another kind, or a token this service has none of.
        _ if headers.contains_key(header::AUTHORIZATION) => false,
        _ => access.allow_anonymous,
    };
    if allowed {
        return next.run(request).await;
    }
    let mut refused = Problem::new(
        StatusCode::UNAUTHORIZED,
        "send the data service's token as `Authorization: Bearer TOKEN` (PROJECTOR_DATASVC_TOKEN)",
    )
    .into_response();
    refused.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"projector-datasvc\""),
    );
    refused
}
