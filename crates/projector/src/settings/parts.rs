//! The role crates' own configurations, made from the settings.

use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, bail};
use cache::Lifetimes;
use database::{Location, SchemaPolicy};
use datasvc::{Access, ServiceConfig};
use gateway::{GatewayConfig, JobLimits, SubmissionRate};
use orchestrator::{DispatchConfig, OrchestratorConfig};
use service::server::Limits;
use service::{Secret, Tenants};
use worker::{ClientConfig, NodeConfig, WorkerConfig};

use super::Settings;
use crate::listen::Listening;
use crate::role::Role;
use crate::stores::create_dir;

fn seconds(count: u64) -> Duration {
    Duration::from_secs(count)
}

fn millis(count: u64) -> Duration {
    Duration::from_millis(count)
}

impl Settings {
    /// What the roles started after `role` in one process need to know of it.
    pub fn learn(&mut self, role: Role, url: &str) {
        match role {
            Role::Datasvc => self.datasvc_url = Some(url.to_string()),
            Role::Gateway => self.gateway_url = Some(url.to_string()),
            Role::Orchestrator | Role::Worker | Role::Up => {}
        }
    }

    /// The store named by `database_url`, or the embedded `file` in the data directory.
    pub fn location(&self, file: &str) -> Result<Location> {
        match &self.database_url {
            Some(url) => Location::parse(url).map_err(Into::into),
            None => {
                create_dir(&self.data_dir)?;
                Ok(Location::Sqlite(self.data_dir.join(file)))
            }
        }
    }

    /// A shared store named by URL changes schema only through `projector migrate`;
    /// the embedded default is this process's own and is kept up to date.
    pub fn policy(&self) -> SchemaPolicy {
        match self.database_url {
            Some(_) => SchemaPolicy::Require,
            None => SchemaPolicy::Apply,
        }
    }

    /// What every listener of the process allows its clients.
    pub fn listening(&self) -> Listening {
        let defaults = Limits::default();
        Listening {
            limits: Limits {
                max_connections: self
                    .max_connections
                    .map_or(defaults.max_connections, |count| count as usize),
                header_timeout: seconds(self.header_timeout_seconds),
                body_timeout: seconds(self.body_timeout_seconds),
                request_timeout: seconds(self.request_timeout_seconds),
                ..defaults
            },
            scrape_token: Secret::given(self.metrics_token.as_deref()),
        }
    }

    /// The API keys given, without empty ones.
    pub fn api_keys(&self) -> Vec<Secret> {
        self.api_key
            .iter()
            .filter_map(|key| Secret::given(Some(key)))
            .collect()
    }

    pub fn tenant_secret(&self) -> Option<Secret> {
        Secret::given(self.tenant_secret.as_deref())
    }

    /// The tenants `role` serves: it needs keys and the secret owners are derived with.
    pub fn tenants(&self, role: &str) -> Result<Tenants> {
        let keys = self.api_keys();
        if keys.is_empty() {
            bail!(
                "{role} needs the tenants' API keys: set api_key in the configuration file, PROJECTOR_API_KEY=KEY1,KEY2, or pass --api-key"
            );
        }
        let Some(secret) = self.tenant_secret() else {
            bail!(
                "{role} needs the tenant secret that job owners are derived from keys with: set tenant_secret (PROJECTOR_TENANT_SECRET) to a long random value, the same on every gateway and orchestrator"
            );
        };
        Ok(Tenants::new(secret, &keys))
    }

    pub fn gateway(&self, tenants: Tenants) -> GatewayConfig {
        GatewayConfig {
            tenants,
            limits: self.job_limits(),
            submission_rate: self.submission_rate(),
        }
    }

    /// How fast each tenant may submit; no limit at 0 a second.
    pub fn submission_rate(&self) -> Option<SubmissionRate> {
        Some(SubmissionRate {
            per_second: NonZeroU32::new(self.submissions_per_second)?,
            burst: NonZeroU32::new(self.submission_burst)?,
        })
    }

    pub fn job_limits(&self) -> JobLimits {
        JobLimits {
            max_attempts: self.max_attempts,
            max_paths: self.max_paths,
        }
    }

    /// The gateway the orchestrator submits to: `gateway_url`, or this
    /// machine's gateway at `gateway_addr`.
    pub fn gateway_url(&self) -> String {
        self.gateway_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.gateway_addr))
    }

    pub fn orchestrator(&self, tenants: Tenants) -> OrchestratorConfig {
        OrchestratorConfig {
            dispatch: self.dispatch(&self.gateway_url()),
            tenants,
        }
    }

    pub fn dispatch(&self, gateway_url: &str) -> DispatchConfig {
        DispatchConfig {
            retention: seconds(self.report_retention_days * 24 * 3600),
            max_paths: self.max_paths,
            public_origin: self.public_url.as_deref().map(origin_of),
            // Behind TLS, cookies travel over HTTPS only, unless said otherwise.
            secure_cookies: self.secure_cookies.unwrap_or_else(|| {
                self.public_url
                    .as_deref()
                    .is_some_and(|url| url.starts_with("https://"))
            }),
            ..DispatchConfig::new(gateway_url)
        }
    }

    pub fn datasvc_token(&self) -> Option<Secret> {
        Secret::given(self.datasvc_token.as_deref())
    }

    /// How the data service serves.
    pub fn service(&self) -> Result<ServiceConfig> {
        let access = Access {
            token: self.datasvc_token(),
            allow_anonymous: self.datasvc_allow_anonymous,
        };
        if access.token.is_none() && !access.allow_anonymous {
            bail!(
                "the data service needs a token for its callers: set datasvc_token (PROJECTOR_DATASVC_TOKEN, --datasvc-token; the workers send the same), or datasvc_allow_anonymous (--datasvc-allow-anonymous) to serve legacy clients on a trusted network"
            );
        }
        Ok(ServiceConfig {
            access,
            change_retention: seconds(self.change_retention_seconds),
        })
    }

    /// The data service a worker reads: `datasvc_url`, or this machine's at `datasvc_addr`.
    pub fn datasvc_url(&self) -> String {
        self.datasvc_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.datasvc_addr))
    }

    /// A worker node; `reclaim_node_id` for a process that knows it is the
    /// only one with its node id (`up`).
    pub fn worker(&self, reclaim_node_id: bool) -> WorkerConfig {
        WorkerConfig {
            node: NodeConfig {
                reclaim_node_id,
                ..self.node()
            },
            cache_dir: self.cache_dir(),
            cache_lifetimes: self.cache_lifetimes(),
            data_service: self.client(&self.datasvc_url(), self.datasvc_token()),
        }
    }

    pub fn node(&self) -> NodeConfig {
        let defaults = NodeConfig::default();
        let lease = seconds(self.lease_seconds);
        NodeConfig {
            actors: self.workers.map_or(defaults.actors, usize::from),
            node_id: self.node_id.clone(),
            lease,
            heartbeat: lease / 5,
            steal_after: millis(self.steal_after_ms),
            shutdown_grace: seconds(self.shutdown_grace_seconds),
            retention: seconds(self.retention_hours * 3600),
            max_running_per_tenant: Some(self.max_running_per_tenant).filter(|&limit| limit > 0),
            max_paths: self.max_paths,
            catch_up_limit: seconds(self.catch_up_seconds),
            ..defaults
        }
    }

    /// The node's own cache: `cache_dir`, or `<data_dir>/cache/<node_id>`.
    pub fn cache_dir(&self) -> PathBuf {
        self.cache_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("cache").join(&self.node_id))
    }

    pub fn cache_lifetimes(&self) -> Lifetimes {
        Lifetimes {
            portfolio: seconds(self.cache_ttl_seconds),
            unknown: seconds(self.unknown_customer_ttl_seconds),
            stale_limit: seconds(self.stale_limit_seconds),
            result: seconds(self.result_ttl_seconds),
        }
    }

    pub fn client(&self, base_url: &str, token: Option<Secret>) -> ClientConfig {
        ClientConfig {
            connect_timeout: millis(self.datasvc_connect_timeout_ms),
            request_timeout: millis(self.datasvc_timeout_ms),
            attempts: self.datasvc_attempts,
            backoff_base: millis(self.datasvc_backoff_ms),
            backoff_cap: millis(self.datasvc_backoff_cap_ms),
            max_concurrent_fetches: self.datasvc_max_fetches as usize,
            breaker_failures: self.datasvc_breaker_failures as usize,
            breaker_open: millis(self.datasvc_breaker_open_ms),
            ..ClientConfig::new(base_url, token)
        }
    }
}

/// The origin (scheme, host and port) of a URL, as a browser sends it in `Origin`.
fn origin_of(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("http", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    format!("{scheme}://{authority}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_https_public_url_makes_cookies_secure_unless_said_otherwise() {
        let behind_tls = Settings {
            public_url: Some("https://reports.example:8443/base".into()),
            ..Settings::default()
        };
        let config = behind_tls.dispatch("http://127.0.0.1:8000");
        assert!(config.secure_cookies);
        assert_eq!(
            config.public_origin.as_deref(),
            Some("https://reports.example:8443")
        );
        let said_otherwise = Settings {
            secure_cookies: Some(false),
            ..behind_tls
        };
        assert!(
            !said_otherwise
                .dispatch("http://127.0.0.1:8000")
                .secure_cookies
        );
        assert!(
            !Settings::default()
                .dispatch("http://127.0.0.1:8000")
                .secure_cookies
        );
    }

    /// The defaults are the role crates' own: a setting left alone changes nothing.
    #[test]
    fn default_settings_make_the_crates_defaults() {
        let settings = Settings::default();
        let worker = settings.node();
        let defaults = NodeConfig::default();
        assert_eq!(
            (worker.lease, worker.heartbeat, worker.steal_after),
            (defaults.lease, defaults.heartbeat, defaults.steal_after)
        );
        assert_eq!(
            (worker.retention, worker.max_paths, worker.catch_up_limit),
            (
                defaults.retention,
                defaults.max_paths,
                defaults.catch_up_limit
            )
        );
        assert_eq!(settings.job_limits(), JobLimits::default());
        assert_eq!(
            settings.cache_lifetimes(),
            Lifetimes::fresh_for(Duration::from_secs(3600))
        );
        let client = settings.client("http://127.0.0.1:8080", None);
        let expected = ClientConfig::new("http://127.0.0.1:8080", None);
        assert_eq!(format!("{client:?}"), format!("{expected:?}"));
        let dispatch = settings.dispatch("http://127.0.0.1:8000");
        assert_eq!(dispatch.retention, orchestrator::DEFAULT_RETENTION);
        assert_eq!(settings.gateway_url(), "http://127.0.0.1:8000");
        assert_eq!(settings.datasvc_url(), "http://127.0.0.1:8080");
    }
}
