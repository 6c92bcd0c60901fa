use thiserror::Error;

/// Everything that can stop a projection. Every variant names what was wrong and
/// how to fix it; nothing in the engine panics on input.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum Error {
    /// A parameter, a portfolio value or a capital-market assumption broke a rule.
    #[error("invalid {field}: {rule}")]
    Invalid { field: String, rule: String },
    /// A scenario (injected shocks) does not fit the requested projection.
    #[error("invalid scenario: {0}")]
    Scenario(String),
    /// The caller asked the projection to stop.
    #[error("projection cancelled")]
    Cancelled,
}

impl Error {
    pub(crate) fn invalid(field: impl Into<String>, rule: impl Into<String>) -> Self {
        Error::Invalid {
            field: field.into(),
            rule: rule.into(),
        }
    }

    /// The offending field, for errors that concern one (used by APIs to point at it).
    pub fn field(&self) -> Option<&str> {
        match self {
            Error::Invalid { field, .. } => Some(field),
            Error::Scenario(_) | Error::Cancelled => None,
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;
