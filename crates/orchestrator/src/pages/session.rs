//! Signing in to the pages: a person gives their tenant's API key once and
//! gets a session cookie, signed with a key derived from the tenant secret,
//! naming the tenant (the key's owner, never the key) and when it expires.
//! The cookie is HttpOnly and SameSite=Strict: scripts cannot read it, and no
//! other site's form can post with it.

use std::time::Duration;

use axum::extract::{FromRef, FromRequestParts, OriginalUri};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::SignedCookieJar;
use axum_extra::extract::cookie::{Cookie, Key, SameSite};

use crate::store::now_millis;

const COOKIE: &str = "projector_session";
/// How long a sign-in lasts.
const LIFETIME: Duration = Duration::from_secs(12 * 3600);

/// The tenant a page is for, from the session cookie; without a valid one the
/// person is sent to sign in, and brought back after.
pub struct Viewer(pub String);

impl<S> FromRequestParts<S> for Viewer
where
    Key: FromRef<S>,
    api::Tenants: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        let jar = SignedCookieJar::<Key>::from_headers(&parts.headers, Key::from_ref(state));
        let tenants = api::Tenants::from_ref(state);
        let owner = jar
            .get(COOKIE)
            .and_then(|cookie| owner_of(cookie.value(), now_millis()));
        match owner {
            Some(owner) if tenants.is_accepted(&owner) => Ok(Viewer(owner)),
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

/// The jar with a session for `owner` from now on.
pub fn signed_in(jar: SignedCookieJar, owner: &str) -> SignedCookieJar {
    let expires = now_millis() + LIFETIME.as_millis() as i64;
    let cookie = Cookie::build((COOKIE, format!("{owner}.{expires}")))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .max_age(time::Duration::seconds(LIFETIME.as_secs() as i64))
        .build();
    jar.add(cookie)
}

pub fn signed_out(jar: SignedCookieJar) -> SignedCookieJar {
    jar.remove(Cookie::build(COOKIE).path("/"))
}

/// The owner a session names, while it has not expired.
fn owner_of(value: &str, now: i64) -> Option<String> {
    let (owner, expires) = value.rsplit_once('.')?;
    let expires: i64 = expires.parse().ok()?;
    (now < expires).then(|| owner.to_string())
}

/// Where to go after signing in: a path of this site only, never another's.
pub fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(path) if path.starts_with('/') && !path.starts_with("//") && !path.contains('\\') => {
            path
        }
        _ => "/",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_names_its_owner_until_it_expires() {
        assert_eq!(owner_of("abc123.2000", 1999), Some("abc123".into()));
        assert_eq!(owner_of("abc123.2000", 2000), None);
        assert_eq!(owner_of("abc123", 0), None);
        assert_eq!(owner_of("abc123.soon", 0), None);
    }

    #[test]
    fn only_paths_of_this_site_are_followed_after_signing_in() {
        assert_eq!(safe_next(Some("/reports/7")), "/reports/7");
        for elsewhere in [
            "https://evil.example",
            "//evil.example",
            "/\\evil.example",
            "",
        ] {
            assert_eq!(safe_next(Some(elsewhere)), "/", "{elsewhere}");
        }
        assert_eq!(safe_next(None), "/");
    }
}
