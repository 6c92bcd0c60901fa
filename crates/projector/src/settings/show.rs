//! `projector config`: the settings in effect, where each came from, secrets
//! redacted, as a TOML file an operator can keep.

use figment::value::Value;

use super::layers::keys_and_values;
use super::{Loaded, key};
use crate::role::Role;

/// The keys `role` reads (every key without one), each with its value and source.
pub fn show(loaded: &Loaded, role: Option<Role>) -> String {
    let mut lines = Vec::new();
    for (name, value) in keys_and_values(&loaded.settings) {
        if role.is_some_and(|role| !key(&name).is_some_and(|key| key.readers.contains(&role))) {
            continue;
        }
        let source = loaded.source_of(&name);
        let line = match rendered(&name, &value) {
            Some(value) => format!("{name} = {value}"),
            None => format!("# {name} is unset"),
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
fn rendered(name: &str, value: &Value) -> Option<String> {
    let unset = value.to_empty().is_some() || value.as_array().is_some_and(<[Value]>::is_empty);
    if unset {
        return None;
    }
    if key(name).is_some_and(|key| key.secret) {
        return Some("\"(redacted)\"".to_string());
    }
    if name.ends_with("_url")
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
    fn every_key_has_a_reader_and_credentials_are_secret() {
        for (name, _) in keys_and_values(&Settings::default()) {
            let key = key(&name).unwrap_or_else(|| panic!("{name} is not declared"));
            assert!(!key.readers.is_empty(), "{name} is read by no role");
            let credential = ["_token", "_secret", "_key", "database_url"]
                .iter()
                .any(|ending| name.ends_with(ending));
            assert_eq!(key.secret, credential, "{name}");
        }
    }
}
