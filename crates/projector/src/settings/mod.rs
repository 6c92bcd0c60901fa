//! One configuration for every role, in layers: built-in defaults, then a TOML
//! file (`--config`, `PROJECTOR_CONFIG`), then `PROJECTOR_*` variables, then
//! flags. Keys are flat and named as the variables are, without the prefix, so
//! `lease_seconds` in the file is `PROJECTOR_LEASE_SECONDS` and `--lease-seconds`.

mod layers;
mod parts;
mod show;

use std::net::{Ipv4Addr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use layers::{Loaded, load};
pub use show::{Role, show};

/// The longest retention or time to live a key takes.
const YEAR_SECONDS: u64 = 365 * 24 * 3600;

/// Every key, with its default. Durations are whole units named in the key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    // Every role.
    pub log_format: LogFormat,
    pub database_url: Option<String>,
    pub data_dir: PathBuf,

    // Every listener.
    pub drain_seconds: u64,
    pub max_connections: Option<u32>,
    pub header_timeout_seconds: u64,
    pub body_timeout_seconds: u64,
    pub request_timeout_seconds: u64,
    pub metrics_token: Option<String>,

    // Tenants and what a job may ask for.
    #[serde(deserialize_with = "layers::comma_separated")]
    pub api_key: Vec<String>,
    pub tenant_secret: Option<String>,
    pub max_paths: u32,

    // The gateway.
    pub gateway_addr: SocketAddr,
    pub gateway_connections: u32,
    pub submissions_per_second: u32,
    pub submission_burst: u32,
    pub max_attempts: u32,

    // The orchestrator.
    pub orchestrator_addr: SocketAddr,
    pub orchestrator_connections: u32,
    pub gateway_url: Option<String>,
    pub report_retention_days: u64,
    pub public_url: Option<String>,
    pub secure_cookies: Option<bool>,

    // The data service.
    pub datasvc_addr: SocketAddr,
    pub datasvc_connections: u32,
    pub customers: u32,
    pub datasvc_token: Option<String>,
    pub datasvc_allow_anonymous: bool,
    pub change_retention_seconds: u64,

    // A worker node.
    pub worker_addr: SocketAddr,
    pub worker_connections: u32,
    pub node_id: String,
    pub cache_dir: Option<PathBuf>,
    pub datasvc_url: Option<String>,
    pub workers: Option<u16>,
    pub lease_seconds: u64,
    pub steal_after_ms: u64,
    pub shutdown_grace_seconds: u64,
    pub max_running_per_tenant: u32,
    pub retention_hours: u64,
    pub catch_up_seconds: u64,

    // A worker node's cache.
    pub cache_ttl_seconds: u64,
    pub unknown_customer_ttl_seconds: u64,
    pub stale_limit_seconds: u64,
    pub result_ttl_seconds: u64,

    // A worker node's data-service client.
    pub datasvc_connect_timeout_ms: u64,
    pub datasvc_timeout_ms: u64,
    pub datasvc_attempts: u32,
    pub datasvc_backoff_ms: u64,
    pub datasvc_backoff_cap_ms: u64,
    pub datasvc_max_fetches: u32,
    pub datasvc_breaker_failures: u32,
    pub datasvc_breaker_open_ms: u64,
}

/// How service logs are written on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// For people.
    Text,
    /// One object per line, for a log collector.
    Json,
}

fn local(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

impl Default for Settings {
    fn default() -> Self {
        let cache = cache::Lifetimes::fresh_for(std::time::Duration::from_secs(3600));
        let client = worker::ClientConfig::new("", None);
        let worker = worker::WorkerConfig::default();
        let jobs = gateway::JobLimits::default();
        Settings {
            log_format: LogFormat::Text,
            database_url: None,
            data_dir: PathBuf::from("./projector-data"),
            drain_seconds: 1,
            max_connections: None,
            header_timeout_seconds: 15,
            body_timeout_seconds: 15,
            request_timeout_seconds: 75,
            metrics_token: None,
            api_key: Vec::new(),
            tenant_secret: None,
            max_paths: jobs.max_paths,
            gateway_addr: local(8000),
            gateway_connections: 6,
            submissions_per_second: 200,
            submission_burst: 1000,
            max_attempts: jobs.max_attempts,
            orchestrator_addr: local(3000),
            orchestrator_connections: 3,
            gateway_url: None,
            report_retention_days: orchestrator::DEFAULT_RETENTION.as_secs() / (24 * 3600),
            public_url: None,
            secure_cookies: None,
            datasvc_addr: local(8080),
            datasvc_connections: 6,
            customers: datasvc::DEMO_CUSTOMERS,
            datasvc_token: None,
            datasvc_allow_anonymous: false,
            change_retention_seconds: datasvc::DEFAULT_CHANGE_RETENTION.as_secs(),
            worker_addr: local(9100),
            worker_connections: 4,
            node_id: worker.node_id,
            cache_dir: None,
            datasvc_url: None,
            workers: None,
            lease_seconds: worker.lease.as_secs(),
            steal_after_ms: millis(worker.steal_after),
            shutdown_grace_seconds: worker.shutdown_grace.as_secs(),
            max_running_per_tenant: 0,
            retention_hours: worker.retention.as_secs() / 3600,
            catch_up_seconds: worker.catch_up_limit.as_secs(),
            cache_ttl_seconds: cache.portfolio.as_secs(),
            unknown_customer_ttl_seconds: cache.unknown.as_secs(),
            stale_limit_seconds: cache.stale_limit.as_secs(),
            result_ttl_seconds: cache.result.as_secs(),
            datasvc_connect_timeout_ms: millis(client.connect_timeout),
            datasvc_timeout_ms: millis(client.request_timeout),
            datasvc_attempts: client.attempts,
            datasvc_backoff_ms: millis(client.backoff_base),
            datasvc_backoff_cap_ms: millis(client.backoff_cap),
            datasvc_max_fetches: client.max_concurrent_fetches as u32,
            datasvc_breaker_failures: client.breaker_failures as u32,
            datasvc_breaker_open_ms: millis(client.breaker_open),
        }
    }
}

fn millis(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// A number outside what its key allows.
#[derive(Debug, PartialEq, Eq)]
pub struct OutOfRange {
    pub key: &'static str,
    pub value: u64,
    pub allowed: RangeInclusive<u64>,
}

/// A text value its key cannot use.
#[derive(Debug, PartialEq, Eq)]
pub struct Unusable {
    pub key: &'static str,
    pub rule: &'static str,
}

impl Settings {
    /// Every number's allowed range.
    fn ranges(&self) -> Vec<(&'static str, u64, RangeInclusive<u64>)> {
        let mut ranges = vec![
            ("drain_seconds", self.drain_seconds, 0..=600),
            (
                "header_timeout_seconds",
                self.header_timeout_seconds,
                1..=3600,
            ),
            ("body_timeout_seconds", self.body_timeout_seconds, 1..=3600),
            (
                "request_timeout_seconds",
                self.request_timeout_seconds,
                1..=3600,
            ),
            (
                "max_paths",
                u64::from(self.max_paths),
                1..=u64::from(engine::MAX_PATHS),
            ),
            (
                "gateway_connections",
                u64::from(self.gateway_connections),
                1..=1000,
            ),
            (
                "submissions_per_second",
                u64::from(self.submissions_per_second),
                0..=1_000_000,
            ),
            (
                "submission_burst",
                u64::from(self.submission_burst),
                1..=10_000_000,
            ),
            ("max_attempts", u64::from(self.max_attempts), 1..=100),
            (
                "orchestrator_connections",
                u64::from(self.orchestrator_connections),
                1..=1000,
            ),
            (
                "report_retention_days",
                self.report_retention_days,
                1..=3650,
            ),
            (
                "datasvc_connections",
                u64::from(self.datasvc_connections),
                1..=1000,
            ),
            ("customers", u64::from(self.customers), 1..=10_000_000),
            (
                "change_retention_seconds",
                self.change_retention_seconds,
                1..=YEAR_SECONDS,
            ),
            (
                "worker_connections",
                u64::from(self.worker_connections),
                1..=1000,
            ),
            ("lease_seconds", self.lease_seconds, 1..=3600),
            ("steal_after_ms", self.steal_after_ms, 0..=3_600_000),
            (
                "shutdown_grace_seconds",
                self.shutdown_grace_seconds,
                0..=3600,
            ),
            (
                "max_running_per_tenant",
                u64::from(self.max_running_per_tenant),
                0..=1_000_000,
            ),
            ("retention_hours", self.retention_hours, 1..=87_600),
            ("catch_up_seconds", self.catch_up_seconds, 0..=600),
            (
                "cache_ttl_seconds",
                self.cache_ttl_seconds,
                0..=YEAR_SECONDS,
            ),
            (
                "unknown_customer_ttl_seconds",
                self.unknown_customer_ttl_seconds,
                0..=YEAR_SECONDS,
            ),
            (
                "stale_limit_seconds",
                self.stale_limit_seconds,
                0..=YEAR_SECONDS,
            ),
            (
                "result_ttl_seconds",
                self.result_ttl_seconds,
                0..=YEAR_SECONDS,
            ),
            (
                "datasvc_connect_timeout_ms",
                self.datasvc_connect_timeout_ms,
                1..=60_000,
            ),
            ("datasvc_timeout_ms", self.datasvc_timeout_ms, 1..=600_000),
            ("datasvc_attempts", u64::from(self.datasvc_attempts), 1..=20),
            ("datasvc_backoff_ms", self.datasvc_backoff_ms, 1..=60_000),
            (
                "datasvc_backoff_cap_ms",
                self.datasvc_backoff_cap_ms,
                1..=600_000,
            ),
            (
                "datasvc_max_fetches",
                u64::from(self.datasvc_max_fetches),
                1..=1024,
            ),
            (
                "datasvc_breaker_failures",
                u64::from(self.datasvc_breaker_failures),
                1..=1000,
            ),
            (
                "datasvc_breaker_open_ms",
                self.datasvc_breaker_open_ms,
                1..=600_000,
            ),
        ];
        if let Some(count) = self.max_connections {
            ranges.push(("max_connections", u64::from(count), 1..=1_000_000));
        }
        if let Some(count) = self.workers {
            ranges.push(("workers", u64::from(count), 1..=256));
        }
        ranges
    }

    /// The first number outside its key's range.
    pub fn out_of_range(&self) -> Option<OutOfRange> {
        self.ranges()
            .into_iter()
            .find(|(_, value, allowed)| !allowed.contains(value))
            .map(|(key, value, allowed)| OutOfRange {
                key,
                value,
                allowed,
            })
    }

    /// The first text value its key cannot use.
    pub fn unusable(&self) -> Option<Unusable> {
        let urls = [
            ("gateway_url", &self.gateway_url),
            ("datasvc_url", &self.datasvc_url),
            ("public_url", &self.public_url),
        ];
        for (key, url) in urls {
            if url.as_deref().is_some_and(|url| !is_http_url(url)) {
                return Some(Unusable {
                    key,
                    rule: "must be an http:// or https:// URL, such as http://127.0.0.1:8080",
                });
            }
        }
        if self.node_id.is_empty() || self.node_id.len() > 64 {
            return Some(Unusable {
                key: "node_id",
                rule: "must be 1 to 64 characters, such as node-1",
            });
        }
        None
    }
}

fn is_http_url(text: &str) -> bool {
    reqwest::Url::parse(text)
        .is_ok_and(|url| matches!(url.scheme(), "http" | "https") && url.has_host())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_within_every_range() {
        let defaults = Settings::default();
        assert_eq!(defaults.out_of_range(), None);
        assert_eq!(defaults.unusable(), None);
    }

    #[test]
    fn every_numeric_key_has_a_range() {
        let with_options = Settings {
            max_connections: Some(10),
            workers: Some(2),
            ..Settings::default()
        };
        let ranged: Vec<&str> = with_options.ranges().iter().map(|(key, ..)| *key).collect();
        let numeric: Vec<String> = layers::keys_and_values(&with_options)
            .into_iter()
            .filter(|(_, value)| value.to_u128().is_some())
            .map(|(key, _)| key)
            .collect();
        let mut ranged_sorted: Vec<String> = ranged.iter().map(|key| key.to_string()).collect();
        ranged_sorted.sort();
        let mut numeric_sorted = numeric;
        numeric_sorted.sort();
        assert_eq!(ranged_sorted, numeric_sorted);
    }

    #[test]
    fn urls_and_node_ids_are_checked() {
        let bad_url = Settings {
            datasvc_url: Some("127.0.0.1:8080".into()),
            ..Settings::default()
        };
        assert_eq!(bad_url.unusable().unwrap().key, "datasvc_url");
        let empty_node = Settings {
            node_id: String::new(),
            ..Settings::default()
        };
        assert_eq!(empty_node.unusable().unwrap().key, "node_id");
    }
}
