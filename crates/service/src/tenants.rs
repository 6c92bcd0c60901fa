//! Tenants and their API keys. A job or report belongs to the key that asked
//! for it, stored as its owner: an HMAC-SHA256 of the key under the
//! deployment's tenant secret, so that the stored owners alone reveal nothing
//! about the keys and cannot be checked against guesses without the secret.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};

use crate::guesses::Guesses;
use crate::{Problem, Secret};

/// The header every tenant sends its key in.
pub const API_KEY_HEADER: &str = "x-api-key";

/// Cheap to clone: every request of a role reads the same keys.
#[derive(Clone)]
pub struct Tenants(Arc<Keys>);

struct Keys {
    secret: Secret,
    keys: Vec<Secret>,
    /// The owner of each accepted key, in the order the keys were given.
    owners: Vec<String>,
    /// What earlier releases stored as the owner of each key (its plain SHA-256).
    legacy_owners: Vec<String>,
    /// Failed checks, limited per client and per key prefix.
    guesses: Guesses,
}

impl Tenants {
    pub fn new(secret: Secret, keys: &[Secret]) -> Self {
        let owners = keys
            .iter()
            .map(|key| owner(&secret, key.expose()))
            .collect();
        let legacy_owners = keys
            .iter()
            .map(|key| hex(&Sha256::digest(key.expose().as_bytes())))
            .collect();
        Tenants(Arc::new(Keys {
            secret,
            keys: keys.to_vec(),
            owners,
            legacy_owners,
            guesses: Guesses::default(),
        }))
    }

    /// The accepted key whose owner is `owner`, to act for that tenant.
    pub fn key_of(&self, owner: &str) -> Option<&Secret> {
        self.0
            .owners
            .iter()
            .position(|known| known == owner)
            .map(|index| &self.0.keys[index])
    }

    /// The owner of the first key given: what earlier releases did everything as.
    pub fn first_owner(&self) -> Option<&str> {
        self.0.owners.first().map(String::as_str)
    }

    /// The owner a key stands for, whether or not it is accepted.
    pub fn owner_of(&self, key: &str) -> String {
        owner(&self.0.secret, key)
    }

    /// Whether `owner` is the owner of an accepted key.
    pub fn is_accepted(&self, owner: &str) -> bool {
        self.0.owners.iter().any(|known| known == owner)
    }

    /// 64 bytes derived from the tenant secret for `purpose` (signing the
    /// pages' sessions): each purpose gets a key unrelated to the owners'.
    pub fn derived_key(&self, purpose: &str) -> [u8; 64] {
        let mut mac = Hmac::<Sha512>::new_from_slice(self.0.secret.expose().as_bytes())
            .expect("HMAC takes keys of any length");
        mac.update(b"projector derived key\0");
        mac.update(purpose.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// The owner of the request's `X-API-Key`, or the original's 401 answer
    /// (429 once `client` has guessed too often: [`Tenants::verify`]).
    pub fn authenticate(
        &self,
        headers: &HeaderMap,
        client: Option<IpAddr>,
    ) -> Result<String, Problem> {
        let invalid = || {
            Problem::new(
                StatusCode::UNAUTHORIZED,
                "send a valid API key in the X-API-Key header",
            )
            .with_error("Invalid API key")
        };
        let Some(key) = headers
            .get(API_KEY_HEADER)
            .and_then(|value| value.to_str().ok())
        else {
            return Err(invalid());
        };
        self.verify(key, client)?.ok_or_else(invalid)
    }

    /// The owner of `key` when it is accepted, `Ok(None)` when it is not;
    /// 429 instead while `client`, or keys of its prefix, are past their
    /// failed checks, whether or not the key is right.
    pub fn verify(&self, key: &str, client: Option<IpAddr>) -> Result<Option<String>, Problem> {
        self.0.guesses.admit(client, key)?;
        let owner = self.owner_of(key);
        if self.is_accepted(&owner) {
            return Ok(Some(owner));
        }
        self.0.guesses.failed(client, key)?;
        Ok(None)
    }

    /// (what earlier releases stored, what is stored now) for every key, to
    /// move their jobs and reports over.
    pub fn renamed_owners(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0
            .legacy_owners
            .iter()
            .zip(&self.0.owners)
            .map(|(legacy, owner)| (legacy.as_str(), owner.as_str()))
    }
}

/// The tenant a request is for, from its `X-API-Key`: an extractor for any
/// state that holds the [`Tenants`]; a missing or unknown key is the 401.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner(pub String);

impl<S> FromRequestParts<S> for Owner
where
    Tenants: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        Tenants::from_ref(state)
            .authenticate(&parts.headers, client_of(parts))
            .map(Owner)
    }
}

/// The address of the request's client, as the server recorded it.
fn client_of(parts: &Parts) -> Option<IpAddr> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(address)| address.ip())
}

/// The request's client address, when the server recorded one: an extractor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Client(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Client(client_of(parts)))
    }
}

impl std::fmt::Debug for Tenants {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "Tenants({} keys)", self.0.owners.len())
    }
}

fn owner(secret: &Secret, key: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(key.as_bytes());
    hex(&mac.finalize().into_bytes())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(key: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(API_KEY_HEADER, key.parse().unwrap());
        headers
    }

    #[test]
    fn owners_depend_on_the_secret_and_only_accepted_keys_authenticate() {
        let keys = [Secret::new("key-a"), Secret::new("key-b")];
        let tenants = Tenants::new(Secret::new("secret-1"), &keys);
        let elsewhere = Tenants::new(Secret::new("secret-2"), &keys);
        let owner_a = tenants.authenticate(&headers("key-a"), None).unwrap();
        assert_ne!(
            owner_a,
            tenants.authenticate(&headers("key-b"), None).unwrap()
        );
        assert_ne!(owner_a, elsewhere.owner_of("key-a"), "keyed by the secret");
        let plain_sha256 = hex(&Sha256::digest(b"key-a"));
        assert_ne!(owner_a, plain_sha256);
        assert_eq!(
            tenants.renamed_owners().next(),
            Some((plain_sha256.as_str(), owner_a.as_str()))
        );
        assert_eq!(tenants.key_of(&owner_a).map(Secret::expose), Some("key-a"));
        assert_eq!(tenants.first_owner(), Some(owner_a.as_str()));
        assert!(tenants.key_of(&plain_sha256).is_none());
        let refused = tenants.authenticate(&headers("key-c"), None).unwrap_err();
        assert_eq!(refused.status, 401);
        assert_eq!(refused.error, "Invalid API key");
        assert!(tenants.authenticate(&HeaderMap::new(), None).is_err());
        assert!(tenants.is_accepted(&owner_a));
        assert!(!tenants.is_accepted(&plain_sha256));
        assert_ne!(
            tenants.derived_key("sessions"),
            elsewhere.derived_key("sessions")
        );
        assert_ne!(
            tenants.derived_key("sessions"),
            tenants.derived_key("other")
        );
    }
}
