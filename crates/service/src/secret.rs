//! Credentials: never printed, compared without leaking their bytes through timing.

use axum::http::{HeaderMap, header};
use sha2::{Digest, Sha256};

/// The credential a request presents as `Authorization: Bearer TOKEN`.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// A new credential: 24 random bytes from the operating system's generator,
/// as 48 hexadecimal digits.
pub fn generate_key() -> String {
    use rand::Rng;
    let bytes: [u8; 24] = rand::rng().random();
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// A credential a client presents (an API key, a service token).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The credential an option gave, if it gave a non-empty one (an empty
    /// flag overrides a variable to mean "none").
    pub fn given(value: Option<&str>) -> Option<Secret> {
        value.filter(|value| !value.is_empty()).map(Secret::new)
    }

    /// The credential itself, to send it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `candidate` is this credential. Digests are compared, so the time
    /// taken says nothing about how much of the credential a guess got right.
    pub fn matches(&self, candidate: &str) -> bool {
        Sha256::digest(self.0.as_bytes()) == Sha256::digest(candidate.as_bytes())
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("Secret(redacted)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_matches_only_itself_and_never_prints() {
        let secret = Secret::new("s3cret-token");
        assert!(secret.matches("s3cret-token"));
        assert!(!secret.matches("s3cret-toke"));
        assert!(!secret.matches(""));
        assert_eq!(format!("{secret:?}"), "Secret(redacted)");
    }
}
