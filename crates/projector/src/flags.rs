//! The roles' flags: the last layer of the settings. Each flag is named after
//! its key (`--lease-seconds` sets `lease_seconds`; a role's own address is
//! also its `--addr`), and one left out leaves the key to the file, the
//! variables or the default.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use serde::Serialize;

/// Where the stores are, for every role.
#[derive(Debug, Args, Serialize)]
pub struct StoreFlags {
    /// The store: postgres://USER@HOST:PORT/DATABASE (one database holds every
    /// store), or sqlite://FILE (one file per store); the SQLite files in
    /// --data-dir when absent.
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
    /// Directory for the embedded SQLite stores, a worker's cache and `up`'s
    /// API key [default: ./projector-data].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

/// What every HTTP listener allows a client.
#[derive(Debug, Args, Serialize)]
pub struct ListenFlags {
    /// Connections each listener keeps open [default: a quarter of the open-file limit].
    #[arg(long)]
    max_connections: Option<u32>,
    /// Seconds for a request's headers to arrive, and for an idle keep-alive
    /// connection to be kept [default: 15; the roles' own clients drop idle
    /// connections after 10 s: keep it above].
    #[arg(long)]
    header_timeout_seconds: Option<u64>,
    /// Seconds for a request's whole body to arrive [default: 15].
    #[arg(long)]
    body_timeout_seconds: Option<u64>,
    /// Seconds for a request's answer to start; longer gets 503 [default: 75;
    /// keep it above the longest long-poll, 60 s; event streams are not limited].
    #[arg(long)]
    request_timeout_seconds: Option<u64>,
    /// The bearer token a scrape of `/metrics` must present [default: open].
    #[arg(long)]
    metrics_token: Option<String>,
}

/// A role that serves HTTP from a store.
#[derive(Debug, Args, Serialize)]
pub struct HttpFlags {
    #[command(flatten)]
    #[serde(flatten)]
    store: StoreFlags,
    /// Seconds health answers 503 before the server stops, after the first signal [default: 1].
    #[arg(long)]
    drain_seconds: Option<u64>,
    #[command(flatten)]
    #[serde(flatten)]
    listen: ListenFlags,
}

/// The tenants' API keys and the secret their owners are derived with.
#[derive(Debug, Args, Serialize)]
pub struct KeysFlags {
    /// API keys, comma-separated, one per tenant.
    #[arg(long, value_delimiter = ',')]
    api_key: Option<Vec<String>>,
    /// The secret stored owners are derived from keys with: the same on every
    /// gateway and orchestrator of a deployment, and never changed.
    #[arg(long)]
    tenant_secret: Option<String>,
}

/// What a submission may ask for, and how fast.
#[derive(Debug, Args, Serialize)]
pub struct SubmissionFlags {
    /// Submissions a second each API key may make (0: no limit); beyond, 429
    /// with Retry-After [default: 200].
    #[arg(long)]
    submissions_per_second: Option<u32>,
    /// Submissions an API key may make at once after a quiet spell [default: 1000].
    #[arg(long)]
    submission_burst: Option<u32>,
    /// Paths a job may ask for; more is refused with 422 [default: 200000; at most 1000000].
    #[arg(long)]
    max_paths: Option<u32>,
}

#[derive(Debug, Args, Serialize)]
pub struct GatewayFlags {
    /// Where the gateway listens [default: 127.0.0.1:8000].
    #[arg(long = "gateway-addr", visible_alias = "addr")]
    gateway_addr: Option<SocketAddr>,
    #[command(flatten)]
    #[serde(flatten)]
    keys: KeysFlags,
    #[command(flatten)]
    #[serde(flatten)]
    submissions: SubmissionFlags,
    #[command(flatten)]
    #[serde(flatten)]
    http: HttpFlags,
}

/// Who the data service answers and what it keeps.
#[derive(Debug, Args, Serialize)]
pub struct DataServiceFlags {
    #[command(flatten)]
    #[serde(flatten)]
    token: DatasvcTokenFlags,
    /// Also answer callers without credentials (legacy clients on a trusted network).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    datasvc_allow_anonymous: Option<bool>,
    /// Seconds the change log keeps a change; a worker node down for longer
    /// starts its cache afresh [default: 604800, a week].
    #[arg(long)]
    change_retention_seconds: Option<u64>,
}

/// The data service's token, which it requires and the workers present.
#[derive(Debug, Args, Serialize)]
pub struct DatasvcTokenFlags {
    /// The data service's service token, sent by the workers as a bearer token.
    #[arg(long)]
    datasvc_token: Option<String>,
}

#[derive(Debug, Args, Serialize)]
pub struct DatasvcFlags {
    /// Where the data service listens [default: 127.0.0.1:8080].
    #[arg(long = "datasvc-addr", visible_alias = "addr")]
    datasvc_addr: Option<SocketAddr>,
    /// Demo customers seeded into an empty store [default: 1000].
    #[arg(long)]
    customers: Option<u32>,
    #[command(flatten)]
    #[serde(flatten)]
    service: DataServiceFlags,
    #[command(flatten)]
    #[serde(flatten)]
    http: HttpFlags,
}

#[derive(Debug, Args, Serialize)]
pub struct OrchestratorFlags {
    /// Where the orchestrator listens [default: 127.0.0.1:3000].
    #[arg(long = "orchestrator-addr", visible_alias = "addr")]
    orchestrator_addr: Option<SocketAddr>,
    /// The gateway reports are submitted to [default: http://127.0.0.1:8000].
    #[arg(long, value_name = "URL")]
    gateway_url: Option<String>,
    /// Paths a report may ask for; more is refused with 422 [default: 200000].
    #[arg(long)]
    max_paths: Option<u32>,
    #[command(flatten)]
    #[serde(flatten)]
    reports: ReportFlags,
    #[command(flatten)]
    #[serde(flatten)]
    keys: KeysFlags,
    #[command(flatten)]
    #[serde(flatten)]
    http: HttpFlags,
}

/// What the orchestrator keeps.
#[derive(Debug, Args, Serialize)]
pub struct ReportFlags {
    /// Finished reports are deleted after this many days [default: 30].
    #[arg(long)]
    report_retention_days: Option<u64>,
    /// The address people's browsers reach the pages at, when it is not
    /// this listener's (behind a proxy): its origin is accepted on forms.
    #[arg(long)]
    public_url: Option<String>,
    /// Send the pages' session cookies over HTTPS only (`Secure`)
    /// [default: on when public_url is https].
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    secure_cookies: Option<bool>,
}

#[derive(Debug, Args, Serialize)]
pub struct WorkerFlags {
    /// Where the node answers its health, readiness and metrics [default: 127.0.0.1:9100].
    #[arg(long = "worker-addr", visible_alias = "addr")]
    worker_addr: Option<SocketAddr>,
    /// Names this node among the live nodes; refused while another live node
    /// has it [default: node-1].
    #[arg(long)]
    node_id: Option<String>,
    /// The node's own LevelDB cache [default: <data-dir>/cache/<node-id>].
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// The data service's base URL, without `/api` [default: http://127.0.0.1:8080].
    #[arg(long, value_name = "URL")]
    datasvc_url: Option<String>,
    /// Paths a job may ask for; a stored job above fails [default: 200000].
    #[arg(long)]
    max_paths: Option<u32>,
    #[command(flatten)]
    #[serde(flatten)]
    datasvc_token: DatasvcTokenFlags,
    #[command(flatten)]
    #[serde(flatten)]
    tuning: TuningFlags,
    #[command(flatten)]
    #[serde(flatten)]
    store: StoreFlags,
    #[command(flatten)]
    #[serde(flatten)]
    listen: ListenFlags,
}

/// What `worker` and `up` both tune.
#[derive(Debug, Args, Serialize)]
pub struct TuningFlags {
    /// Jobs run at once on this node [default: one per core].
    #[arg(long)]
    workers: Option<u16>,
    /// How long a lease on a running job lasts without a heartbeat, in seconds;
    /// a silent node leaves the registry after as long [default: 15].
    #[arg(long)]
    lease_seconds: Option<u64>,
    /// How long a job of another node's partition waits before this node takes
    /// it, in milliseconds [default: 5000].
    #[arg(long)]
    steal_after_ms: Option<u64>,
    /// How long running jobs may finish after the first signal before they are
    /// stopped and given back to the queue, in seconds [default: 10].
    #[arg(long)]
    shutdown_grace_seconds: Option<u64>,
    /// Jobs one tenant may have running across the cluster (0: no limit);
    /// every tenant shares the workers fairly either way [default: 0].
    #[arg(long)]
    max_running_per_tenant: Option<u32>,
    /// Finished jobs are deleted after this many hours [default: 168].
    #[arg(long)]
    retention_hours: Option<u64>,
    /// How long a cached portfolio stays fresh, in seconds (0 fetches every
    /// time) [default: 3600].
    #[arg(long)]
    cache_ttl_seconds: Option<u64>,
}

#[derive(Debug, Args, Serialize)]
pub struct UpFlags {
    #[command(flatten)]
    #[serde(flatten)]
    store: StoreFlags,
    /// Where the gateway listens [default: 127.0.0.1:8000].
    #[arg(long)]
    gateway_addr: Option<SocketAddr>,
    /// Where the data service started here listens [default: 127.0.0.1:8080].
    #[arg(long)]
    datasvc_addr: Option<SocketAddr>,
    /// Use a data service running elsewhere instead of starting one.
    #[arg(long, value_name = "URL")]
    datasvc_url: Option<String>,
    /// The token of the data service started here (one is generated when
    /// absent), or of the one at --datasvc-url.
    #[command(flatten)]
    #[serde(flatten)]
    datasvc_access: DataServiceFlags,
    /// Where the orchestrator listens [default: 127.0.0.1:3000].
    #[arg(long)]
    orchestrator_addr: Option<SocketAddr>,
    /// One is generated and kept in the data directory when no key is given.
    #[command(flatten)]
    #[serde(flatten)]
    keys: KeysFlags,
    #[command(flatten)]
    #[serde(flatten)]
    tuning: TuningFlags,
    #[command(flatten)]
    #[serde(flatten)]
    listen: ListenFlags,
    #[command(flatten)]
    #[serde(flatten)]
    reports: ReportFlags,
    #[command(flatten)]
    #[serde(flatten)]
    submissions: SubmissionFlags,
}

#[derive(Debug, Args, Serialize)]
pub struct MigrateFlags {
    /// The database to bring to this release's schema.
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
    /// Only this store (needed for SQLite, where each store has its own file).
    #[arg(long, value_enum)]
    #[serde(skip)]
    pub store: Option<StoreKind>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StoreKind {
    Jobs,
    Reports,
    Data,
}
