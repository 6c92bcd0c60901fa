//! What the API and the pages share: the stores, the tenants, the gateway
//! client and the pages' cookie settings.

use axum::extract::FromRef;
use axum_extra::extract::cookie::Key;
use service::Tenants;

use crate::ReportStore;
use crate::gateway_client::GatewayClient;

/// What the API and the pages share.
#[derive(Clone)]
pub(crate) struct AppState {
    pub store: ReportStore,
    pub tenants: Tenants,
    pub gateway: GatewayClient,
    /// Paths a report may ask for.
    pub max_paths: u32,
    /// Signs the pages' session cookies.
    pub cookies: Key,
    /// Whether those cookies are sent over HTTPS only.
    pub secure_cookies: bool,
}

/// Which origins the pages' forms may come from.
#[derive(Clone, Debug, Default)]
pub(crate) struct Origins {
    /// The public origin, behind a proxy; the request's own host always.
    pub public: Option<String>,
}

impl FromRef<AppState> for ReportStore {
    fn from_ref(state: &AppState) -> ReportStore {
        state.store.clone()
    }
}

impl FromRef<AppState> for Tenants {
    fn from_ref(state: &AppState) -> Tenants {
        state.tenants.clone()
    }
}

impl FromRef<AppState> for Key {
    fn from_ref(state: &AppState) -> Key {
        state.cookies.clone()
    }
}
