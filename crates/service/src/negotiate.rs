//! Content negotiation both ways: requests decoded by their `Content-Type`
//! (`Decoded`), answers in the encoding the client accepts (`Accepts`,
//! `respond`).

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, StatusCode, header};
use axum::response::{IntoResponse, Response};
use prost::Message;
use serde::Serialize;
use serde::de::DeserializeOwned;
use wire::{DecodeError, Encoding, encode};

use crate::Problem;

/// An HTTP answer carrying `message` in the negotiated encoding.
pub fn respond<T: Message + Serialize>(
    status: StatusCode,
    encoding: Encoding,
    message: &T,
) -> Response {
    let content_type = [(header::CONTENT_TYPE, encoding.content_type())];
    (status, content_type, encode(encoding, message)).into_response()
}

fn encoding_in(headers: &HeaderMap, name: HeaderName) -> Option<&str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

/// The encoding the client's `Accept` asks for: JSON unless it asks for Protobuf.
#[derive(Debug, Clone, Copy)]
pub struct Accepts(pub Encoding);

impl<S: Send + Sync> FromRequestParts<S> for Accepts {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Accepts(Encoding::of_accept(encoding_in(
            &parts.headers,
            header::ACCEPT,
        ))))
    }
}

/// A request body decoded by its `Content-Type`: a body that is not the
/// message is 400, a member of the wrong type 422 naming it.
#[derive(Debug)]
pub struct Decoded<T>(pub T);

impl<S, T> FromRequest<S> for Decoded<T>
where
    S: Send + Sync,
    T: Message + Default + DeserializeOwned,
{
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let encoding = content_encoding(request.headers());
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(IntoResponse::into_response)?;
        decode_as(encoding, &bytes)
            .map(Decoded)
            .map_err(IntoResponse::into_response)
    }
}

/// `body` decoded by the `Content-Type` in `headers`, for a handler that must
/// decide something before it decodes (a rate limit); otherwise take [`Decoded`].
pub fn decode_body<T>(headers: &HeaderMap, body: &[u8]) -> Result<T, Problem>
where
    T: Message + Default + DeserializeOwned,
{
    decode_as(content_encoding(headers), body)
}

fn content_encoding(headers: &HeaderMap) -> Encoding {
    Encoding::of_content_type(encoding_in(headers, header::CONTENT_TYPE))
}

fn decode_as<T>(encoding: Encoding, body: &[u8]) -> Result<T, Problem>
where
    T: Message + Default + DeserializeOwned,
{
    wire::decode(encoding, body).map_err(|error| match error {
        DecodeError::Malformed { .. } => Problem::new(StatusCode::BAD_REQUEST, error.to_string()),
        DecodeError::WrongType { field, detail } => Problem::invalid(field, detail),
    })
}
