//! How a key is declared: one entry of `settings_table!` gives the field of
//! [`Settings`](super::Settings), its default, its range, the roles that read
//! it, its flag and its help. Everything else about a key (the variables, the
//! file's check, `projector config`) is derived from those.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Arg, ArgAction, value_parser};

use super::LogFormat;
use crate::role::Role;

/// What the table says about one key.
pub struct Key {
    pub name: &'static str,
    /// The doc comment's lines, each after a space.
    pub help: &'static str,
    pub readers: &'static [Role],
    /// The roles whose command has the key's flag.
    pub flags: &'static [Role],
    pub value_name: Option<&'static str>,
    /// Never shown by `projector config`.
    pub secret: bool,
    /// Sets the flag's parser and arity for the key's type.
    pub configure: fn(Arg) -> Arg,
    /// Whether the flag gives a list.
    pub list: bool,
}

impl Key {
    /// The key's flag for `role`'s command: `--lease-seconds` for `lease_seconds`;
    /// a role's own address is also its `--addr`.
    pub fn flag(&self, role: Role) -> Arg {
        let value_name = self
            .value_name
            .map_or_else(|| self.name.to_uppercase(), str::to_string);
        let arg = Arg::new(self.name)
            .long(self.name.replace('_', "-"))
            .help(self.help.trim().trim_end_matches('.'))
            .value_name(value_name);
        let arg = if self.is_address_of(role) {
            arg.visible_alias("addr").display_order(0)
        } else {
            arg
        };
        (self.configure)(arg)
    }

    /// Whether the key is where `role` listens: `gateway_addr` for the gateway.
    pub fn is_address_of(&self, role: Role) -> bool {
        self.name.strip_suffix("_addr") == Some(role.name())
    }
}

/// A number a range is checked on.
pub trait Ranged {
    fn ranged(&self) -> Option<u64>;
}

impl Ranged for u64 {
    fn ranged(&self) -> Option<u64> {
        Some(*self)
    }
}

impl Ranged for u32 {
    fn ranged(&self) -> Option<u64> {
        Some(u64::from(*self))
    }
}

impl Ranged for u16 {
    fn ranged(&self) -> Option<u64> {
        Some(u64::from(*self))
    }
}

/// Unset has no range to be outside of.
impl<T: Ranged> Ranged for Option<T> {
    fn ranged(&self) -> Option<u64> {
        self.as_ref().and_then(Ranged::ranged)
    }
}

/// How a key's type is given on the command line.
pub trait FlagValue {
    const LIST: bool = false;
    fn configure(arg: Arg) -> Arg;
}

macro_rules! parsed_as_itself {
    ($($type:ty),+) => {
        $(impl FlagValue for $type {
            fn configure(arg: Arg) -> Arg {
                arg.value_parser(value_parser!($type))
            }
        })+
    };
}

parsed_as_itself!(u64, u32, u16, String, PathBuf, SocketAddr, LogFormat);

/// `--flag` alone means true; `--flag=false` says so.
impl FlagValue for bool {
    fn configure(arg: Arg) -> Arg {
        arg.num_args(0..=1)
            .require_equals(true)
            .default_missing_value("true")
            .value_parser(value_parser!(bool))
    }
}

/// Comma-separated, or the flag repeated.
impl FlagValue for Vec<String> {
    const LIST: bool = true;
    fn configure(arg: Arg) -> Arg {
        arg.value_delimiter(',')
            .action(ArgAction::Append)
            .value_parser(value_parser!(String))
    }
}

impl<T: FlagValue> FlagValue for Option<T> {
    const LIST: bool = T::LIST;
    fn configure(arg: Arg) -> Arg {
        T::configure(arg)
    }
}

/// `Some` of the one literal given, `None` without one.
macro_rules! given {
    () => {
        None
    };
    ($value:literal) => {
        Some($value)
    };
}

/// The literal given, false without one.
macro_rules! or_false {
    () => {
        false
    };
    ($value:literal) => {
        $value
    };
}

/// The settings from one declaration per key:
///
/// ```text
/// /// Help, as the flag and the documentation give it.
/// key: Type = default => read by ROLES, flags for ROLES
///     [, value name "URL"] [, in RANGE] [, secret = true];
/// ```
macro_rules! settings_table {
    ($(
        $(#[doc = $doc:literal])+
        $(#[serde($($serde:tt)*)])?
        $key:ident: $type:ty = $default:expr =>
            read by $readers:expr, flags for $flags:expr
            $(, value name $value_name:literal)?
            $(, in $range:expr)?
            $(, secret = $secret:literal)?;
    )+) => {
        /// Every key, with its default. Durations are whole units named in the key.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(default, deny_unknown_fields)]
        pub struct Settings {
            $(
                $(#[doc = $doc])+
                $(#[serde($($serde)*)])?
                pub $key: $type,
            )+
        }

        impl Default for Settings {
            fn default() -> Self {
                Settings {
                    $($key: $default,)+
                }
            }
        }

        impl Settings {
            /// Every set number's allowed range.
            pub(super) fn ranges(&self) -> Vec<(&'static str, u64, RangeInclusive<u64>)> {
                let mut ranges = Vec::new();
                $($(
                    if let Some(value) = Ranged::ranged(&self.$key) {
                        ranges.push((stringify!($key), value, $range));
                    }
                )?)+
                ranges
            }
        }

        /// Every key, in the order `projector config` and the flags show them.
        pub const KEYS: &[Key] = &[
            $(Key {
                name: stringify!($key),
                help: concat!($($doc),+),
                readers: $readers,
                flags: $flags,
                value_name: given!($($value_name)?),
                secret: or_false!($($secret)?),
                configure: <$type as FlagValue>::configure,
                list: <$type as FlagValue>::LIST,
            },)+
        ];
    };
}

pub(super) use {given, or_false, settings_table};
