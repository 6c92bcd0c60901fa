//! One role per process: `gateway`, `worker`, `orchestrator`, `datasvc`, and
//! `migrate` for the schemas they share. Each parses its options, opens its
//! store, hands a bound listener and the shutdown to the role crate's `run`, and
//! stops in order on the first signal.

use std::future::Future;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use api::server::Shutdown;
use api::{Secret, Tenants};
use clap::Args;
use database::{Location, Pool, SchemaPolicy};
use datasvc::{Access, DataStore, ServiceConfig};
use gateway::{Gateway, SubmissionRate};
use jobstore::JobStore;
use orchestrator::{DispatchConfig, ReportStore};
use worker::{ClientConfig, DataClient, Node, WorkerConfig};

use crate::listen::{LimitArgs, bind, url_of};
use crate::signals::Signals;
use crate::stores::{
    DATA_FILE, DATASVC_CONNECTIONS, GATEWAY_CONNECTIONS, JOBS_FILE, ORCHESTRATOR_CONNECTIONS,
    REPORTS_FILE, StoreArgs, WORKER_CONNECTIONS, engine_pool, open_cache, open_job_store,
};

/// The longest retention or time to live an option takes.
const YEAR_SECONDS: u64 = 365 * 24 * 3600;

#[derive(Debug, Args)]
pub struct HttpArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// How long health answers 503 before the server stops, after the first signal.
    #[arg(long, env = "PROJECTOR_DRAIN_SECONDS", default_value_t = 1, value_parser = clap::value_parser!(u64).range(0..=600))]
    drain_seconds: u64,
    #[command(flatten)]
    limits: LimitArgs,
}

/// The tenants' API keys and the secret their owners are derived with: the
/// gateway and the orchestrator accept each key, and the orchestrator submits
/// each report under the key that asked for it.
#[derive(Debug, Args)]
pub struct KeysArgs {
    /// API keys, comma-separated, one per tenant.
    #[arg(
        long,
        env = "PROJECTOR_API_KEY",
        hide_env_values = true,
        value_delimiter = ','
    )]
    api_key: Vec<String>,
    /// The secret that stored owners are derived from keys with: the same on
    /// every gateway and orchestrator of a deployment, and never changed.
    #[arg(long, env = "PROJECTOR_TENANT_SECRET", hide_env_values = true)]
    tenant_secret: Option<String>,
}

impl KeysArgs {
    /// The keys given, without empty ones.
    pub fn given(&self) -> Vec<Secret> {
        self.api_key
            .iter()
            .filter_map(|key| Secret::given(Some(key)))
            .collect()
    }

    pub fn tenant_secret(&self) -> Option<Secret> {
        Secret::given(self.tenant_secret.as_deref())
    }

    fn required_keys(&self, role: &str) -> Result<Vec<Secret>> {
        let keys = self.given();
        if keys.is_empty() {
            bail!(
                "{role} needs the tenants' API keys: set PROJECTOR_API_KEY=KEY1,KEY2 or pass --api-key"
            );
        }
        Ok(keys)
    }

    fn tenants(&self, role: &str) -> Result<Tenants> {
        let keys = self.required_keys(role)?;
        let Some(secret) = self.tenant_secret() else {
            bail!(
                "{role} needs the tenant secret that job owners are derived from keys with: set PROJECTOR_TENANT_SECRET to a long random value, the same on every gateway and orchestrator"
            );
        };
        Ok(Tenants::new(secret, &keys))
    }
}

#[derive(Debug, Args)]
pub struct GatewayArgs {
    #[arg(long, env = "PROJECTOR_GATEWAY_ADDR", default_value = "127.0.0.1:8000")]
    addr: SocketAddr,
    #[command(flatten)]
    keys: KeysArgs,
    #[command(flatten)]
    submissions: SubmissionArgs,
    #[command(flatten)]
    http: HttpArgs,
}

pub async fn gateway(args: GatewayArgs) -> Result<()> {
    let signals = Signals::install()?;
    let tenants = args.keys.tenants("the gateway")?;
    let location = args.http.store.location(JOBS_FILE)?;
    let store = open_job_store(&location, args.http.store.policy(), GATEWAY_CONNECTIONS).await?;
    let listener = bind(args.addr, "gateway", &args.http.limits.listening()).await?;
    let role = open_gateway(Arc::new(store.clone()), tenants, args.submissions.rate()).await?;
    println!("gateway       {}", url_of(&listener)?);
    serve_until_signal(signals, args.http.drain_seconds, |shutdown| {
        role.run(listener, shutdown)
    })
    .await?;
    store.close().await;
    Ok(())
}

/// The data service's token, which it requires and the workers present.
#[derive(Debug, Clone, Default, Args)]
pub struct DatasvcTokenArgs {
    /// The data service's service token, sent by the workers as a bearer token.
    #[arg(long, env = "PROJECTOR_DATASVC_TOKEN", hide_env_values = true)]
    datasvc_token: Option<String>,
}

impl DatasvcTokenArgs {
    pub fn secret(&self) -> Option<Secret> {
        Secret::given(self.datasvc_token.as_deref())
    }
}

/// Who the data service answers.
#[derive(Debug, Clone, Default, Args)]
pub struct DataServiceArgs {
    #[command(flatten)]
    token: DatasvcTokenArgs,
    /// Also answer callers without credentials (legacy clients on a trusted network).
    #[arg(long, env = "PROJECTOR_DATASVC_ALLOW_ANONYMOUS")]
    datasvc_allow_anonymous: bool,
    /// How long the change log keeps a change; a worker node down for longer starts its cache afresh.
    #[arg(long, env = "PROJECTOR_CHANGE_RETENTION_SECONDS", default_value_t = datasvc::DEFAULT_CHANGE_RETENTION.as_secs(), value_parser = clap::value_parser!(u64).range(1..=YEAR_SECONDS))]
    change_retention_seconds: u64,
}

impl DataServiceArgs {
    pub fn token(&self) -> Option<Secret> {
        self.token.secret()
    }

    /// How the data service serves; `generated` stands in for a token not given
    /// (`up`, whose workers are in the same process).
    pub fn service(&self, generated: Option<Secret>) -> Result<ServiceConfig> {
        Ok(ServiceConfig {
            access: self.access(generated)?,
            change_retention: Duration::from_secs(self.change_retention_seconds),
        })
    }

    fn access(&self, generated: Option<Secret>) -> Result<Access> {
        let access = Access {
            token: self.token.secret().or(generated),
            allow_anonymous: self.datasvc_allow_anonymous,
        };
        if access.allow_anonymous {
            tracing::warn!(
                "the data service answers callers without credentials (--datasvc-allow-anonymous): any client that reaches it can read every portfolio"
            );
        } else if access.token.is_none() {
            bail!(
                "the data service needs a token for its callers: set PROJECTOR_DATASVC_TOKEN (the workers send the same), or pass --datasvc-allow-anonymous to serve legacy clients on a trusted network"
            );
        }
        Ok(access)
    }
}

/// How fast each tenant may submit, for `gateway` and `up`.
#[derive(Debug, Clone, Args)]
pub struct SubmissionArgs {
    /// Submissions a second each API key may make (0: no limit); beyond, 429 with Retry-After.
    #[arg(long, env = "PROJECTOR_SUBMISSIONS_PER_SECOND", default_value_t = 200)]
    submissions_per_second: u32,
    /// Submissions an API key may make at once after a quiet spell.
    #[arg(long, env = "PROJECTOR_SUBMISSION_BURST", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    submission_burst: u32,
}

impl SubmissionArgs {
    pub fn rate(&self) -> Option<SubmissionRate> {
        Some(SubmissionRate {
            per_second: NonZeroU32::new(self.submissions_per_second)?,
            burst: NonZeroU32::new(self.submission_burst)?,
        })
    }
}

/// The gateway over `store`, once the jobs that earlier releases recorded
/// under plain key hashes are its tenants' again.
pub async fn open_gateway<S: JobStore>(
    store: Arc<S>,
    tenants: Tenants,
    rate: Option<SubmissionRate>,
) -> Result<Gateway<S>> {
    let mut gateway = Gateway::new(store, tenants);
    if let Some(rate) = rate {
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

#[derive(Debug, Args)]
pub struct DatasvcArgs {
    #[arg(long, env = "PROJECTOR_DATASVC_ADDR", default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Demo customers seeded into an empty store.
    #[arg(long, env = "PROJECTOR_CUSTOMERS", default_value_t = datasvc::DEMO_CUSTOMERS, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    customers: u32,
    #[command(flatten)]
    service: DataServiceArgs,
    #[command(flatten)]
    http: HttpArgs,
}

pub async fn datasvc(args: DatasvcArgs) -> Result<()> {
    let signals = Signals::install()?;
    let service = args.service.service(None)?;
    let location = args.http.store.location(DATA_FILE)?;
    let store = open_data_store(&location, args.http.store.policy(), args.customers).await?;
    let listener = bind(args.addr, "data service", &args.http.limits.listening()).await?;
    println!("data service  {}/api", url_of(&listener)?);
    let served = store.clone();
    serve_until_signal(signals, args.http.drain_seconds, |shutdown| {
        datasvc::run(served, service, listener, shutdown)
    })
    .await?;
    store.close().await;
    Ok(())
}

pub async fn open_data_store(
    location: &Location,
    policy: SchemaPolicy,
    customers: u32,
) -> Result<DataStore> {
    DataStore::open(location, policy, customers, DATASVC_CONNECTIONS)
        .await
        .with_context(|| format!("cannot open the data service store at {location}"))
}

#[derive(Debug, Args)]
pub struct OrchestratorArgs {
    #[arg(
        long,
        env = "PROJECTOR_ORCHESTRATOR_ADDR",
        default_value = "127.0.0.1:3000"
    )]
    addr: SocketAddr,
    /// The gateway reports are submitted to.
    #[arg(
        long,
        env = "PROJECTOR_GATEWAY_URL",
        value_name = "URL",
        default_value = "http://127.0.0.1:8000"
    )]
    gateway_url: String,
    #[command(flatten)]
    reports: ReportArgs,
    #[command(flatten)]
    keys: KeysArgs,
    #[command(flatten)]
    http: HttpArgs,
}

/// What the orchestrator keeps, for `orchestrator` and `up`.
#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    /// Finished reports are deleted after this many days.
    #[arg(long, env = "PROJECTOR_REPORT_RETENTION_DAYS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3650))]
    report_retention_days: u64,
}

impl ReportArgs {
    pub fn retention(&self) -> Duration {
        Duration::from_secs(self.report_retention_days * 24 * 3600)
    }
}

pub async fn orchestrator(args: OrchestratorArgs) -> Result<()> {
    let signals = Signals::install()?;
    let tenants = args.keys.tenants("the orchestrator")?;
    let location = args.http.store.location(REPORTS_FILE)?;
    let store = open_report_store(&location, args.http.store.policy()).await?;
    adopt_unowned_reports(&store, &tenants).await?;
    let listener = bind(args.addr, "orchestrator", &args.http.limits.listening()).await?;
    println!("orchestrator  {}", url_of(&listener)?);
    let config = DispatchConfig {
        retention: args.reports.retention(),
        ..DispatchConfig::new(args.gateway_url)
    };
    let served = store.clone();
    serve_until_signal(signals, args.http.drain_seconds, |shutdown| {
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

pub async fn open_report_store(location: &Location, policy: SchemaPolicy) -> Result<ReportStore> {
    ReportStore::open(location, policy, ORCHESTRATOR_CONNECTIONS)
        .await
        .with_context(|| format!("cannot open the report store at {location}"))
}

#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Where the node answers its health, readiness and metrics.
    #[arg(long, env = "PROJECTOR_WORKER_ADDR", default_value = "127.0.0.1:9100")]
    addr: SocketAddr,
    /// Names this node among the live nodes; refused while another live node has it.
    #[arg(long, env = "PROJECTOR_NODE_ID", default_value = "node-1")]
    node_id: String,
    /// The node's own LevelDB cache; `<data-dir>/cache/<node-id>` when absent.
    #[arg(long, env = "PROJECTOR_CACHE_DIR", value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// The data service's base URL (without `/api`).
    #[arg(
        long,
        env = "PROJECTOR_DATASVC_URL",
        value_name = "URL",
        default_value = "http://127.0.0.1:8080"
    )]
    datasvc_url: String,
    #[command(flatten)]
    datasvc_token: DatasvcTokenArgs,
    #[command(flatten)]
    tuning: WorkerTuning,
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    limits: LimitArgs,
}

/// What `worker` and `up` both tune.
#[derive(Debug, Clone, Args)]
pub struct WorkerTuning {
    /// Jobs run at once on this node; one per core when absent.
    #[arg(long, env = "PROJECTOR_WORKERS", value_parser = clap::value_parser!(u16).range(1..=256))]
    workers: Option<u16>,
    /// How long a lease on a running job lasts without a heartbeat, in seconds;
    /// a silent node leaves the registry after as long.
    #[arg(long, env = "PROJECTOR_LEASE_SECONDS", default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=3600))]
    lease_seconds: u64,
    /// How long a job of another node's partition waits before this node takes it, in milliseconds.
    #[arg(long, env = "PROJECTOR_STEAL_AFTER_MS", default_value_t = 5000, value_parser = clap::value_parser!(u64).range(0..=3_600_000))]
    steal_after_ms: u64,
    /// How long running jobs may finish after the first signal before they are
    /// stopped and given back to the queue, in seconds.
    #[arg(long, env = "PROJECTOR_SHUTDOWN_GRACE_SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(0..=3600))]
    shutdown_grace_seconds: u64,
    /// Jobs one tenant may have running across the cluster (0: no limit); every
    /// tenant shares the workers fairly by the work it asked for either way.
    #[arg(long, env = "PROJECTOR_MAX_RUNNING_PER_TENANT", default_value_t = 0)]
    max_running_per_tenant: u32,
    /// Finished jobs are deleted after this many hours.
    #[arg(long, env = "PROJECTOR_RETENTION_HOURS", default_value_t = 168, value_parser = clap::value_parser!(u64).range(1..=87_600))]
    retention_hours: u64,
    /// How long a cached portfolio stays fresh, in seconds (at most a year; 0 fetches every time).
    #[arg(long, env = "PROJECTOR_CACHE_TTL_SECONDS", default_value_t = 3600, value_parser = clap::value_parser!(u64).range(0..=YEAR_SECONDS))]
    cache_ttl_seconds: u64,
}

impl WorkerTuning {
    pub fn config(&self, node_id: &str) -> WorkerConfig {
        let lease = Duration::from_secs(self.lease_seconds);
        let defaults = WorkerConfig::default();
        WorkerConfig {
            actors: self.workers.map_or(defaults.actors, usize::from),
            node_id: node_id.to_string(),
            lease,
            heartbeat: lease / 5,
            steal_after: Duration::from_millis(self.steal_after_ms),
            shutdown_grace: Duration::from_secs(self.shutdown_grace_seconds),
            retention: Duration::from_secs(self.retention_hours * 3600),
            max_running_per_tenant: Some(self.max_running_per_tenant).filter(|&limit| limit > 0),
            ..defaults
        }
    }

    pub fn cache_ttl(&self) -> Duration {
        Duration::from_secs(self.cache_ttl_seconds)
    }
}

/// The parts of a worker node, for `worker` and `up`.
pub async fn build_node<S: JobStore>(
    store: Arc<S>,
    config: WorkerConfig,
    cache_dir: PathBuf,
    cache_ttl: Duration,
    datasvc_url: &str,
    datasvc_token: Option<Secret>,
) -> Result<Node<S>> {
    if datasvc_token.is_none() {
        tracing::warn!(
            "no data-service token (PROJECTOR_DATASVC_TOKEN): portfolios are fetched without credentials, which only a data service that allows anonymous callers answers"
        );
    }
    Ok(Node {
        cache: open_cache(cache_dir, cache_ttl).await?,
        client: DataClient::new(ClientConfig::new(datasvc_url, datasvc_token))
            .context("cannot build the data-service client")?,
        engine_pool: engine_pool()?,
        config,
        store,
    })
}

pub async fn worker(args: WorkerArgs) -> Result<()> {
    let signals = Signals::install()?;
    let location = args.store.location(JOBS_FILE)?;
    let store = open_job_store(&location, args.store.policy(), WORKER_CONNECTIONS).await?;
    let cache_dir = args
        .cache_dir
        .clone()
        .unwrap_or_else(|| args.store.data_dir.join("cache").join(&args.node_id));
    let node = build_node(
        Arc::new(store.clone()),
        args.tuning.config(&args.node_id),
        cache_dir,
        args.tuning.cache_ttl(),
        &args.datasvc_url,
        args.datasvc_token.secret(),
    )
    .await?;
    let listener = bind(args.addr, "worker", &args.limits.listening()).await?;
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
    println!("worker        {} {url}", args.node_id);
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
        .with_context(|| format!("worker node {:?} cannot run", args.node_id))
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The database to bring to this release's schema.
    #[arg(
        long,
        env = "PROJECTOR_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    database_url: String,
    /// Only this store (needed for SQLite, where each store has its own file).
    #[arg(long, value_enum)]
    store: Option<StoreKind>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum StoreKind {
    Jobs,
    Reports,
    Data,
}

pub async fn migrate(args: MigrateArgs) -> Result<()> {
    let location = Location::parse(&args.database_url)?;
    let kinds = match (args.store, &location) {
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
