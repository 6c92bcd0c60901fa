//! Signing in to the pages: a person gives their tenant's API key once and
//! gets a session, kept in the report store, whose id a cookie carries. The
//! cookie is signed with a key derived from the tenant secret, HttpOnly,
//! SameSite=Strict, and `Secure` behind TLS; signing out deletes the session,
//! so a copy of the cookie signs nobody in afterwards.
//!
//! Forms that change state are refused when a browser says they come from
//! another site (`Sec-Fetch-Site`, `Origin`), and the sign-in form carries a
//! token bound to a cookie set with the form, so that no other site can sign
//! a browser in to the attacker's tenant.

use std::time::Duration;

use axum::extract::{FromRequestParts, OriginalUri, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::SignedCookieJar;
use axum_extra::extract::cookie::{Cookie, Key, SameSite};

use crate::state::{AppState, Origins};

const COOKIE: &str = "projector_session";
/// The sign-in form's own cookie, holding the token the form carries.
const SIGN_IN_COOKIE: &str = "projector_sign_in";
/// How long a sign-in lasts.
pub(super) const LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// How long a sign-in form may be left open.
const FORM_LIFETIME: Duration = Duration::from_secs(3600);

/// The tenant a page is for, from the session its cookie names; without a
/// live one the person is sent to sign in, and brought back after.
pub struct Viewer(pub String);

impl FromRequestParts<AppState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let jar = SignedCookieJar::<Key>::from_headers(&parts.headers, state.cookies.clone());
        let owner = match jar.get(COOKIE) {
            Some(cookie) => state
                .store
                .session_owner(cookie.value())
                .await
                .map_err(super::unavailable)?,
            None => None,
        };
        match owner {
            Some(owner) if state.tenants.is_accepted(&owner) => Ok(Viewer(owner)),
            _ => {
                let here = OriginalUri::from_request_parts(parts, state)
                    .await
                    .map(|uri| uri.0.to_string())
                    .unwrap_or_else(|_| "/".into());
                let next = percent_encoding::utf8_percent_encode(
                    &here,
                    percent_encoding::NON_ALPHANUMERIC,
                );
                Err(Redirect::to(&format!("/sign-in?next={next}")).into_response())
            }
        }
    }
}

fn cookie(name: &'static str, value: String, lifetime: Duration, secure: bool) -> Cookie<'static> {
    Cookie::build((name, value))
        .path("/")
        .http_only(true)
        .secure(secure)
        .same_site(SameSite::Strict)
        .max_age(time::Duration::seconds(lifetime.as_secs() as i64))
        .build()
}

/// The jar with the cookie of session `id`, and the sign-in form's cookie gone.
pub fn signed_in(jar: SignedCookieJar, id: String, secure: bool) -> SignedCookieJar {
    jar.remove(Cookie::build(SIGN_IN_COOKIE).path("/"))
        .add(cookie(COOKIE, id, LIFETIME, secure))
}

/// The session the jar names, and the jar without its cookie.
pub fn signed_out(jar: SignedCookieJar) -> (Option<String>, SignedCookieJar) {
    let session = jar.get(COOKIE).map(|cookie| cookie.value().to_string());
    (session, jar.remove(Cookie::build(COOKIE).path("/")))
}

/// A new sign-in form's token, and the jar with the cookie it is bound to.
pub fn form_token(jar: SignedCookieJar, secure: bool) -> (String, SignedCookieJar) {
    let token = uuid::Uuid::new_v4().simple().to_string();
    let jar = jar.add(cookie(SIGN_IN_COOKIE, token.clone(), FORM_LIFETIME, secure));
    (token, jar)
}

/// Whether a posted sign-in form carries the token of this browser's form.
pub fn is_own_form(jar: &SignedCookieJar, token: &str) -> bool {
    jar.get(SIGN_IN_COOKIE)
        .is_some_and(|cookie| !token.is_empty() && cookie.value() == token)
}

/// Where to go after signing in: a path of this site only, never another's.
/// Decoded already, it must start with one `/` and hold only visible ASCII
/// without `\`: a tab, a newline or a second slash could lead off-site.
pub fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && path
                    .bytes()
                    .all(|byte| byte.is_ascii_graphic() && byte != b'\\') =>
        {
            path
        }
        _ => "/",
    }
}

/// Refuses a form posted to the pages from another site: the browser says so
/// in `Sec-Fetch-Site`, or its `Origin` is neither the host it posts to nor
/// the public origin. Reads (GET, HEAD) pass.
pub async fn same_origin(State(origins): State<Origins>, request: Request, next: Next) -> Response {
    let reading = matches!(*request.method(), Method::GET | Method::HEAD);
    if reading || is_same_origin(request.headers(), origins.public.as_deref()) {
        return next.run(request).await;
    }
    super::message(
        StatusCode::FORBIDDEN,
        "Refused",
        "This form was sent from another site. Open Projector's own page and send it from there.",
    )
}

fn is_same_origin(headers: &HeaderMap, public: Option<&str>) -> bool {
    let text = |name| headers.get(name).and_then(|value| value.to_str().ok());
    if let Some(site) = text("sec-fetch-site")
        && !matches!(site, "same-origin" | "none")
    {
        return false;
    }
    match (text(header::ORIGIN.as_str()), text(header::HOST.as_str())) {
        (None, _) => true,
        (Some(origin), _) if Some(origin) == public => true,
        (Some(origin), Some(host)) => {
            let authority = origin
                .strip_prefix("https://")
                .or_else(|| origin.strip_prefix("http://"));
            authority == Some(host)
        }
        (Some(_), None) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_of_this_site_are_followed_after_signing_in() {
        assert_eq!(safe_next(Some("/reports/7")), "/reports/7");
        assert_eq!(
            safe_next(Some("/?status=failed&x=%2F")),
            "/?status=failed&x=%2F"
        );
        for elsewhere in [
            "https://evil.example",
            "//evil.example",
            "/\\evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "/\r\nSet-Cookie: x=y",
            "/ /evil.example",
            "/caf\u{e9}",
            "",
        ] {
            assert_eq!(safe_next(Some(elsewhere)), "/", "{elsewhere:?}");
        }
        assert_eq!(safe_next(None), "/");
    }

    #[test]
    fn a_form_from_another_site_is_told_apart() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut map = HeaderMap::new();
            for (name, value) in pairs {
                map.insert(*name, value.parse().unwrap());
            }
            map
        };
        let same = |pairs: &[(&'static str, &'static str)]| is_same_origin(&headers(pairs), None);
        assert!(same(&[("host", "127.0.0.1:3000")]));
        assert!(same(&[
            ("host", "127.0.0.1:3000"),
            ("origin", "http://127.0.0.1:3000"),
            ("sec-fetch-site", "same-origin"),
        ]));
        assert!(same(&[
            ("host", "reports.example"),
            ("origin", "https://reports.example"),
        ]));
        assert!(!same(&[
            ("host", "127.0.0.1:3000"),
            ("origin", "http://evil.example"),
        ]));
        assert!(!same(&[("host", "127.0.0.1:3000"), ("origin", "null")]));
        assert!(!same(&[
            ("host", "127.0.0.1:3000"),
            ("sec-fetch-site", "cross-site"),
        ]));
        let behind_a_proxy = headers(&[
            ("host", "10.0.0.5:3000"),
            ("origin", "https://reports.example"),
        ]);
        assert!(!is_same_origin(&behind_a_proxy, None));
        assert!(is_same_origin(
            &behind_a_proxy,
            Some("https://reports.example")
        ));
    }
}
