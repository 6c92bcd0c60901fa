//! The HTTP serving stack every role shares: the listener and its layers,
//! problem+json errors, answers in the negotiated encoding, tenants and
//! secrets, metrics, trace context, and the OpenAPI document's shared parts.
//! What the messages are and how they encode is the `wire` crate's.

mod guesses;
pub mod metrics;
mod negotiate;
pub mod openapi;
mod problem;
mod secret;
pub mod server;
mod tenants;
pub mod trace;

pub use negotiate::{Accepts, Decoded, decode_body, respond};
pub use problem::Problem;
pub use secret::{Secret, bearer, generate_key};
pub use tenants::{API_KEY_HEADER, Client, Owner, Tenants};
