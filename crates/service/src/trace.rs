//! W3C trace context: the `traceparent` header that carries one report's
//! trace from the orchestrator through the gateway and the worker to the data
//! service, so that every log line of the report names the same `trace_id`.
//!
//! Only the trace and its parent are kept; no spans are exported. A request
//! without a valid `traceparent` starts a trace named after its request id.

use std::fmt;

use axum::http::{HeaderMap, HeaderValue};
use sha2::{Digest, Sha256};

pub const TRACEPARENT: &str = "traceparent";
/// The header a request's id travels in; every request has one by the time a
/// handler sees it.
pub const REQUEST_ID: &str = "x-request-id";

/// Longest request id a client may choose.
const MAX_REQUEST_ID_BYTES: usize = 128;

/// Marks a request whose client-chosen id was refused and replaced by a new one.
#[derive(Debug, Clone, Copy)]
pub struct ReplacedRequestId;

/// The characters a client's value may hold to be logged as it is: none can
/// end a field or start another in a text log line.
fn is_log_safe(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"-_.:/+=@".contains(&byte)
}

/// A client's value (a job id, say) as a log field: as it is when it holds
/// only safe characters, else quoted and escaped, so that it cannot forge a
/// field or an event in a text log. `tracing::info!(job_id = %Quoted(&id))`.
pub struct Quoted<'a>(pub &'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.0.is_empty() && self.0.bytes().all(is_log_safe) {
            formatter.write_str(self.0)
        } else {
            write!(formatter, "{:?}", self.0)
        }
    }
}

/// Keeps a client's `X-Request-Id` only if it is short and made of letters,
/// digits and `-_.:/+=@`, which can forge no field of a log line; otherwise
/// removes it (a new id is given in its place) and marks the request with
/// [`ReplacedRequestId`].
pub fn refuse_unsafe_request_id<B>(request: &mut axum::http::Request<B>) {
    let safe = |id: &HeaderValue| {
        let bytes = id.as_bytes();
        !bytes.is_empty()
            && bytes.len() <= MAX_REQUEST_ID_BYTES
            && bytes.iter().copied().all(is_log_safe)
    };
    if request
        .headers()
        .get(REQUEST_ID)
        .is_some_and(|id| !safe(id))
    {
        request.headers_mut().remove(REQUEST_ID);
        request.extensions_mut().insert(ReplacedRequestId);
    }
}

/// One hop of a trace: the trace's id and the id of the caller's span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    trace_id: u128,
    parent_id: u64,
    flags: u8,
}

/// The only flag defined: the caller records this trace.
const SAMPLED: u8 = 0x01;

impl TraceParent {
    /// A new trace.
    pub fn start() -> Self {
        TraceParent::of_trace(nonzero(rand::random()))
    }

    /// A new hop of the trace `trace_id` (a report's id names its trace).
    pub fn of_trace(trace_id: u128) -> Self {
        TraceParent {
            trace_id: nonzero(trace_id),
            parent_id: nonzero(rand::random()),
            flags: SAMPLED,
        }
    }

    /// The header's value, if it is one this version understands: version
    /// `00`, or a later version read as `00` as the recommendation says; ids
    /// of lowercase hex, neither all zeros.
    pub fn parse(value: &str) -> Option<Self> {
        let mut fields = value.trim().split('-');
        let (version, trace_id, parent_id, flags) = (
            fields.next()?,
            fields.next()?,
            fields.next()?,
            fields.next()?,
        );
        let hex = |field: &str, len: usize| {
            field.len() == len
                && field
                    .bytes()
                    .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
        };
        let valid = hex(version, 2)
            && version != "ff"
            && (version != "00" || fields.next().is_none())
            && hex(trace_id, 32)
            && hex(parent_id, 16)
            && hex(flags, 2);
        if !valid {
            return None;
        }
        let parsed = TraceParent {
            trace_id: u128::from_str_radix(trace_id, 16).ok()?,
            parent_id: u64::from_str_radix(parent_id, 16).ok()?,
            flags: u8::from_str_radix(flags, 16).ok()?,
        };
        (parsed.trace_id != 0 && parsed.parent_id != 0).then_some(parsed)
    }

    /// The next hop of the same trace, to send to a callee.
    pub fn child(&self) -> Self {
        TraceParent {
            parent_id: nonzero(rand::random()),
            ..*self
        }
    }

    /// The trace's id as log lines name it: 32 lowercase hex digits.
    pub fn trace_id(&self) -> String {
        format!("{:032x}", self.trace_id)
    }
}

/// The request's trace: the caller's `traceparent`, or else one named after
/// the request's id (which every request has), so that the request's log
/// lines and whatever the request starts (a job) name the same trace without
/// the request being rewritten.
pub fn of_request(headers: &HeaderMap) -> TraceParent {
    if let Some(trace) = headers
        .get(TRACEPARENT)
        .and_then(|value| value.to_str().ok())
        .and_then(TraceParent::parse)
    {
        return trace;
    }
    let request_id = headers
        .get(REQUEST_ID)
        .map(HeaderValue::as_bytes)
        .unwrap_or_default();
    TraceParent::of_trace(trace_id_of(request_id))
}

/// A UUID's own 128 bits; any other id's first 128 bits of SHA-256.
fn trace_id_of(request_id: &[u8]) -> u128 {
    uuid::Uuid::try_parse_ascii(request_id).map_or_else(
        |_| {
            let digest = Sha256::digest(request_id);
            let mut first = [0; 16];
            first.copy_from_slice(&digest[..16]);
            u128::from_be_bytes(first)
        },
        |id| id.as_u128(),
    )
}

impl fmt::Display for TraceParent {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "00-{:032x}-{:016x}-{:02x}",
            self.trace_id, self.parent_id, self.flags
        )
    }
}

fn nonzero<T: PartialEq + From<u8>>(id: T) -> T {
    if id == T::from(0) { T::from(1) } else { id }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_that_could_forge_a_log_field_is_quoted() {
        assert_eq!(Quoted("rails-7f3a").to_string(), "rails-7f3a");
        assert_eq!(
            Quoted("abc} ERROR fake: x").to_string(),
            "\"abc} ERROR fake: x\""
        );
        assert_eq!(Quoted("a\nb").to_string(), "\"a\\nb\"");
        assert_eq!(Quoted("").to_string(), "\"\"");
    }

    #[test]
    fn a_request_id_that_could_forge_a_log_field_is_replaced() {
        let with_id = |id: &[u8]| {
            let mut request = axum::http::Request::new(());
            request
                .headers_mut()
                .insert(REQUEST_ID, HeaderValue::from_bytes(id).unwrap());
            refuse_unsafe_request_id(&mut request);
            request
        };
        let kept = with_id(b"req-42_a.b:c/d+e=f@g");
        assert_eq!(kept.headers()[REQUEST_ID], "req-42_a.b:c/d+e=f@g");
        assert!(kept.extensions().get::<ReplacedRequestId>().is_none());
        for unsafe_id in [
            b"abc} ERROR fake: forged".as_slice(),
            b"a b",
            b"quote\"d",
            "caf\u{e9}".as_bytes(),
            &[b'x'; MAX_REQUEST_ID_BYTES + 1],
        ] {
            let replaced = with_id(unsafe_id);
            assert!(replaced.headers().get(REQUEST_ID).is_none());
            assert!(replaced.extensions().get::<ReplacedRequestId>().is_some());
        }
        let mut without = axum::http::Request::new(());
        refuse_unsafe_request_id(&mut without);
        assert!(without.extensions().get::<ReplacedRequestId>().is_none());
    }

    #[test]
    fn a_valid_header_round_trips_and_a_child_keeps_the_trace() {
        let header = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let parsed = TraceParent::parse(header).unwrap();
        assert_eq!(parsed.to_string(), header);
        assert_eq!(parsed.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        let child = parsed.child();
        assert_eq!(child.trace_id(), parsed.trace_id());
        assert_ne!(child, parsed);
        assert_eq!(TraceParent::parse(&child.to_string()), Some(child));
    }

    #[test]
    fn malformed_headers_are_refused() {
        for header in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",
            "0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceParent::parse(header), None, "{header:?}");
        }
        let later = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future";
        assert!(
            TraceParent::parse(later).is_some(),
            "a later version is read"
        );
    }

    #[test]
    fn a_request_without_a_trace_is_named_after_its_id() {
        let mut headers = HeaderMap::new();
        headers.insert(
            REQUEST_ID,
            HeaderValue::from_static("4bf92f35-77b3-4da6-a3ce-929d0e0e4736"),
        );
        let named = of_request(&headers);
        assert_eq!(named.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(
            of_request(&headers).trace_id(),
            named.trace_id(),
            "the same each time"
        );
        headers.insert(REQUEST_ID, HeaderValue::from_static("client-chosen"));
        let hashed = of_request(&headers).trace_id();
        assert_eq!(hashed.len(), 32);
        assert_eq!(of_request(&headers).trace_id(), hashed);
        let given = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        headers.insert(TRACEPARENT, HeaderValue::from_static(given));
        assert_eq!(of_request(&headers).to_string(), given);
    }

    #[test]
    fn a_reports_id_names_its_trace() {
        let trace = TraceParent::of_trace(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736);
        assert_eq!(trace.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(TraceParent::of_trace(0).trace_id(), format!("{:032x}", 1));
    }
}
