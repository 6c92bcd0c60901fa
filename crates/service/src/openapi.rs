//! OpenAPI 3.1 documents, generated from the code: each HTTP role documents its
//! own operations with `utoipa`, and [`document`] adds what every role serves
//! (health, readiness, metrics), the error body and the credentials. The
//! server answers it at `/openapi.json`.

use utoipa::OpenApi;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
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

#[derive(OpenApi)]
#[openapi(
    paths(
        crate::server::operations::health,
        crate::server::operations::healthz,
        crate::server::operations::readyz,
        crate::server::operations::scrape,
    ),
    components(schemas(Problem))
)]
struct Shared;

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

/// A role's document with the operations, schemas and credentials every role shares.
pub fn document(mut role: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    role.merge(Shared::openapi());
    let components = role.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        TENANT_KEY,
        SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new(crate::API_KEY_HEADER))),
    );
    let bearer = || SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build());
    components.add_security_scheme(SERVICE_TOKEN, bearer());
    components.add_security_scheme(SCRAPE_TOKEN, bearer());
    role
}

#[cfg(test)]
mod tests {
    use super::*;

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
