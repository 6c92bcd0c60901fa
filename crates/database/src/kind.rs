//! What a store's failure means for whoever asked, whatever the store: one
//! classification that every role's answers are made from.

use crate::{Error, is_damage, is_full};

/// The kinds of failure a caller acts on differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request collides with an earlier one (4xx).
    Conflict,
    /// Refused for a reason the caller can change.
    Refused,
    /// Try again shortly (503 with `Retry-After`).
    Unavailable,
    /// The deployment needs an operator (a schema to migrate).
    Misconfigured,
    /// The store's data is damaged: an operator must restore it; retrying cannot help.
    Damaged,
    /// The store's disk is full: an operator must free space (507).
    Full,
}

/// A store error that says which kind of failure it is.
pub trait Classify {
    fn kind(&self) -> ErrorKind;
}

impl Classify for sqlx::Error {
    fn kind(&self) -> ErrorKind {
        if is_damage(self) {
            ErrorKind::Damaged
        } else if is_full(self) {
            ErrorKind::Full
        } else {
            ErrorKind::Unavailable
        }
    }
}

impl Classify for Error {
    fn kind(&self) -> ErrorKind {
        match self {
            Error::Connect { source, .. } | Error::Query { source, .. } => source.kind(),
            Error::EmptyFile { .. } | Error::Damaged { .. } => ErrorKind::Damaged,
            Error::UnsupportedUrl(_)
            | Error::SchemaBehind { .. }
            | Error::SchemaAhead { .. }
            | Error::ForeignSchema { .. }
            | Error::UnknownParameter { .. }
            | Error::Migrate { .. }
            | Error::ReadOnly { .. } => ErrorKind::Misconfigured,
        }
    }
}
