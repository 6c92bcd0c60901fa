//! What crosses the wire between Projector's clients and roles: the messages
//! generated from `proto/`, their JSON and Protobuf encodings, the validation
//! that turns a client's request into the engine's parameters, the conversion
//! of the engine's results, and times as the answers write them. No HTTP here:
//! the serving stack is the `service` crate's.

mod codec;
mod convert;
pub mod schema;
mod timestamp;
mod validate;

pub use codec::{DecodeError, Encoding, PROTOBUF, decode, encode};
pub use messages::*;
pub use timestamp::rfc3339;
pub use validate::{
    DEFAULT_MAX_PATHS, ValidationError, customer_id_rule, normalized, projection_params,
    report_parameters,
};

/// Messages of `proto/projector.proto`.
#[allow(clippy::all)]
mod messages {
    include!(concat!(env!("OUT_DIR"), "/projector.v1.rs"));
}
