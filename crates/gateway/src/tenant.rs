//! The tenant a request is for, from its `X-API-Key`, as an extractor: every
//! handler takes it instead of authenticating by hand.

use std::sync::Arc;

use api::Problem;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use jobstore::JobStore;

use crate::Gateway;

/// The owner of the request's API key; a missing or unknown key is the 401.
pub struct Tenant(pub String);

impl<S: JobStore> FromRequestParts<Arc<Gateway<S>>> for Tenant {
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut Parts,
        gateway: &Arc<Gateway<S>>,
    ) -> Result<Self, Problem> {
        gateway.tenants.authenticate(&parts.headers).map(Tenant)
    }
}
