//! The OpenAPI vocabulary the roles share: the names of the credentials, the
//! error body's media type, the refusals every operation may answer and the
//! operator's path limit. Each HTTP role documents its own operations with
//! `utoipa`; the server adds what every role serves and answers the whole at
//! `/openapi.json` (`server/operations.rs`).

use utoipa::openapi::{RefOr, Schema};

use crate::Problem;

/// A tenant's API key, in `X-Api-Key` (the gateway and the orchestrator).
pub const TENANT_KEY: &str = "tenant_key";
/// The data service's token, as a bearer token (the workers send it).
pub const SERVICE_TOKEN: &str = "service_token";
/// The optional token a scrape of `/metrics` presents.
pub const SCRAPE_TOKEN: &str = "scrape_token";
/// The media type of every error.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// What a tenant's operation may answer besides its own outcomes.
#[derive(utoipa::IntoResponses)]
pub enum TenantRefusals {
    /// No API key, or not a tenant's.
    #[response(status = 401, content_type = "application/problem+json")]
    Unauthorized(Problem),
    /// A request the shared layers refuse (too large, too slow, malformed) or a
    /// store that does not answer in time.
    #[response(status = "default", content_type = "application/problem+json")]
    Refused(Problem),
}

/// What an operation on a stored thing answers when it is not there for the caller.
#[derive(utoipa::IntoResponses)]
pub enum NotFound {
    /// Nothing with that id for this key (another tenant's is not shown either).
    #[response(status = 404, content_type = "application/problem+json")]
    Missing(Problem),
}

/// What an operation answers when the thing has moved past what it asks for.
#[derive(utoipa::IntoResponses)]
pub enum AlreadyEnded {
    /// It has already completed or failed.
    #[response(status = 409, content_type = "application/problem+json")]
    Ended(Problem),
}

/// What every operation that reads or writes a store answers when the store
/// fails (`Problem::of_store`): nothing was recorded.
#[derive(utoipa::IntoResponses)]
pub enum StoreFailures {
    /// The store's data is damaged: its operator must restore it.
    #[response(status = 500, content_type = "application/problem+json")]
    Damaged(Problem),
    /// The store does not answer: retry after `Retry-After`.
    #[response(status = 503, content_type = "application/problem+json")]
    Unavailable(Problem),
    /// The store's disk is full: its operator must free space.
    #[response(status = 507, content_type = "application/problem+json")]
    Full(Problem),
}

/// What a data-service operation may answer besides its own outcomes.
#[derive(utoipa::IntoResponses)]
pub enum ServiceRefusals {
    /// No service token, or another.
    #[response(status = 401, content_type = "application/problem+json")]
    Unauthorized(Problem),
    /// A request the shared layers refuse (too large, too slow, malformed) or a
    /// store that does not answer in time.
    #[response(status = "default", content_type = "application/problem+json")]
    Refused(Problem),
}

/// The document with the operator's path limit as the largest `paths` a
/// request may ask for: it is generated with the default.
pub fn with_max_paths(
    mut document: utoipa::openapi::OpenApi,
    max_paths: u32,
) -> utoipa::openapi::OpenApi {
    let parameters = document
        .components
        .as_mut()
        .and_then(|components| components.schemas.get_mut("ProjectionParameters"));
    if let Some(RefOr::T(Schema::Object(parameters))) = parameters
        && let Some(RefOr::T(Schema::Object(paths))) = parameters.properties.get_mut("paths")
    {
        paths.maximum = Some(utoipa::Number::UInt(max_paths as usize));
    }
    document
}

#[cfg(test)]
mod tests {
    use super::*;
    use utoipa::OpenApi;

    #[derive(OpenApi)]
    #[openapi(components(schemas(wire::ProjectionParameters)))]
    struct Parameters;

    fn paths_maximum(document: &utoipa::openapi::OpenApi) -> serde_json::Value {
        let json = serde_json::to_value(document).unwrap();
        json["components"]["schemas"]["ProjectionParameters"]["properties"]["paths"]["maximum"]
            .clone()
    }

    #[test]
    fn the_document_names_the_operators_path_limit() {
        let generated = Parameters::openapi();
        assert_eq!(paths_maximum(&generated), wire::DEFAULT_MAX_PATHS);
        assert_eq!(paths_maximum(&with_max_paths(generated, 500_000)), 500_000);
    }
}
