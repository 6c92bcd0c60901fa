//! Every role in one process: `projector up` and `projector demo`. The roles talk
//! over their HTTP contracts and the job store only, as they do across machines.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use api::server::Shutdown;
use api::{Secret, Tenants};
use cache::PortfolioCache;
use database::SchemaPolicy;
use datasvc::DataStore;
use gateway::SubmissionRate;
use jobstore::{AnyJobStore, JobStore};
use orchestrator::{DispatchConfig, ReportStore};
use tokio::task::JoinSet;
use worker::WorkerConfig;

use crate::listen::{Listening, bind, url_of};
use crate::roles::{
    DataServiceArgs, adopt_unowned_reports, build_node, open_data_store, open_gateway,
    open_report_store,
};
use crate::stores::{
    DATA_FILE, JOBS_FILE, REPORTS_FILE, StoreArgs, UP_JOB_STORE_CONNECTIONS, open_job_store,
};
use crate::up::generate_key;

/// The data service the workers read: one started here, or one running elsewhere.
pub enum DataServiceAt {
    /// Started here; its token is `access`'s, or one generated for this run.
    Embedded {
        address: SocketAddr,
        access: DataServiceArgs,
    },
    External {
        url: String,
        token: Option<Secret>,
    },
}

pub struct ClusterConfig {
    /// Every store in one database, or the SQLite files (and the cache) in the data directory.
    pub stores: StoreArgs,
    pub gateway_addr: SocketAddr,
    pub datasvc: DataServiceAt,
    pub orchestrator_addr: SocketAddr,
    pub worker: WorkerConfig,
    /// Keys the gateway accepts; the orchestrator submits with the first.
    pub api_keys: Vec<Secret>,
    /// The secret job owners are derived from keys with.
    pub tenant_secret: Secret,
    pub cache_ttl: Duration,
    pub listening: Listening,
    /// Finished reports are deleted this long after they ended.
    pub report_retention: Duration,
    /// How fast each tenant may submit; no limit when absent.
    pub submission_rate: Option<SubmissionRate>,
}

/// A running cluster; [`Cluster::stop`] shuts it down in order.
pub struct Cluster {
    pub gateway_url: String,
    pub datasvc_url: String,
    pub orchestrator_url: String,
    shutdown: Shutdown,
    workers: JoinSet<Result<(), jobstore::Error>>,
    http: JoinSet<std::io::Result<()>>,
    jobs: AnyJobStore,
    data: Option<DataStore>,
    reports: ReportStore,
    cache: Arc<PortfolioCache>,
}

impl Cluster {
    pub async fn start(config: ClusterConfig) -> Result<Cluster> {
        let location = |file: &str| config.stores.location(file);
        // `up` owns its stores: it brings them to this release's schema.
        let jobs = open_job_store(
            &location(JOBS_FILE)?,
            SchemaPolicy::Apply,
            UP_JOB_STORE_CONNECTIONS,
        )
        .await?;
        let reports = open_report_store(&location(REPORTS_FILE)?, SchemaPolicy::Apply).await?;
        let shutdown = Shutdown::new();
        let mut http = JoinSet::new();
        let (datasvc_url, datasvc_token, data) = match config.datasvc {
            DataServiceAt::Embedded { address, access } => {
                let service = access.service(Some(Secret::new(generate_key())))?;
                let data = open_data_store(
                    &location(DATA_FILE)?,
                    SchemaPolicy::Apply,
                    datasvc::DEMO_CUSTOMERS,
                )
                .await?;
                let listener = bind(address, "data service", &config.listening).await?;
                let url = url_of(&listener)?;
                let token = service.access.token.clone();
                http.spawn(datasvc::run(
                    data.clone(),
                    service,
                    listener,
                    shutdown.clone(),
                ));
                (url, token, Some(data))
            }
            DataServiceAt::External { url, token } => (url, token, None),
        };
        let listener = bind(config.gateway_addr, "gateway", &config.listening).await?;
        let gateway_url = url_of(&listener)?;
        let tenants = Tenants::new(config.tenant_secret.clone(), &config.api_keys);
        let gateway = open_gateway(
            Arc::new(jobs.clone()),
            tenants.clone(),
            config.submission_rate,
        )
        .await?;
        http.spawn(gateway.run(listener, shutdown.clone()));

        let listener = bind(config.orchestrator_addr, "orchestrator", &config.listening).await?;
        let orchestrator_url = url_of(&listener)?;
        adopt_unowned_reports(&reports, &tenants).await?;
        http.spawn(orchestrator::run(
            DispatchConfig {
                retention: config.report_retention,
                ..DispatchConfig::new(&gateway_url)
            },
            tenants,
            reports.clone(),
            listener,
            shutdown.clone(),
        ));

        let cache_dir = config
            .stores
            .data_dir
            .join("cache")
            .join(&config.worker.node_id);
        let node = build_node(
            Arc::new(jobs.clone()),
            config.worker,
            cache_dir,
            config.cache_ttl,
            &datasvc_url,
            datasvc_token,
        )
        .await?;
        let cache = node.cache.clone();
        let mut workers = JoinSet::new();
        workers.spawn(worker::run(node, shutdown.draining_token()));

        Ok(Cluster {
            gateway_url,
            datasvc_url,
            orchestrator_url,
            shutdown,
            workers,
            http,
            jobs,
            data,
            reports,
            cache,
        })
    }

    /// Stops taking work (health answers 503), lets running jobs finish or gives
    /// them back, stops HTTP, then closes the stores: nothing accepted is lost.
    pub async fn stop(mut self) {
        self.shutdown.drain();
        while let Some(stopped) = self.workers.join_next().await {
            if let Ok(Err(error)) = stopped {
                tracing::error!(%error, "the worker node stopped with an error");
            }
        }
        self.shutdown.stop();
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

    /// Resolves if the worker node stops by itself (its store refused it).
    pub async fn worker_failed(&mut self) -> Result<()> {
        match self.workers.join_next().await {
            Some(Ok(Err(error))) => Err(error).context("the worker node stopped"),
            Some(Err(error)) => Err(error).context("the worker node stopped unexpectedly"),
            _ => std::future::pending().await,
        }
    }
}
