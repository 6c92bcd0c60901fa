//! One role per process: `gateway`, `worker`, `orchestrator`, `datasvc`, and
//! `migrate` for the schemas they share. Each takes its settings, opens its
//! store, hands a bound listener and the shutdown to the role crate's `run`, and
//! stops in order on the first signal.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use database::{Location, Pool, SchemaPolicy};
use datasvc::DataStore;
use gateway::Gateway;
use jobstore::JobStore;
use orchestrator::ReportStore;
use service::server::Shutdown;
use service::{Secret, Tenants};
use worker::{DataClient, Node, WorkerConfig};

use crate::flags::StoreKind;
use crate::listen::{bind, url_of};
use crate::settings::Settings;
use crate::signals::Signals;
use crate::stores::{DATA_FILE, JOBS_FILE, REPORTS_FILE, engine_pool, open_cache, open_job_store};

pub async fn gateway(settings: Settings) -> Result<()> {
    let signals = Signals::install()?;
    let tenants = settings.tenants("the gateway")?;
    let location = settings.location(JOBS_FILE)?;
    let store = open_job_store(&location, settings.policy(), settings.gateway_connections).await?;
    let listener = bind(settings.gateway_addr, "gateway", &settings.listening()).await?;
    let role = open_gateway(Arc::new(store.clone()), tenants, &settings).await?;
    println!("gateway       {}", url_of(&listener)?);
    serve_until_signal(signals, settings.drain_seconds, |shutdown| {
        role.run(listener, shutdown)
    })
    .await?;
    store.close().await;
    Ok(())
}

/// The gateway over `store`, once the jobs that earlier releases recorded
/// under plain key hashes are its tenants' again.
pub async fn open_gateway<S: JobStore>(
    store: Arc<S>,
    tenants: Tenants,
    settings: &Settings,
) -> Result<Gateway<S>> {
    let mut gateway = Gateway::new(store, tenants).with_job_limits(settings.job_limits());
    if let Some(rate) = settings.submission_rate() {
        gateway = gateway.with_submission_rate(rate);
    }
    let moved = gateway
        .adopt_legacy_owners()
        .await
        .context("cannot move earlier jobs to their keyed owners")?;
    if moved > 0 {
        tracing::info!(
            moved,
            "jobs of earlier releases moved to their keyed owners"
        );
    }
    Ok(gateway)
}

pub async fn datasvc(settings: Settings) -> Result<()> {
    let signals = Signals::install()?;
    let service = settings.service(None)?;
    let location = settings.location(DATA_FILE)?;
    let store = open_data_store(&location, settings.policy(), &settings).await?;
    let listener = bind(settings.datasvc_addr, "data service", &settings.listening()).await?;
    println!("data service  {}/api", url_of(&listener)?);
    let served = store.clone();
    serve_until_signal(signals, settings.drain_seconds, |shutdown| {
        datasvc::run(served, service, listener, shutdown)
    })
    .await?;
    store.close().await;
    Ok(())
}

pub async fn open_data_store(
    location: &Location,
    policy: SchemaPolicy,
    settings: &Settings,
) -> Result<DataStore> {
    DataStore::open(
        location,
        policy,
        settings.customers,
        settings.datasvc_connections,
    )
    .await
    .with_context(|| format!("cannot open the data service store at {location}"))
}

pub async fn orchestrator(settings: Settings) -> Result<()> {
    let signals = Signals::install()?;
    let tenants = settings.tenants("the orchestrator")?;
    let location = settings.location(REPORTS_FILE)?;
    let store = open_report_store(
        &location,
        settings.policy(),
        settings.orchestrator_connections,
    )
    .await?;
    adopt_unowned_reports(&store, &tenants).await?;
    let listener = bind(
        settings.orchestrator_addr,
        "orchestrator",
        &settings.listening(),
    )
    .await?;
    println!("orchestrator  {}", url_of(&listener)?);
    let config = settings.dispatch(&settings.gateway_url());
    let served = store.clone();
    serve_until_signal(signals, settings.drain_seconds, |shutdown| {
        orchestrator::run(config, tenants, served, listener, shutdown)
    })
    .await?;
    store.close().await;
    Ok(())
}

/// Gives the reports of earlier releases (all asked for under the first key)
/// to that key's tenant.
pub async fn adopt_unowned_reports(store: &ReportStore, tenants: &Tenants) -> Result<()> {
    let Some(first) = tenants.first_owner() else {
        return Ok(());
    };
    let adopted = store
        .adopt_unowned(first)
        .await
        .context("cannot give earlier reports to the first key's tenant")?;
    if adopted > 0 {
        tracing::info!(
            adopted,
            "reports of earlier releases given to the first key's tenant"
        );
    }
    Ok(())
}

pub async fn open_report_store(
    location: &Location,
    policy: SchemaPolicy,
    connections: u32,
) -> Result<ReportStore> {
    ReportStore::open(location, policy, connections)
        .await
        .with_context(|| format!("cannot open the report store at {location}"))
}

/// The parts of a worker node, for `worker` and `up`.
pub async fn build_node<S: JobStore>(
    store: Arc<S>,
    config: WorkerConfig,
    settings: &Settings,
    datasvc_url: &str,
    datasvc_token: Option<Secret>,
) -> Result<Node<S>> {
    if datasvc_token.is_none() {
        tracing::warn!(
            "no data-service token (PROJECTOR_DATASVC_TOKEN): portfolios are fetched without credentials, which only a data service that allows anonymous callers answers"
        );
    }
    Ok(Node {
        cache: open_cache(settings.cache_dir(), settings.cache_lifetimes()).await?,
        client: DataClient::new(settings.client(datasvc_url, datasvc_token))
            .context("cannot build the data-service client")?,
        engine_pool: engine_pool()?,
        config,
        store,
    })
}

pub async fn worker(settings: Settings) -> Result<()> {
    let signals = Signals::install()?;
    let location = settings.location(JOBS_FILE)?;
    let store = open_job_store(&location, settings.policy(), settings.worker_connections).await?;
    let node = build_node(
        Arc::new(store.clone()),
        settings.worker(),
        &settings,
        &settings.datasvc_url(),
        settings.datasvc_token(),
    )
    .await?;
    let listener = bind(settings.worker_addr, "worker", &settings.listening()).await?;
    let url = url_of(&listener)?;
    let cache = node.cache.clone();
    let shutdown = Shutdown::new();
    let operations = tokio::spawn(worker::serve_operations(
        node.store.clone(),
        node.client.clone(),
        listener,
        shutdown.clone(),
    ));
    let mut running = tokio::spawn(worker::run(node, shutdown.draining_token()));
    println!("worker        {} {url}", settings.node_id);
    // Readiness answers 503 from the first signal while running jobs finish.
    let outcome = tokio::select! {
        () = signals.first() => {
            shutdown.drain();
            running.await
        }
        outcome = &mut running => outcome,
    };
    shutdown.stop();
    if let Ok(Err(error)) = operations.await {
        tracing::warn!(%error, "the worker's health and metrics listener failed");
    }
    if let Err(error) = cache.close().await {
        tracing::warn!(%error, "cache did not close cleanly; it will be checked on the next start");
    }
    store.close().await;
    outcome
        .context("the worker node stopped unexpectedly")?
        .with_context(|| format!("worker node {:?} cannot run", settings.node_id))
}

pub async fn migrate(settings: Settings, store: Option<StoreKind>) -> Result<()> {
    let Some(url) = &settings.database_url else {
        bail!(
            "migrate needs the database to bring up to date: pass --database-url, or set database_url (PROJECTOR_DATABASE_URL)"
        );
    };
    let location = Location::parse(url)?;
    let kinds = match (store, &location) {
        (Some(kind), _) => vec![kind],
        (None, Location::Postgres(_)) => vec![StoreKind::Jobs, StoreKind::Reports, StoreKind::Data],
        (None, Location::Sqlite(_)) => bail!(
            "a SQLite file holds one store: name it with --store jobs, --store reports or --store data"
        ),
    };
    for kind in kinds {
        let store = match kind {
            StoreKind::Jobs => &jobstore::STORE,
            StoreKind::Reports => &orchestrator::STORE,
            StoreKind::Data => &datasvc::STORE,
        };
        let pool = Pool::open(&location, store, SchemaPolicy::Apply, 1)
            .await
            .with_context(|| format!("cannot migrate the {}", store.name))?;
        pool.close().await;
        println!("{} at {location} is up to date", store.name);
    }
    Ok(())
}

/// Runs an HTTP role until the first signal, then drains for `drain_seconds`
/// (health answers 503) and stops it.
async fn serve_until_signal<F, Fut>(signals: Signals, drain_seconds: u64, role: F) -> Result<()>
where
    F: FnOnce(Shutdown) -> Fut,
    Fut: Future<Output = std::io::Result<()>> + Send + 'static,
{
    let shutdown = Shutdown::new();
    let mut serving = tokio::spawn(role(shutdown.clone()));
    let served = tokio::select! {
        () = signals.first() => {
            shutdown.drain();
            tokio::time::sleep(Duration::from_secs(drain_seconds)).await;
            shutdown.stop();
            serving.await
        }
        served = &mut serving => served,
    };
    served
        .context("the HTTP server stopped unexpectedly")?
        .context("the HTTP server failed")
}
