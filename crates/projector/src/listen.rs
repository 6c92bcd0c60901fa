//! Where each HTTP role listens, and what its listener allows a client.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result};
use api::server::{HttpListener, Limits};
use clap::Args;
use tokio::net::TcpListener;

/// What every HTTP listener allows a client.
#[derive(Debug, Clone, Args)]
pub struct LimitArgs {
    /// Connections each listener keeps open; a quarter of the open-file limit when absent.
    #[arg(long, env = "PROJECTOR_MAX_CONNECTIONS", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    max_connections: Option<u32>,
    /// Seconds for a request's headers to arrive, and for an idle keep-alive connection to be
    /// kept (the roles' own clients drop idle connections after 10 s: keep it above).
    #[arg(long, env = "PROJECTOR_HEADER_TIMEOUT_SECONDS", default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=3600))]
    header_timeout_seconds: u64,
    /// Seconds for a request's whole body to arrive.
    #[arg(long, env = "PROJECTOR_BODY_TIMEOUT_SECONDS", default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=3600))]
    body_timeout_seconds: u64,
}

impl LimitArgs {
    pub fn limits(&self) -> Limits {
        let defaults = Limits::default();
        Limits {
            max_connections: self
                .max_connections
                .map_or(defaults.max_connections, |count| count as usize),
            header_timeout: Duration::from_secs(self.header_timeout_seconds),
            body_timeout: Duration::from_secs(self.body_timeout_seconds),
            ..defaults
        }
    }
}

pub async fn bind(address: SocketAddr, role: &str, limits: Limits) -> Result<HttpListener> {
    let tcp = TcpListener::bind(address).await.with_context(|| {
        format!(
            "cannot listen on {address} for the {role}; is the port taken? choose another address"
        )
    })?;
    Ok(HttpListener { tcp, limits })
}

pub fn url_of(listener: &HttpListener) -> Result<String> {
    Ok(format!("http://{}", listener.tcp.local_addr()?))
}
