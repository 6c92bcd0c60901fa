//! A job's event stream, as a test reads it: anything but a well-formed
//! event within 30 s fails the test.

use testkit::JobEvent;

use super::KEY;

/// A job's event stream, read event by event.
pub struct EventStream(testkit::EventStream);

impl EventStream {
    /// The next event; `None` once the server ends the stream.
    pub async fn next(&mut self) -> Option<JobEvent> {
        self.0
            .next()
            .await
            .expect("a well-formed event within 30 s")
    }

    /// Every event until the stream ends.
    pub async fn all(self) -> Vec<JobEvent> {
        self.0
            .all()
            .await
            .expect("well-formed events, each within 30 s")
    }
}

/// `GET /jobs/{job_id}/events` as the tenant of `api_key`, resuming after
/// `last_event_id` when given: the response, to check its status first.
pub async fn open_events(
    gateway: &str,
    api_key: &str,
    job_id: &str,
    last_event_id: Option<&str>,
) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .get(format!("{gateway}/jobs/{job_id}/events"))
        .header("x-api-key", api_key)
        .header("accept", "text/event-stream");
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id);
    }
    request.send().await.unwrap()
}

/// The event stream of a response that opened one.
pub fn event_stream(response: reqwest::Response) -> EventStream {
    EventStream(testkit::EventStream::of(response).expect("the event stream opens"))
}

/// The job's event stream as the test's tenant.
pub async fn events(gateway: &str, job_id: &str) -> EventStream {
    event_stream(open_events(gateway, KEY, job_id, None).await)
}
