//! What the integration tests and the load tool share: the real `projector`
//! binary started on free ports with the keys of a test, the URLs it prints,
//! JSON over HTTP, a job's event stream, and a TCP proxy that cuts a link.

mod events;
mod process;
mod proxy;

pub use events::{EventStream, JobEvent};
pub use process::{FREE_PORTS, Process, with_test_keys};
pub use proxy::Proxy;

pub const KEY: &str = "test-key-a";
pub const OTHER_KEY: &str = "test-key-b";
/// The secret job owners are derived with, given to every process started.
pub const TENANT_SECRET: &str = "test-tenant-secret";
/// The data service's token, given to every process started.
pub const DATASVC_TOKEN: &str = "test-datasvc-token";

/// Sends `request` and reads the answer as JSON; a request that cannot be
/// sent, or an answer that is not JSON, fails the test.
pub async fn json_of(request: reqwest::RequestBuilder) -> serde_json::Value {
    let response = request.send().await.expect("the request is answered");
    let status = response.status();
    response
        .json()
        .await
        .unwrap_or_else(|error| panic!("a {status} answer that is not JSON: {error}"))
}

/// The whole seconds an answer's `Retry-After` asks to wait; an answer
/// without one fails the test.
pub fn retry_after(response: &reqwest::Response) -> u64 {
    let header = response
        .headers()
        .get("retry-after")
        .unwrap_or_else(|| panic!("a {} answer without Retry-After", response.status()));
    header
        .to_str()
        .ok()
        .and_then(|seconds| seconds.parse().ok())
        .unwrap_or_else(|| panic!("Retry-After {header:?} is not whole seconds"))
}
