//! Where each HTTP role listens, what its listener allows a client, and who
//! may scrape its metrics.

use std::net::SocketAddr;

use anyhow::{Context, Result};
use service::Secret;
use service::server::{HttpListener, Limits};
use tokio::net::TcpListener;

/// What every listener of a process allows its clients.
#[derive(Debug, Clone)]
pub struct Listening {
    pub limits: Limits,
    pub scrape_token: Option<Secret>,
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
