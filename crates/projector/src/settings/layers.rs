//! Reading the layers, telling where each value came from, and refusing a
//! key or value that cannot be used with what is wrong and where.

use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use figment::providers::{Data, Format, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider, Source};
use serde::{Deserialize, Deserializer, Serialize};

use super::Settings;

const PREFIX: &str = "PROJECTOR_";
/// Names the file, not a key.
pub const CONFIG_VARIABLE: &str = "PROJECTOR_CONFIG";

/// The settings in effect and where they came from.
pub struct Loaded {
    pub settings: Settings,
    figment: Figment,
    /// `PROJECTOR_*` variables that name no key: ignored, and worth a warning.
    pub ignored: Vec<String>,
}

impl Loaded {
    /// Where `key`'s value came from: the file, the variable, the command line, or the default.
    pub fn source_of(&self, key: &str) -> String {
        match self.figment.find_metadata(key) {
            None => "default".to_string(),
            Some(metadata) => named(metadata, key),
        }
    }
}

/// A source as an operator finds it: the file's path, or the variable's name.
fn named(metadata: &Metadata, key: &str) -> String {
    match &metadata.source {
        Some(Source::File(path)) => path.display().to_string(),
        Some(other) => other.to_string(),
        None => metadata.interpolate(&Profile::Default, &[key]),
    }
}

/// Each value that does not fit its key, with the key and where it came from.
fn unusable(error: figment::Error) -> anyhow::Error {
    let lines: Vec<String> = error
        .into_iter()
        .map(|error| {
            let key = error.path.join(".");
            let source = error
                .metadata
                .as_ref()
                .map_or_else(|| "default".to_string(), |metadata| named(metadata, &key));
            let problem = error
                .kind
                .to_string()
                .replace("expected u64", "expected a whole number")
                .replace("expected u32", "expected a whole number")
                .replace("expected u16", "expected a whole number")
                .replace("``", "`");
            format!("{key} (from {source}): {problem}")
        })
        .collect();
    anyhow!(
        "{}; `projector config` shows every key with its value and where it came from",
        lines.join("; ")
    )
}

/// Every key with its value in `settings`; unset ones are empty values.
pub fn keys_and_values(settings: &Settings) -> Vec<(String, Value)> {
    Value::serialize(settings)
        .ok()
        .and_then(Value::into_dict)
        .map(|dict| dict.into_iter().collect())
        .unwrap_or_default()
}

fn keys() -> Vec<String> {
    keys_and_values(&Settings::default())
        .into_iter()
        .map(|(key, _)| key)
        .collect()
}

/// The defaults, then `file`, then the process's `PROJECTOR_*` variables, then `flags`.
pub fn load(file: Option<&Path>, flags: &impl Serialize) -> Result<Loaded> {
    load_from(file, std::env::vars(), flags)
}

pub fn load_from(
    file: Option<&Path>,
    variables: impl Iterator<Item = (String, String)>,
    flags: &impl Serialize,
) -> Result<Loaded> {
    let known = keys();
    let mut figment = Figment::new();
    if let Some(path) = file {
        figment = figment.merge(file_layer(path, &known)?);
    }
    let (environment, ignored) = environment_layer(variables, &known);
    let figment = figment
        .merge(environment)
        .merge(flags_layer(flags).context("the command line cannot be read as settings")?);
    // Lossy: a variable's text "15" is the number a numeric key needs.
    let settings: Settings = figment.extract_lossy().map_err(unusable)?;
    let loaded = Loaded {
        settings,
        figment,
        ignored,
    };
    loaded.check()?;
    Ok(loaded)
}

impl Loaded {
    fn check(&self) -> Result<()> {
        if let Some(wrong) = self.settings.out_of_range() {
            bail!(
                "{} = {} (from {}) is out of range: allowed {} to {}",
                wrong.key,
                wrong.value,
                self.source_of(wrong.key),
                wrong.allowed.start(),
                wrong.allowed.end()
            );
        }
        if let Some(wrong) = self.settings.unusable() {
            bail!(
                "{} (from {}) {}",
                wrong.key,
                self.source_of(wrong.key),
                wrong.rule
            );
        }
        Ok(())
    }
}

/// The file's keys, refused when one is not a key.
fn file_layer(path: &Path, known: &[String]) -> Result<Data<Toml>> {
    if let Err(error) = std::fs::metadata(path) {
        bail!(
            "cannot read the configuration file {} ({error}): check --config or {CONFIG_VARIABLE}",
            path.display()
        );
    }
    let layer = Toml::file_exact(path);
    let data = layer.data().map_err(|error| {
        anyhow!(
            "the configuration file {} is not valid TOML: {error}",
            path.display()
        )
    })?;
    for key in data.get(&Profile::Default).into_iter().flat_map(Dict::keys) {
        if !known.contains(key) {
            bail!("{}", unknown_key(key, path, known));
        }
    }
    Ok(layer)
}

fn unknown_key(key: &str, path: &Path, known: &[String]) -> String {
    let closest = known
        .iter()
        .map(|candidate| (strsim::jaro_winkler(key, candidate), candidate))
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .filter(|(likeness, _)| *likeness > 0.85);
    match closest {
        Some((_, candidate)) => format!(
            "unknown key `{key}` in the configuration file {}: did you mean `{candidate}`? (`projector config` lists every key)",
            path.display()
        ),
        None => format!(
            "unknown key `{key}` in the configuration file {}; the keys are: {}",
            path.display(),
            known.join(", ")
        ),
    }
}

/// The `PROJECTOR_*` variables that name keys, as text; and the names of those that do not.
fn environment_layer(
    variables: impl Iterator<Item = (String, String)>,
    known: &[String],
) -> (Layer, Vec<String>) {
    let mut dict = Dict::new();
    let mut ignored = Vec::new();
    for (name, value) in variables {
        let Some(key) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let key = key.to_ascii_lowercase();
        if known.contains(&key) {
            dict.insert(key, Value::from(value));
        } else if name != CONFIG_VARIABLE {
            ignored.push(name);
        }
    }
    let layer = Layer {
        name: "environment variable",
        dict,
        native: |key| format!("{PREFIX}{}", key.to_ascii_uppercase()),
    };
    (layer, ignored)
}

/// The flags given; those left out are not in the layer.
fn flags_layer(flags: &impl Serialize) -> Result<Layer> {
    let mut dict = Value::serialize(flags)?
        .into_dict()
        .ok_or_else(|| anyhow!("the flags are not a set of keys"))?;
    dict.retain(|_, value| value.to_empty().is_none());
    Ok(Layer {
        name: "command line",
        dict,
        native: |key| format!("--{}", key.replace('_', "-")),
    })
}

/// Values from one source, each named as that source names it.
struct Layer {
    name: &'static str,
    dict: Dict,
    native: fn(&str) -> String,
}

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        let native = self.native;
        Metadata::named(self.name).interpolater(move |_, keys: &[&str]| native(&keys.join(".")))
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.dict.clone()))
    }
}

/// API keys as a list, or as one comma-separated text (as a variable holds them).
pub fn comma_separated<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(
        untagged,
        expecting = "expected a list of texts or one comma-separated text, such as \"key1,key2\""
    )]
    enum Given {
        One(String),
        Many(Vec<String>),
    }
    let keys = match Given::deserialize(deserializer)? {
        Given::One(text) => text.split(',').map(str::to_string).collect(),
        Given::Many(keys) => keys,
    };
    Ok(keys
        .into_iter()
        .map(|key| key.trim().to_string())
        .filter(|key| !key.is_empty())
        .collect())
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::role::Role;
    use crate::settings::show;

    const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/projector.toml");

    #[derive(Serialize)]
    struct Flags {
        lease_seconds: Option<u64>,
        workers: Option<u16>,
    }

    const NO_FLAGS: Flags = Flags {
        lease_seconds: None,
        workers: None,
    };

    fn variables(pairs: &[(&str, &str)]) -> impl Iterator<Item = (String, String)> {
        pairs
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect::<Vec<_>>()
            .into_iter()
    }

    fn file(text: &str) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(text.as_bytes()).unwrap();
        file
    }

    #[test]
    fn the_sample_file_holds_every_key_at_its_default() {
        let loaded = load_from(Some(Path::new(SAMPLE)), variables(&[]), &NO_FLAGS).unwrap();
        assert_eq!(loaded.settings, Settings::default());
        let text = std::fs::read_to_string(SAMPLE).unwrap();
        for key in keys() {
            let given = text.lines().any(|line| {
                let line = line.trim_start_matches("# ");
                line.strip_prefix(key.as_str())
                    .is_some_and(|rest| rest.starts_with(" = "))
            });
            assert!(given, "docs/projector.toml does not show {key}");
        }
    }

    #[test]
    fn flags_override_variables_which_override_the_file() {
        let config = file("lease_seconds = 20\nworkers = 2\nnode_id = \"from-file\"\n");
        let flags = Flags {
            lease_seconds: Some(40),
            workers: None,
        };
        let loaded = load_from(
            Some(config.path()),
            variables(&[
                ("PROJECTOR_LEASE_SECONDS", "30"),
                ("PROJECTOR_WORKERS", "3"),
            ]),
            &flags,
        )
        .unwrap();
        let settings = &loaded.settings;
        assert_eq!(
            (
                settings.lease_seconds,
                settings.workers,
                settings.node_id.as_str()
            ),
            (40, Some(3), "from-file")
        );
        assert_eq!(loaded.source_of("lease_seconds"), "--lease-seconds");
        assert_eq!(loaded.source_of("workers"), "PROJECTOR_WORKERS");
        assert_eq!(
            loaded.source_of("node_id"),
            config.path().display().to_string()
        );
        assert_eq!(loaded.source_of("max_paths"), "default");
    }

    #[test]
    fn variables_are_text_until_a_key_needs_a_number() {
        let loaded = load_from(
            None,
            variables(&[
                ("PROJECTOR_NODE_ID", "007"),
                ("PROJECTOR_API_KEY", "1234, second,"),
                ("PROJECTOR_DATASVC_ALLOW_ANONYMOUS", "true"),
                ("PROJECTOR_TEST_DATABASE_URL", "postgres://elsewhere"),
                ("PROJECTOR_CONFIG", "named elsewhere"),
                ("HOME", "/root"),
            ]),
            &NO_FLAGS,
        )
        .unwrap();
        assert_eq!(loaded.settings.node_id, "007");
        assert_eq!(loaded.settings.api_key, ["1234", "second"]);
        assert!(loaded.settings.datasvc_allow_anonymous);
        assert_eq!(loaded.ignored, ["PROJECTOR_TEST_DATABASE_URL"]);
    }

    /// Why the settings from a file of `text`, and `pairs`, are refused; and the file's path.
    fn refusal(text: &str, pairs: &[(&str, &str)]) -> (String, String) {
        let config = file(text);
        let error = load_from(Some(config.path()), variables(pairs), &NO_FLAGS)
            .err()
            .expect("refused");
        (error.to_string(), config.path().display().to_string())
    }

    #[test]
    fn a_wrong_key_or_value_names_the_key_the_source_and_what_is_allowed() {
        let (error, path) = refusal("lease_second = 20\n", &[]);
        assert!(error.contains("unknown key `lease_second`"), "{error}");
        assert!(error.contains("did you mean `lease_seconds`"), "{error}");
        assert!(error.contains(&path), "{error}");

        let (error, _) = refusal("[worker]\nlease_seconds = 20\n", &[]);
        assert!(error.contains("unknown key `worker`"), "{error}");

        let (error, _) = refusal("", &[("PROJECTOR_LEASE_SECONDS", "soon")]);
        assert!(
            error.starts_with("lease_seconds (from PROJECTOR_LEASE_SECONDS): invalid type: found string \"soon\", expected a whole number"),
            "{error}"
        );

        let (error, path) = refusal("max_paths = 2000000\n", &[]);
        assert_eq!(
            error,
            format!("max_paths = 2000000 (from {path}) is out of range: allowed 1 to 1000000")
        );

        let (error, _) = refusal("lease_seconds = [\n", &[]);
        assert!(error.contains("is not valid TOML"), "{error}");
    }

    #[test]
    fn the_shown_configuration_redacts_secrets_and_keeps_to_the_role() {
        let loaded = load_from(
            None,
            variables(&[
                ("PROJECTOR_API_KEY", "tenant-key-1"),
                (
                    "PROJECTOR_DATABASE_URL",
                    "postgres://user:password@db/projector",
                ),
                ("PROJECTOR_LEASE_SECONDS", "30"),
            ]),
            &NO_FLAGS,
        )
        .unwrap();
        let shown = show(&loaded, Some(Role::Gateway));
        assert!(
            !shown.contains("tenant-key-1") && !shown.contains("password"),
            "{shown}"
        );
        assert!(shown.contains("api_key = \"(redacted)\""), "{shown}");
        assert!(
            !shown.contains("lease_seconds"),
            "a gateway has no lease: {shown}"
        );
        let every = show(&loaded, None);
        let lease = every
            .lines()
            .find(|line| line.starts_with("lease_seconds"))
            .unwrap();
        assert!(
            lease.starts_with("lease_seconds = 30 ")
                && lease.ends_with("# PROJECTOR_LEASE_SECONDS"),
            "{lease}"
        );
        // What is shown is a configuration file that loads to the same settings.
        let kept = file(&every.replace("\"(redacted)\"", "\"x\""));
        let reloaded = load_from(Some(kept.path()), variables(&[]), &NO_FLAGS).unwrap();
        assert_eq!(reloaded.settings.lease_seconds, 30);
    }
}
