//! `projector config`: the settings in effect, where each came from, secrets
//! redacted, as a TOML file an operator can keep.

use figment::value::Value;

use super::Loaded;
use super::layers::keys_and_values;

/// A role whose keys `projector config --role` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    Gateway,
    Worker,
    Orchestrator,
    Datasvc,
    /// Every role in one process.
    Up,
}

/// Keys whose values are never shown.
const SECRETS: &[&str] = &[
    "database_url",
    "metrics_token",
    "api_key",
    "tenant_secret",
    "datasvc_token",
];

impl Role {
    /// The roles that read `key`.
    fn readers(key: &str) -> &'static [Role] {
        use Role::*;
        match key {
            "log_format"
            | "database_url"
            | "data_dir"
            | "max_connections"
            | "header_timeout_seconds"
            | "body_timeout_seconds"
            | "request_timeout_seconds"
            | "metrics_token" => &[Gateway, Worker, Orchestrator, Datasvc, Up],
            "drain_seconds" => &[Gateway, Orchestrator, Datasvc],
            "api_key" | "tenant_secret" => &[Gateway, Orchestrator, Up],
            "max_paths" => &[Gateway, Orchestrator, Worker, Up],
            "gateway_addr"
            | "gateway_connections"
            | "submissions_per_second"
            | "submission_burst"
            | "max_attempts" => &[Gateway, Up],
            "gateway_url" => &[Orchestrator],
            "orchestrator_addr"
            | "orchestrator_connections"
            | "report_retention_days"
            | "public_url"
            | "secure_cookies" => &[Orchestrator, Up],
            "datasvc_addr" | "datasvc_token" => &[Datasvc, Worker, Up],
            "datasvc_connections"
            | "customers"
            | "datasvc_allow_anonymous"
            | "change_retention_seconds" => &[Datasvc, Up],
            "worker_addr" | "node_id" | "cache_dir" => &[Worker],
            "worker_connections"
            | "datasvc_url"
            | "workers"
            | "lease_seconds"
            | "steal_after_ms"
            | "shutdown_grace_seconds"
            | "max_running_per_tenant"
            | "retention_hours"
            | "catch_up_seconds"
            | "cache_ttl_seconds"
            | "unknown_customer_ttl_seconds"
            | "stale_limit_seconds"
            | "result_ttl_seconds"
            | "datasvc_connect_timeout_ms"
            | "datasvc_timeout_ms"
            | "datasvc_attempts"
            | "datasvc_backoff_ms"
            | "datasvc_backoff_cap_ms"
            | "datasvc_max_fetches"
            | "datasvc_breaker_failures"
            | "datasvc_breaker_open_ms" => &[Worker, Up],
            _ => &[],
        }
    }
}

/// The keys `role` reads (every key without one), each with its value and source.
pub fn show(loaded: &Loaded, role: Option<Role>) -> String {
    let mut lines = Vec::new();
    for (key, value) in keys_and_values(&loaded.settings) {
        if role.is_some_and(|role| !Role::readers(&key).contains(&role)) {
            continue;
        }
        let source = loaded.source_of(&key);
        let line = match rendered(&key, &value) {
            Some(value) => format!("{key} = {value}"),
            None => format!("# {key} is unset"),
        };
        lines.push((line, source));
    }
    let width = lines.iter().map(|(line, _)| line.len()).max().unwrap_or(0);
    let mut shown = String::from(
        "# The settings in effect: defaults, then the file, then PROJECTOR_* variables,\n# then flags. Each line ends with where its value came from.\n",
    );
    for (line, source) in lines {
        shown.push_str(&format!("{line:<width$}  # {source}\n"));
    }
    shown
}

/// The value as TOML; secrets redacted; `None` when unset.
fn rendered(key: &str, value: &Value) -> Option<String> {
    let unset = value.to_empty().is_some() || value.as_array().is_some_and(<[Value]>::is_empty);
    if unset {
        return None;
    }
    if SECRETS.contains(&key) {
        return Some("\"(redacted)\"".to_string());
    }
    if key.ends_with("_url")
        && let Some(url) = value.as_str()
    {
        return serde_json::to_string(&database::redact_url(url)).ok();
    }
    // JSON's scalars, strings and lists are TOML's too.
    Some(serde_json::to_string(value).unwrap_or_else(|_| "\"(unprintable)\"".to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Settings;

    #[test]
    fn urls_are_shown_without_their_credentials() {
        let shown = |key, url: &str| rendered(key, &Value::from(url)).unwrap();
        assert_eq!(
            shown("gateway_url", "http://relay:gateway-pass@gateway:8000"),
            "\"http://relay:***@gateway:8000\""
        );
        assert_eq!(
            shown("datasvc_url", "http://datasvc:8080/api?token=datasvc-pass"),
            "\"http://datasvc:8080/api?token=***\""
        );
    }

    #[test]
    fn every_key_has_a_reader() {
        for (key, _) in keys_and_values(&Settings::default()) {
            assert!(!Role::readers(&key).is_empty(), "{key} is read by no role");
        }
    }

    #[test]
    fn every_secret_is_a_key() {
        let keys: Vec<String> = keys_and_values(&Settings::default())
            .into_iter()
            .map(|(key, _)| key)
            .collect();
        for secret in SECRETS {
            assert!(keys.iter().any(|key| key == secret), "{secret}");
        }
    }
}
