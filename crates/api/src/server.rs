//! How every HTTP role serves: on a listener it is given, with `/health`, and a
//! shutdown in two steps. From the first signal the role drains (health answers
//! 503, so a load balancer stops sending new work, while requests are still
//! served); when it stops, the server finishes the requests in flight and exits.

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The two steps of a role's shutdown, shared by everything in the process.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    draining: CancellationToken,
    stopping: CancellationToken,
}

impl Shutdown {
    pub fn new() -> Self {
        Shutdown::default()
    }

    /// Health turns 503 and intake ends; requests are still served.
    pub fn drain(&self) {
        self.draining.cancel();
    }

    /// Servers finish the requests in flight and return. Implies draining.
    pub fn stop(&self) {
        self.draining.cancel();
        self.stopping.cancel();
    }

    pub fn is_draining(&self) -> bool {
        self.draining.is_cancelled()
    }

    pub async fn draining(&self) {
        self.draining.cancelled().await
    }

    pub async fn stopping(&self) {
        self.stopping.cancelled().await
    }

    /// The token that fires when draining starts, for tasks that stop on it.
    pub fn draining_token(&self) -> CancellationToken {
        self.draining.clone()
    }
}

/// Serves `router` with `/health` until `shutdown` stops.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: Shutdown,
) -> std::io::Result<()> {
    let health = shutdown.clone();
    let router = router.route(
        "/health",
        get(move || async move {
            if health.is_draining() {
                (StatusCode::SERVICE_UNAVAILABLE, "draining")
            } else {
                (StatusCode::OK, "ok")
            }
        }),
    );
    axum::serve(listener, router)
        .with_graceful_shutdown(async move { shutdown.stopping().await })
        .await
}
