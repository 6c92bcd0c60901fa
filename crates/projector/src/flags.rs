//! The roles' flags: the last layer of the settings. Each role's command
//! takes the keys the table gives it a flag for (`--lease-seconds` sets
//! `lease_seconds`; a role's own address is also its `--addr`), and one left
//! out leaves the key to the file, the variables or the default.

use std::marker::PhantomData;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, FromArgMatches};
use figment::value::{Dict, Value};
use serde::{Serialize, Serializer};

use crate::role::Role;
use crate::settings::KEYS;

/// A role's command, as a type: its flags are the keys flagged for `ROLE`.
pub trait RoleCommand {
    const ROLE: Role;
}

macro_rules! role_commands {
    ($($command:ident),+) => {
        $(
            #[derive(Debug)]
            pub struct $command;

            impl RoleCommand for $command {
                const ROLE: Role = Role::$command;
            }
        )+
    };
}

role_commands!(Gateway, Worker, Orchestrator, Datasvc, Up);

/// The flags given to `R`'s command, by key.
#[derive(Debug)]
pub struct Flags<R> {
    given: Dict,
    command: PhantomData<R>,
}

impl<R: RoleCommand> Args for Flags<R> {
    fn augment_args(command: clap::Command) -> clap::Command {
        command.args(
            KEYS.iter()
                .filter(|key| key.flags.contains(&R::ROLE))
                .map(|key| key.flag(R::ROLE)),
        )
    }

    fn augment_args_for_update(command: clap::Command) -> clap::Command {
        Self::augment_args(command)
    }
}

impl<R: RoleCommand> FromArgMatches for Flags<R> {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let mut given = Dict::new();
        for key in KEYS.iter().filter(|key| key.flags.contains(&R::ROLE)) {
            if matches.value_source(key.name) != Some(ValueSource::CommandLine) {
                continue;
            }
            // Checked by the flag's parser already; the settings read the text.
            let mut values: Vec<String> = matches
                .get_raw(key.name)
                .into_iter()
                .flatten()
                .map(|value| value.to_string_lossy().into_owned())
                .collect();
            let value = if key.list {
                Value::from(values)
            } else {
                match values.pop() {
                    Some(value) => Value::from(value),
                    None => continue,
                }
            };
            given.insert(key.name.to_string(), value);
        }
        Ok(Flags {
            given,
            command: PhantomData,
        })
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

impl<R> Serialize for Flags<R> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.given.serialize(serializer)
    }
}

/// `migrate` takes the store's URL only.
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

#[cfg(test)]
mod tests {
    use super::*;

    fn given<R: RoleCommand>(words: &[&str]) -> Result<Dict, clap::Error> {
        let command = Flags::<R>::augment_args(clap::Command::new(R::ROLE.name()));
        let matches = command
            .try_get_matches_from(std::iter::once("projector").chain(words.iter().copied()))?;
        Ok(Flags::<R>::from_arg_matches(&matches)?.given)
    }

    #[test]
    fn only_the_flags_given_are_in_the_layer_as_the_settings_read_them() {
        let flags = given::<Up>(&[
            "--api-key",
            "first,second",
            "--api-key=third",
            "--lease-seconds",
            "20",
            "--datasvc-allow-anonymous",
        ])
        .unwrap();
        assert_eq!(flags.len(), 3, "{flags:?}");
        let keys: Vec<String> = flags["api_key"]
            .as_array()
            .unwrap()
            .iter()
            .map(|key| key.as_str().unwrap().to_string())
            .collect();
        assert_eq!(keys, ["first", "second", "third"]);
        assert_eq!(flags["lease_seconds"].as_str(), Some("20"));
        assert_eq!(flags["datasvc_allow_anonymous"].as_str(), Some("true"));
    }

    #[test]
    fn a_role_has_the_flags_of_its_keys_and_its_address_as_addr() {
        let flags = given::<Gateway>(&["--addr", "127.0.0.1:0"]).unwrap();
        assert_eq!(flags["gateway_addr"].as_str(), Some("127.0.0.1:0"));
        let refused = given::<Gateway>(&["--lease-seconds", "20"]).unwrap_err();
        assert_eq!(refused.kind(), clap::error::ErrorKind::UnknownArgument);
        let refused = given::<Worker>(&["--lease-seconds", "soon"]).unwrap_err();
        assert!(
            refused
                .to_string()
                .contains("invalid value 'soon' for '--lease-seconds <LEASE_SECONDS>'"),
            "{refused}"
        );
    }
}
