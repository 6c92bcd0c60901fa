//! Every role in one process: `projector up` and `projector demo`. The roles talk
//! over their HTTP contracts and the job store only, as they do across machines.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use cache::PortfolioCache;
use datasvc::DataStore;
use gateway::Gateway;
use jobstore::SqliteJobStore;
use orchestrator::{DispatchConfig, Dispatcher, ReportStore};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use worker::{ClientConfig, DataClient, Node, WorkerConfig};

/// The data service the workers read: one started here, or one running elsewhere.
pub enum DataServiceAt {
    Embedded(SocketAddr),
    External(String),
}

pub struct ClusterConfig {
    pub data_dir: PathBuf,
    pub gateway_addr: SocketAddr,
    pub datasvc: DataServiceAt,
    pub orchestrator_addr: SocketAddr,
    /// Jobs run at once by the worker node.
    pub actors: usize,
    /// Keys the gateway accepts; the orchestrator submits with the first.
    pub api_keys: Vec<String>,
    pub cache_ttl: Duration,
    /// Lease on a running job; heartbeats renew it at a fifth of its length.
    pub lease: Duration,
}

/// A running cluster; [`Cluster::stop`] shuts it down in order.
pub struct Cluster {
    pub gateway_url: String,
    pub datasvc_url: String,
    pub orchestrator_url: String,
    stop_intake: CancellationToken,
    stop_workers: CancellationToken,
    stop_http: CancellationToken,
    intake: JoinSet<()>,
    workers: JoinSet<()>,
    http: JoinSet<()>,
    jobs: SqliteJobStore,
    data: Option<DataStore>,
    reports: ReportStore,
    cache: Arc<PortfolioCache>,
}

impl Cluster {
    pub async fn start(config: ClusterConfig) -> Result<Cluster> {
        let data_dir = &config.data_dir;
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("cannot create the data directory {}", data_dir.display()))?;
        let jobs = SqliteJobStore::open(&data_dir.join("jobs.sqlite"))
            .await
            .context("cannot open the job store")?;
        let reports = ReportStore::open(&data_dir.join("orchestrator.sqlite"))
            .await
            .context("cannot open the report store")?;
        let cache = Arc::new(open_cache(data_dir.clone(), config.cache_ttl).await?);

        let (stop_http, stop_intake, stop_workers) = (
            CancellationToken::new(),
            CancellationToken::new(),
            CancellationToken::new(),
        );
        let mut http = JoinSet::new();
        let (datasvc_url, data) = match config.datasvc {
            DataServiceAt::Embedded(address) => {
                let data = open_data_store(data_dir).await?;
                let url = serve(
                    &mut http,
                    address,
                    datasvc::router(data.clone()),
                    &stop_http,
                    "data service",
                )
                .await?;
                (url, Some(data))
            }
            DataServiceAt::External(url) => (url, None),
        };
        let gateway_router = Gateway::new(Arc::new(jobs.clone()), &config.api_keys).router();
        let gateway_url = serve(
            &mut http,
            config.gateway_addr,
            gateway_router,
            &stop_http,
            "gateway",
        )
        .await?;
        let orchestrator_url = serve(
            &mut http,
            config.orchestrator_addr,
            orchestrator::router(reports.clone()),
            &stop_http,
            "orchestrator",
        )
        .await?;

        let mut workers = JoinSet::new();
        let node = Node {
            config: WorkerConfig {
                actors: config.actors,
                lease: config.lease,
                heartbeat: config.lease / 5,
                ..WorkerConfig::default()
            },
            store: Arc::new(jobs.clone()),
            cache: cache.clone(),
            client: DataClient::new(ClientConfig::new(&datasvc_url))
                .context("cannot build the data-service client")?,
            engine_pool: Arc::new(
                rayon::ThreadPoolBuilder::new()
                    .thread_name(|index| format!("engine-{index}"))
                    .start_handler(|_| lower_thread_priority())
                    .build()
                    .context("cannot start the engine threads")?,
            ),
        };
        workers.spawn(node.run(stop_workers.clone()));

        let mut intake = JoinSet::new();
        let orchestrator_key = config
            .api_keys
            .first()
            .context("the gateway needs at least one API key")?;
        let dispatcher = Dispatcher::new(
            reports.clone(),
            DispatchConfig::new(&gateway_url, orchestrator_key),
        )
        .context("cannot build the gateway client")?;
        intake.spawn(dispatcher.run(stop_intake.clone()));

        Ok(Cluster {
            gateway_url,
            datasvc_url,
            orchestrator_url,
            stop_intake,
            stop_workers,
            stop_http,
            intake,
            workers,
            http,
            jobs,
            data,
            reports,
            cache,
        })
    }

    /// Stops taking work, lets running jobs finish, stops HTTP, then closes the
    /// stores: nothing accepted is lost.
    pub async fn stop(mut self) {
        self.stop_intake.cancel();
        while self.intake.join_next().await.is_some() {}
        self.stop_workers.cancel();
        while self.workers.join_next().await.is_some() {}
        self.stop_http.cancel();
        while self.http.join_next().await.is_some() {}
        if let Err(error) = self.cache.close().await {
            tracing::warn!(%error, "cache did not close cleanly; it will be checked on the next start");
        }
        self.reports.close().await;
        if let Some(data) = &self.data {
            data.close().await;
        }
        self.jobs.close().await;
    }
}

/// Engine threads yield to the HTTP and job-store threads, so that intake stays
/// fast while every core runs projections.
fn lower_thread_priority() {
    const ENGINE_NICENESS: libc::c_int = 10;
    // SAFETY: setpriority only reads its arguments; `who = 0` is the calling thread on Linux.
    let changed = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, ENGINE_NICENESS) };
    if changed != 0 {
        tracing::debug!("engine thread priority left unchanged");
    }
}

pub async fn open_data_store(data_dir: &Path) -> Result<DataStore> {
    DataStore::open(&data_dir.join("datasvc.sqlite"))
        .await
        .context("cannot open the data service store")
}

/// Opening may wait for a lock and move a damaged directory aside: blocking
/// work, kept off the async runtime's threads.
async fn open_cache(data_dir: PathBuf, ttl: Duration) -> Result<PortfolioCache> {
    tokio::task::spawn_blocking(move || {
        let directory = data_dir.join("cache").join("node-1");
        std::fs::create_dir_all(directory.parent().unwrap_or(&data_dir)).with_context(|| {
            format!("cannot create the cache directory {}", directory.display())
        })?;
        PortfolioCache::open(&directory, ttl).context("cannot open the worker cache")
    })
    .await
    .context("the cache opener stopped unexpectedly")?
}

pub async fn serve(
    tasks: &mut JoinSet<()>,
    address: SocketAddr,
    router: axum::Router,
    shutdown: &CancellationToken,
    role: &'static str,
) -> Result<String> {
    let listener = TcpListener::bind(address).await.with_context(|| {
        format!(
            "cannot listen on {address} for the {role}; is the port taken? choose another address"
        )
    })?;
    let url = format!("http://{}", listener.local_addr()?);
    let shutdown = shutdown.clone();
    tasks.spawn(async move {
        let served = axum::serve(listener, router)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
        if let Err(error) = served {
            tracing::error!(%error, role, "HTTP server stopped");
        }
    });
    Ok(url)
}
