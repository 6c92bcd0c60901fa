//! Where each HTTP role listens, what its listener allows a client, and who
//! may scrape its metrics.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result};
use api::Secret;
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
    /// Seconds for a request's answer to start; longer gets 503. Keep it above
    /// the longest long-poll (60 s); event streams are not limited.
    #[arg(long, env = "PROJECTOR_REQUEST_TIMEOUT_SECONDS", default_value_t = 75, value_parser = clap::value_parser!(u64).range(1..=3600))]
    request_timeout_seconds: u64,
    /// The bearer token a scrape of `/metrics` must present; open when absent.
    #[arg(long, env = "PROJECTOR_METRICS_TOKEN", hide_env_values = true)]
    metrics_token: Option<String>,
}

/// What every listener of a process allows its clients.
#[derive(Debug, Clone)]
pub struct Listening {
    pub limits: Limits,
    pub scrape_token: Option<Secret>,
}

impl LimitArgs {
    pub fn listening(&self) -> Listening {
        let defaults = Limits::default();
        Listening {
            limits: Limits {
                max_connections: self
                    .max_connections
                    .map_or(defaults.max_connections, |count| count as usize),
                header_timeout: Duration::from_secs(self.header_timeout_seconds),
                body_timeout: Duration::from_secs(self.body_timeout_seconds),
                request_timeout: Duration::from_secs(self.request_timeout_seconds),
                ..defaults
            },
            scrape_token: Secret::given(self.metrics_token.as_deref()),
        }
    }
}

pub async fn bind(address: SocketAddr, role: &str, listening: &Listening) -> Result<HttpListener> {
    let tcp = TcpListener::bind(address).await.with_context(|| {
        format!(
            "cannot listen on {address} for the {role}; is the port taken? choose another address"
        )
    })?;
    Ok(HttpListener {
        tcp,
        limits: listening.limits,
        scrape_token: listening.scrape_token.clone(),
    })
}

pub fn url_of(listener: &HttpListener) -> Result<String> {
    Ok(format!("http://{}", listener.tcp.local_addr()?))
}
