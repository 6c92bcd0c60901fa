//! Signing in and out: the form with its token, the key checked (and its
//! guesses limited), the session recorded and ended.

use axum::Router;
use axum::extract::{Form, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum_extra::extract::SignedCookieJar;
use serde::Deserialize;

use super::session::{self, form_token, is_own_form, safe_next, signed_in, signed_out};
use super::{unavailable, views};
use crate::state::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/sign-in", get(form).post(sign_in))
        .route("/sign-out", post(sign_out))
}

#[derive(Deserialize)]
struct NextQuery {
    next: Option<String>,
}

async fn form(
    State(state): State<AppState>,
    jar: SignedCookieJar,
    Query(query): Query<NextQuery>,
) -> Response {
    let next = safe_next(query.next.as_deref()).to_string();
    sign_in_page(state, jar, &next, StatusCode::OK, None)
}

/// The sign-in form with a fresh token, and `error` beside it.
fn sign_in_page(
    state: AppState,
    jar: SignedCookieJar,
    next: &str,
    status: StatusCode,
    error: Option<&str>,
) -> Response {
    let (token, jar) = form_token(jar, state.secure_cookies);
    let page = views::sign_in(next, &token, error);
    (status, jar, Html(page.into_string())).into_response()
}

#[derive(Deserialize)]
struct SignIn {
    key: String,
    next: Option<String>,
    #[serde(default)]
    token: String,
}

async fn sign_in(
    State(state): State<AppState>,
    service::Client(client): service::Client,
    jar: SignedCookieJar,
    Form(form): Form<SignIn>,
) -> Response {
    let next = safe_next(form.next.as_deref()).to_string();
    if !is_own_form(&jar, &form.token) {
        let error = "This sign-in form expired or was not this site's own; sign in again here.";
        return sign_in_page(state, jar, &next, StatusCode::FORBIDDEN, Some(error));
    }
    let owner = match state.tenants.verify(form.key.trim(), client) {
        Ok(Some(owner)) => owner,
        Ok(None) => {
            let error = "That API key is not known here; check it and try again.";
            return sign_in_page(state, jar, &next, StatusCode::UNAUTHORIZED, Some(error));
        }
        Err(problem) => {
            let error = problem.detail.clone();
            let mut page = sign_in_page(
                state,
                jar,
                &next,
                StatusCode::TOO_MANY_REQUESTS,
                Some(&error),
            );
            if let Some(seconds) = problem.retry_after {
                page.headers_mut()
                    .insert(header::RETRY_AFTER, seconds.into());
            }
            return page;
        }
    };
    let session = match state.store.start_session(&owner, session::LIFETIME).await {
        Ok(session) => session,
        Err(error) => return unavailable(error),
    };
    (
        signed_in(jar, session, state.secure_cookies),
        Redirect::to(&next),
    )
        .into_response()
}

async fn sign_out(State(state): State<AppState>, jar: SignedCookieJar) -> Response {
    let (session, jar) = signed_out(jar);
    if let Some(session) = session
        && let Err(error) = state.store.end_session(&session).await
    {
        return unavailable(error);
    }
    (jar, Redirect::to("/sign-in")).into_response()
}
