//! JSON or Protobuf, chosen by `Content-Type` and `Accept`.

use prost::Message;
use serde::Serialize;
use serde::de::DeserializeOwned;
use thiserror::Error;

pub const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Json,
    Protobuf,
}

impl Encoding {
    /// The encoding of a request body from its `Content-Type` (JSON when absent).
    pub fn of_content_type(content_type: Option<&str>) -> Encoding {
        match content_type {
            Some(value) if media_type(value) == PROTOBUF => Encoding::Protobuf,
            _ => Encoding::Json,
        }
    }

    /// The encoding an `Accept` header asks for: Protobuf only when it is named
    /// before (or without) JSON.
    pub fn of_accept(accept: Option<&str>) -> Encoding {
        let Some(accept) = accept else {
            return Encoding::Json;
        };
        for candidate in accept.split(',').map(media_type) {
            if candidate == PROTOBUF {
                return Encoding::Protobuf;
            }
            if candidate == JSON || candidate == "*/*" {
                return Encoding::Json;
            }
        }
        Encoding::Json
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Encoding::Json => JSON,
            Encoding::Protobuf => PROTOBUF,
        }
    }
}

fn media_type(value: &str) -> &str {
    value.split(';').next().unwrap_or("").trim()
}

#[derive(Debug, Error, PartialEq)]
pub enum DecodeError {
    /// The body is not JSON (or not Protobuf) at all.
    #[error("malformed {encoding} body: {detail}")]
    Malformed {
        encoding: &'static str,
        detail: String,
    },
    /// Well-formed, but a member has the wrong type.
    #[error("invalid {field}: {detail}")]
    WrongType { field: String, detail: String },
}

pub fn decode<T: Message + Default + DeserializeOwned>(
    encoding: Encoding,
    body: &[u8],
) -> Result<T, DecodeError> {
    match encoding {
        Encoding::Protobuf => T::decode(body).map_err(|error| DecodeError::Malformed {
            encoding: "Protobuf",
            detail: error.to_string(),
        }),
        Encoding::Json => {
            let mut deserializer = serde_json::Deserializer::from_slice(body);
            let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
                let field = error.path().to_string();
                let inner = error.into_inner();
                if inner.is_data() {
                    DecodeError::WrongType {
                        field,
                        detail: inner.to_string(),
                    }
                } else {
                    DecodeError::Malformed {
                        encoding: "JSON",
                        detail: inner.to_string(),
                    }
                }
            })?;
            deserializer.end().map_err(|error| DecodeError::Malformed {
                encoding: "JSON",
                detail: error.to_string(),
            })?;
            Ok(value)
        }
    }
}

pub fn encode<T: Message + Serialize>(encoding: Encoding, message: &T) -> Vec<u8> {
    match encoding {
        Encoding::Protobuf => message.encode_to_vec(),
        Encoding::Json => {
            serde_json::to_vec(message).expect("wire messages always serialise to JSON")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::GenerateProjectionRequest;

    #[test]
    fn negotiates() {
        assert_eq!(
            Encoding::of_content_type(Some("application/x-protobuf")),
            Encoding::Protobuf
        );
        assert_eq!(
            Encoding::of_content_type(Some("application/json; charset=utf-8")),
            Encoding::Json
        );
        assert_eq!(Encoding::of_content_type(None), Encoding::Json);
        assert_eq!(
            Encoding::of_accept(Some("application/x-protobuf, application/json")),
            Encoding::Protobuf
        );
        assert_eq!(
            Encoding::of_accept(Some("application/json, application/x-protobuf")),
            Encoding::Json
        );
        assert_eq!(Encoding::of_accept(Some("*/*")), Encoding::Json);
    }

    #[test]
    fn names_the_field_of_the_wrong_type() {
        let body = br#"{"job_id": "j", "parameters": {"time_horizon_years": "thirty"}}"#;
        let error = decode::<GenerateProjectionRequest>(Encoding::Json, body).unwrap_err();
        assert!(
            matches!(&error, DecodeError::WrongType { field, .. } if field == "parameters.time_horizon_years"),
            "{error:?}"
        );
        let malformed =
            decode::<GenerateProjectionRequest>(Encoding::Json, b"{\"job_id\": ").unwrap_err();
        assert!(matches!(malformed, DecodeError::Malformed { .. }));
    }

    #[test]
    fn protobuf_round_trip() {
        let request = GenerateProjectionRequest {
            job_id: "j-1".into(),
            parameters: None,
        };
        let bytes = encode(Encoding::Protobuf, &request);
        assert_eq!(
            decode::<GenerateProjectionRequest>(Encoding::Protobuf, &bytes).unwrap(),
            request
        );
    }
}
