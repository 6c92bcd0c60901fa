//! Wire types generated from `proto/`, their JSON and Protobuf encodings, the
//! validation that turns a client's request into the engine's parameters, and
//! the HTTP layer every role shares (problem+json errors, serving with health
//! and a two-step shutdown).

mod codec;
mod convert;
mod guesses;
pub mod metrics;
pub mod openapi;
mod problem;
mod secret;
pub mod server;
mod tenants;
mod timestamp;
pub mod trace;
mod validate;

pub use codec::{DecodeError, Encoding, PROTOBUF, decode, encode, respond};
pub use problem::Problem;
pub use secret::{Secret, bearer};
pub use tenants::{API_KEY_HEADER, Client, Owner, Tenants};
pub use timestamp::rfc3339;
pub use validate::{
    DEFAULT_MAX_PATHS, ValidationError, customer_id_rule, normalized, projection_params,
    report_parameters,
};

/// Messages of `proto/projector.proto`.
#[allow(clippy::all)]
pub mod wire {
    include!(concat!(env!("OUT_DIR"), "/projector.v1.rs"));
}
