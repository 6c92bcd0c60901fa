//! Every role in one process: `projector up` and `projector demo`. The roles talk
//! over their HTTP contracts and the job store only, as they do across machines.

use std::sync::Arc;

use anyhow::{Context, Result};
use cache::PortfolioCache;
use database::SchemaPolicy;
use datasvc::DataStore;
use jobstore::{AnyJobStore, JobStore};
use orchestrator::ReportStore;
use service::server::Shutdown;
use service::{Secret, Tenants};
use tokio::task::JoinSet;

use crate::listen::{bind, url_of};
use crate::roles::{
    adopt_unowned_reports, build_node, open_data_store, open_gateway, open_report_store,
};
use crate::settings::Settings;
use crate::stores::{DATA_FILE, JOBS_FILE, REPORTS_FILE, open_job_store};
use service::generate_key;

/// The worker node of a one-machine deployment.
const NODE_ID: &str = "node-1";

pub struct ClusterConfig {
    /// Every store in one database, or the SQLite files (and the cache) in the
    /// data directory; a data service started here unless `datasvc_url` names one.
    pub settings: Settings,
    /// Keys the gateway accepts; the orchestrator submits with the first.
    pub api_keys: Vec<Secret>,
    /// The secret job owners are derived from keys with.
    pub tenant_secret: Secret,
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
        // One node, whose cache is in the data directory.
        let settings = Settings {
            node_id: NODE_ID.to_string(),
            cache_dir: None,
            ..config.settings
        };
        let location = |file: &str| settings.location(file);
        // `up` owns its stores: it brings them to this release's schema.
        let jobs = open_job_store(
            &location(JOBS_FILE)?,
            SchemaPolicy::Apply,
            settings.gateway_connections + settings.worker_connections,
        )
        .await?;
        let reports = open_report_store(
            &location(REPORTS_FILE)?,
            SchemaPolicy::Apply,
            settings.orchestrator_connections,
        )
        .await?;
        let shutdown = Shutdown::new();
        let mut http = JoinSet::new();
        let (datasvc_url, datasvc_token, data) = match &settings.datasvc_url {
            None => {
                let service = settings.service(Some(Secret::new(generate_key())))?;
                let data =
                    open_data_store(&location(DATA_FILE)?, SchemaPolicy::Apply, &settings).await?;
                let listener =
                    bind(settings.datasvc_addr, "data service", &settings.listening()).await?;
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
            Some(url) => (url.clone(), settings.datasvc_token(), None),
        };
        let listening = settings.listening();
        let listener = bind(settings.gateway_addr, "gateway", &listening).await?;
        let gateway_url = url_of(&listener)?;
        let tenants = Tenants::new(config.tenant_secret.clone(), &config.api_keys);
        let gateway = open_gateway(Arc::new(jobs.clone()), tenants.clone(), &settings).await?;
        http.spawn(gateway.run(listener, shutdown.clone()));

        let listener = bind(settings.orchestrator_addr, "orchestrator", &listening).await?;
        let orchestrator_url = url_of(&listener)?;
        adopt_unowned_reports(&reports, &tenants).await?;
        http.spawn(orchestrator::run(
            settings.dispatch(&gateway_url),
            tenants,
            reports.clone(),
            listener,
            shutdown.clone(),
        ));

        let mut worker = settings.worker();
        // The only process on its node id: a crash's registration is its own.
        worker.reclaim_node_id = true;
        let node = build_node(
            Arc::new(jobs.clone()),
            worker,
            &settings,
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
