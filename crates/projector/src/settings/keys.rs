//! Every key, declared once: its type, its default (the owning crate's), the
//! roles that read it, the commands that take it as a flag, its range and its
//! help. A new key is one entry here and its line in `docs/projector.toml`.

use std::net::{Ipv4Addr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::LogFormat;
use super::declare::{FlagValue, Key, Ranged, given, or_false, settings_table};
use super::layers;
use crate::role::Role::{self, Datasvc, Gateway, Orchestrator, Up, Worker};

/// The longest retention or time to live a key takes.
const YEAR_SECONDS: u64 = 365 * 24 * 3600;

const EVERY_ROLE: &[Role] = &[Gateway, Worker, Orchestrator, Datasvc, Up];
/// The roles that serve HTTP from a store, each in its own process.
const SERVING: &[Role] = &[Gateway, Orchestrator, Datasvc];
const WORKING: &[Role] = &[Worker, Up];
/// Read from the file and the variables only.
const NO_FLAG: &[Role] = &[];

fn local(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn node() -> worker::NodeConfig {
    worker::NodeConfig::default()
}

fn client() -> worker::ClientConfig {
    worker::ClientConfig::new("", None)
}

fn lifetimes() -> cache::Lifetimes {
    cache::Lifetimes::fresh_for(Duration::from_secs(3600))
}

settings_table! {
    // Every role.
    /// How service logs are written on stderr: `text` for people, `json` (one
    /// object per line) for a log collector [default: text].
    log_format: LogFormat = LogFormat::Text => read by EVERY_ROLE, flags for NO_FLAG;
    /// The store: postgres://USER@HOST:PORT/DATABASE (one database holds every
    /// store), or sqlite://FILE (one file per store); the SQLite files in
    /// --data-dir when absent.
    database_url: Option<String> = None => read by EVERY_ROLE, flags for EVERY_ROLE,
        value name "URL", secret = true;
    /// Directory for the embedded SQLite stores, a worker's cache and `up`'s
    /// API key [default: ./projector-data].
    data_dir: PathBuf = PathBuf::from("./projector-data") => read by EVERY_ROLE,
        flags for EVERY_ROLE, value name "DIR";

    // Every listener.
    /// Seconds health answers 503 before the server stops, after the first signal [default: 1].
    drain_seconds: u64 = 1 => read by SERVING, flags for SERVING, in 0..=600;
    /// Connections each listener keeps open [default: a quarter of the open-file limit].
    max_connections: Option<u32> = None => read by EVERY_ROLE, flags for EVERY_ROLE,
        in 1..=1_000_000;
    /// Seconds for a request's headers to arrive, and for an idle keep-alive
    /// connection to be kept [default: 15; the roles' own clients drop idle
    /// connections after 10 s: keep it above].
    header_timeout_seconds: u64 = 15 => read by EVERY_ROLE, flags for EVERY_ROLE, in 1..=3600;
    /// Seconds for a request's whole body to arrive [default: 15].
    body_timeout_seconds: u64 = 15 => read by EVERY_ROLE, flags for EVERY_ROLE, in 1..=3600;
    /// Seconds for a request's answer to start; longer gets 503 [default: 75;
    /// keep it above the longest long-poll, 60 s; event streams are not limited].
    request_timeout_seconds: u64 = 75 => read by EVERY_ROLE, flags for EVERY_ROLE, in 1..=3600;
    /// The bearer token a scrape of `/metrics` must present [default: open].
    metrics_token: Option<String> = None => read by EVERY_ROLE, flags for EVERY_ROLE, secret = true;

    // Tenants and what a job may ask for.
    /// API keys, comma-separated, one per tenant (`up` generates one and keeps
    /// it in the data directory when none is given).
    #[serde(deserialize_with = "layers::comma_separated")]
    api_key: Vec<String> = Vec::new() => read by &[Gateway, Orchestrator, Up],
        flags for &[Gateway, Orchestrator, Up], secret = true;
    /// The secret stored owners are derived from keys with: the same on every
    /// gateway and orchestrator of a deployment, and never changed.
    tenant_secret: Option<String> = None => read by &[Gateway, Orchestrator, Up],
        flags for &[Gateway, Orchestrator, Up], secret = true;
    /// Paths a job or report may ask for: more is refused with 422, and a
    /// stored job above fails [default: 200000; at most 1000000].
    max_paths: u32 = gateway::JobLimits::default().max_paths =>
        read by &[Gateway, Orchestrator, Worker, Up], flags for &[Gateway, Orchestrator, Worker, Up],
        in 1..=u64::from(engine::MAX_PATHS);

    // The gateway.
    /// Where the gateway listens [default: 127.0.0.1:8000].
    gateway_addr: SocketAddr = local(8000) => read by &[Gateway, Up], flags for &[Gateway, Up];
    /// PostgreSQL connections the gateway keeps at most.
    gateway_connections: u32 = 6 => read by &[Gateway, Up], flags for NO_FLAG, in 1..=1000;
    /// Submissions a second each API key may make (0: no limit); beyond, 429
    /// with Retry-After [default: 200].
    submissions_per_second: u32 = 200 => read by &[Gateway, Up], flags for &[Gateway, Up],
        in 0..=1_000_000;
    /// Submissions an API key may make at once after a quiet spell [default: 1000].
    submission_burst: u32 = 1000 => read by &[Gateway, Up], flags for &[Gateway, Up],
        in 1..=10_000_000;
    /// Attempts a job gets before it fails for good.
    max_attempts: u32 = gateway::JobLimits::default().max_attempts => read by &[Gateway, Up],
        flags for NO_FLAG, in 1..=100;

    // The orchestrator.
    /// Where the orchestrator listens [default: 127.0.0.1:3000].
    orchestrator_addr: SocketAddr = local(3000) => read by &[Orchestrator, Up],
        flags for &[Orchestrator, Up];
    /// Connections to the report store the orchestrator keeps at most.
    orchestrator_connections: u32 = 3 => read by &[Orchestrator, Up], flags for NO_FLAG,
        in 1..=1000;
    /// The gateway reports are submitted to [default: http://127.0.0.1:8000].
    gateway_url: Option<String> = None => read by &[Orchestrator], flags for &[Orchestrator],
        value name "URL";
    /// Finished reports are deleted after this many days [default: 30].
    report_retention_days: u64 = orchestrator::DEFAULT_RETENTION.as_secs() / (24 * 3600) =>
        read by &[Orchestrator, Up], flags for &[Orchestrator, Up], in 1..=3650;
    /// The address people's browsers reach the pages at, when it is not
    /// this listener's (behind a proxy): its origin is accepted on forms.
    public_url: Option<String> = None => read by &[Orchestrator, Up], flags for &[Orchestrator, Up];
    /// Send the pages' session cookies over HTTPS only (`Secure`)
    /// [default: on when public_url is https].
    secure_cookies: Option<bool> = None => read by &[Orchestrator, Up],
        flags for &[Orchestrator, Up];

    // The data service.
    /// Where the data service listens [default: 127.0.0.1:8080].
    datasvc_addr: SocketAddr = local(8080) => read by &[Datasvc, Worker, Up],
        flags for &[Datasvc, Up];
    /// Connections to its store the data service keeps at most.
    datasvc_connections: u32 = 6 => read by &[Datasvc, Up], flags for NO_FLAG, in 1..=1000;
    /// Demo customers seeded into an empty store [default: 1000].
    customers: u32 = datasvc::DEMO_CUSTOMERS => read by &[Datasvc, Up], flags for &[Datasvc],
        in 1..=10_000_000;
    /// The data service's service token, sent by the workers as a bearer token
    /// (`up` generates one when none is given).
    datasvc_token: Option<String> = None => read by &[Datasvc, Worker, Up],
        flags for &[Datasvc, Worker, Up], secret = true;
    /// Also answer callers without credentials (legacy clients on a trusted network).
    datasvc_allow_anonymous: bool = false => read by &[Datasvc, Up], flags for &[Datasvc, Up];
    /// Seconds the change log keeps a change; a worker node down for longer
    /// starts its cache afresh [default: 604800, a week].
    change_retention_seconds: u64 = datasvc::DEFAULT_CHANGE_RETENTION.as_secs() =>
        read by &[Datasvc, Up], flags for &[Datasvc, Up], in 1..=YEAR_SECONDS;

    // A worker node.
    /// Where the node answers its health, readiness and metrics [default: 127.0.0.1:9100].
    worker_addr: SocketAddr = local(9100) => read by &[Worker, Up], flags for &[Worker, Up];
    /// Connections to the job store a node keeps at most.
    worker_connections: u32 = 4 => read by WORKING, flags for NO_FLAG, in 1..=1000;
    /// Names this node among the live nodes; refused while another live node
    /// has it [default: node-1].
    node_id: String = node().node_id => read by &[Worker], flags for &[Worker];
    /// The node's own LevelDB cache [default: <data-dir>/cache/<node-id>].
    cache_dir: Option<PathBuf> = None => read by &[Worker], flags for &[Worker], value name "DIR";
    /// The data service's base URL, without `/api`; for `up`, one running
    /// elsewhere instead of starting one [default: http://127.0.0.1:8080].
    datasvc_url: Option<String> = None => read by WORKING, flags for WORKING, value name "URL";
    /// Jobs run at once on this node [default: one per core].
    workers: Option<u16> = None => read by WORKING, flags for WORKING, in 1..=256;
    /// How long a lease on a running job lasts without a heartbeat, in seconds;
    /// a silent node leaves the registry after as long [default: 15].
    lease_seconds: u64 = node().lease.as_secs() => read by WORKING, flags for WORKING,
        in 1..=3600;
    /// How long a job of another node's partition waits before this node takes
    /// it, in milliseconds [default: 5000].
    steal_after_ms: u64 = millis(node().steal_after) => read by WORKING, flags for WORKING,
        in 0..=3_600_000;
    /// How long running jobs may finish after the first signal before they are
    /// stopped and given back to the queue, in seconds [default: 10].
    shutdown_grace_seconds: u64 = node().shutdown_grace.as_secs() => read by WORKING,
        flags for WORKING, in 0..=3600;
    /// Jobs one tenant may have running across the cluster (0: no limit);
    /// every tenant shares the workers fairly either way [default: 0].
    max_running_per_tenant: u32 = 0 => read by WORKING, flags for WORKING, in 0..=1_000_000;
    /// Finished jobs are deleted after this many hours [default: 168].
    retention_hours: u64 = node().retention.as_secs() / 3600 => read by WORKING,
        flags for WORKING, in 1..=87_600;
    /// Longest wait at start for the changes made while the node was away, in seconds.
    catch_up_seconds: u64 = node().catch_up_limit.as_secs() => read by WORKING,
        flags for NO_FLAG, in 0..=600;

    // A worker node's cache.
    /// How long a cached portfolio stays fresh, in seconds (0 fetches every
    /// time) [default: 3600].
    cache_ttl_seconds: u64 = lifetimes().portfolio.as_secs() => read by WORKING,
        flags for WORKING, in 0..=YEAR_SECONDS;
    /// Seconds "unknown customer" is remembered.
    unknown_customer_ttl_seconds: u64 = lifetimes().unknown.as_secs() => read by WORKING,
        flags for NO_FLAG, in 0..=YEAR_SECONDS;
    /// Seconds after its expiry a portfolio may still be served while the data
    /// service cannot answer.
    stale_limit_seconds: u64 = lifetimes().stale_limit.as_secs() => read by WORKING,
        flags for NO_FLAG, in 0..=YEAR_SECONDS;
    /// Seconds a computed result is kept for reuse.
    result_ttl_seconds: u64 = lifetimes().result.as_secs() => read by WORKING,
        flags for NO_FLAG, in 0..=YEAR_SECONDS;

    // A worker node's data-service client.
    /// Milliseconds to connect to the data service.
    datasvc_connect_timeout_ms: u64 = millis(client().connect_timeout) => read by WORKING,
        flags for NO_FLAG, in 1..=60_000;
    /// Milliseconds for the data service's whole answer.
    datasvc_timeout_ms: u64 = millis(client().request_timeout) => read by WORKING,
        flags for NO_FLAG, in 1..=600_000;
    /// Attempts per fetch, the first included.
    datasvc_attempts: u32 = client().attempts => read by WORKING, flags for NO_FLAG, in 1..=20;
    /// Milliseconds of the first backoff between attempts; it doubles.
    datasvc_backoff_ms: u64 = millis(client().backoff_base) => read by WORKING,
        flags for NO_FLAG, in 1..=60_000;
    /// Milliseconds the backoff grows to at most.
    datasvc_backoff_cap_ms: u64 = millis(client().backoff_cap) => read by WORKING,
        flags for NO_FLAG, in 1..=600_000;
    /// Portfolio requests in flight at once from the node.
    datasvc_max_fetches: u32 = client().max_concurrent_fetches as u32 => read by WORKING,
        flags for NO_FLAG, in 1..=1024;
    /// Failures in a row that open the circuit.
    datasvc_breaker_failures: u32 = client().breaker_failures as u32 => read by WORKING,
        flags for NO_FLAG, in 1..=1000;
    /// Milliseconds the circuit stays open before a probe.
    datasvc_breaker_open_ms: u64 = millis(client().breaker_open) => read by WORKING,
        flags for NO_FLAG, in 1..=600_000;
}

/// The declaration of `name`, if it is a key.
pub fn key(name: &str) -> Option<&'static Key> {
    KEYS.iter().find(|key| key.name == name)
}
