//! One configuration for every role, in layers: built-in defaults, then a TOML
//! file (`--config`, `PROJECTOR_CONFIG`), then `PROJECTOR_*` variables, then
//! flags. Keys are flat and named as the variables are, without the prefix, so
//! `lease_seconds` in the file is `PROJECTOR_LEASE_SECONDS` and `--lease-seconds`.

mod declare;
mod keys;
mod layers;
mod parts;
mod show;

use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};

pub use keys::{KEYS, Settings, key};
pub use layers::{Loaded, load};
pub use show::show;

/// How service logs are written on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// For people.
    Text,
    /// One object per line, for a log collector.
    Json,
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
