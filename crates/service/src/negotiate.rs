//! Answers in the encoding the client negotiated.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use prost::Message;
use serde::Serialize;
use wire::{Encoding, encode};

/// An HTTP answer carrying `message` in the negotiated encoding.
pub fn respond<T: Message + Serialize>(
    status: StatusCode,
    encoding: Encoding,
    message: &T,
) -> Response {
    let content_type = [(header::CONTENT_TYPE, encoding.content_type())];
    (status, content_type, encode(encoding, message)).into_response()
}
