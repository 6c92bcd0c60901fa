//! `projector up` and `projector datasvc`: long-running roles on fixed addresses.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::cluster::{Cluster, ClusterConfig, DataServiceAt, open_data_store, serve};

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Directory for the SQLite stores, the LevelDB cache and the API key.
    #[arg(long, env = "PROJECTOR_DATA_DIR", default_value = "./projector-data")]
    data_dir: PathBuf,
    #[arg(long, env = "PROJECTOR_GATEWAY_ADDR", default_value = "127.0.0.1:8000")]
    gateway_addr: SocketAddr,
    #[arg(long, env = "PROJECTOR_DATASVC_ADDR", default_value = "127.0.0.1:8080")]
    datasvc_addr: SocketAddr,
    /// Use a data service running elsewhere instead of starting one.
    #[arg(long, env = "PROJECTOR_DATASVC_URL", value_name = "URL")]
    datasvc_url: Option<String>,
    #[arg(
        long,
        env = "PROJECTOR_ORCHESTRATOR_ADDR",
        default_value = "127.0.0.1:3000"
    )]
    orchestrator_addr: SocketAddr,
    /// Jobs run at once (worker actors); one per core when absent.
    #[arg(long, env = "PROJECTOR_WORKERS", value_parser = clap::value_parser!(u16).range(1..=256))]
    workers: Option<u16>,
    /// The gateway's API keys, comma-separated (the orchestrator uses the first);
    /// one is generated and kept in the data directory when absent.
    #[arg(
        long,
        env = "PROJECTOR_API_KEY",
        hide_env_values = true,
        value_delimiter = ','
    )]
    api_key: Vec<String>,
    /// How long a worker's lease on a job lasts without a heartbeat, in seconds.
    #[arg(long, env = "PROJECTOR_LEASE_SECONDS", default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=3600))]
    lease_seconds: u64,
    /// How long a cached portfolio stays fresh, in seconds.
    #[arg(long, env = "PROJECTOR_CACHE_TTL_SECONDS", default_value_t = 3600)]
    cache_ttl_seconds: u64,
}

pub async fn up(args: UpArgs) -> Result<()> {
    let signal = ShutdownSignal::install()?;
    let mut api_keys: Vec<String> = args
        .api_key
        .into_iter()
        .filter(|key| !key.is_empty())
        .collect();
    if api_keys.is_empty() {
        api_keys.push(kept_api_key(&args.data_dir)?);
    }
    let datasvc = match args.datasvc_url {
        Some(url) => DataServiceAt::External(url),
        None => DataServiceAt::Embedded(args.datasvc_addr),
    };
    let cluster = Cluster::start(ClusterConfig {
        data_dir: args.data_dir.clone(),
        gateway_addr: args.gateway_addr,
        datasvc,
        orchestrator_addr: args.orchestrator_addr,
        actors: args.workers.map_or_else(default_actors, usize::from),
        api_keys: api_keys.clone(),
        cache_ttl: Duration::from_secs(args.cache_ttl_seconds),
        lease: Duration::from_secs(args.lease_seconds),
    })
    .await?;
    println!("projector is up (data in {})", args.data_dir.display());
    println!("  gateway       {}", cluster.gateway_url);
    println!("  data service  {}/api", cluster.datasvc_url);
    println!("  orchestrator  {}", cluster.orchestrator_url);
    println!("  API key       {}", api_keys[0]);
    signal.wait().await;
    tracing::info!("shutting down");
    cluster.stop().await;
    Ok(())
}

#[derive(Debug, Args)]
pub struct DatasvcArgs {
    #[arg(long, env = "PROJECTOR_DATA_DIR", default_value = "./projector-data")]
    data_dir: PathBuf,
    #[arg(long, env = "PROJECTOR_DATASVC_ADDR", default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
}

pub async fn datasvc(args: DatasvcArgs) -> Result<()> {
    let signal = ShutdownSignal::install()?;
    std::fs::create_dir_all(&args.data_dir).with_context(|| {
        format!(
            "cannot create the data directory {}",
            args.data_dir.display()
        )
    })?;
    let store = open_data_store(&args.data_dir).await?;
    let shutdown = CancellationToken::new();
    let mut http = JoinSet::new();
    let url = serve(
        &mut http,
        args.addr,
        datasvc::router(store.clone()),
        &shutdown,
        "data service",
    )
    .await?;
    println!("data service  {url}/api");
    signal.wait().await;
    shutdown.cancel();
    while http.join_next().await.is_some() {}
    store.close().await;
    Ok(())
}

pub fn default_actors() -> usize {
    std::thread::available_parallelism().map_or(1, |cores| cores.get())
}

/// The key generated on first start and kept in the data directory.
fn kept_api_key(data_dir: &Path) -> Result<String> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create the data directory {}", data_dir.display()))?;
    let path = data_dir.join("api-key");
    if let Ok(key) = std::fs::read_to_string(&path) {
        return Ok(key.trim().to_string());
    }
    let key = generate_key();
    std::fs::write(&path, format!("{key}\n"))
        .with_context(|| format!("cannot write the API key to {}", path.display()))?;
    Ok(key)
}

pub fn generate_key() -> String {
    use rand::Rng;
    let bytes: [u8; 24] = rand::rng().random();
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// SIGINT or SIGTERM, listened for from the moment it is made: a signal that
/// arrives while the roles start (or right after the URLs are printed) is not lost.
struct ShutdownSignal {
    terminate: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
}

impl ShutdownSignal {
    fn install() -> Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(ShutdownSignal {
            terminate: signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?,
            interrupt: signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?,
        })
    }

    async fn wait(mut self) {
        tokio::select! {
            _ = self.terminate.recv() => {}
            _ = self.interrupt.recv() => {}
        }
    }
}
