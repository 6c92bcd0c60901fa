//! API keys. A job belongs to the key that submitted it; the store keeps only a
//! hash of the key.

use axum::http::{HeaderMap, StatusCode};
use sha2::{Digest, Sha256};

use api::Problem;

/// The tenant a key stands for: the hex SHA-256 of the key.
pub fn owner_of(api_key: &str) -> String {
    Sha256::digest(api_key.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// The owner for the request's `X-API-Key`, or the original's 401 answer.
pub fn authenticate(headers: &HeaderMap, owners: &[String]) -> Result<String, Problem> {
    let key = headers
        .get("x-api-key")
        .and_then(|value| value.to_str().ok());
    let owner = key.map(owner_of);
    match owner {
        Some(owner) if owners.contains(&owner) => Ok(owner),
        _ => Err(Problem::new(
            StatusCode::UNAUTHORIZED,
            "send a valid API key in the X-API-Key header",
        )
        .with_error("Invalid API key")),
    }
}
