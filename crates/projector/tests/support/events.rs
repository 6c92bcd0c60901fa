//! A job's event stream, read event by event as a client reads it.

use std::time::Duration;

use serde_json::Value;

use super::KEY;

/// One event of a job's event stream.
#[derive(Debug, Clone)]
pub struct JobEvent {
    pub name: String,
    pub id: String,
    pub job: Value,
}

/// A job's event stream, read event by event.
pub struct EventStream(
    std::pin::Pin<
        Box<
            dyn futures_util::Stream<
                    Item = Result<
                        eventsource_stream::Event,
                        eventsource_stream::EventStreamError<reqwest::Error>,
                    >,
                > + Send,
        >,
    >,
);

impl EventStream {
    /// The next event; `None` once the server ends the stream. A stream
    /// silent for 30 s fails the test.
    pub async fn next(&mut self) -> Option<JobEvent> {
        use futures_util::StreamExt;
        let event = tokio::time::timeout(Duration::from_secs(30), self.0.next())
            .await
            .expect("an event within 30 s")?
            .expect("a well-formed event stream");
        Some(JobEvent {
            name: event.event,
            id: event.id,
            job: serde_json::from_str(&event.data).expect("event data is JSON"),
        })
    }

    /// Every event until the stream ends.
    pub async fn all(mut self) -> Vec<JobEvent> {
        let mut events = Vec::new();
        while let Some(event) = self.next().await {
            events.push(event);
        }
        events
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
    use eventsource_stream::Eventsource;
    assert_eq!(response.status(), 200, "the event stream opens");
    assert_eq!(
        response.headers()["content-type"],
        "text/event-stream",
        "the event stream's type"
    );
    EventStream(Box::pin(response.bytes_stream().eventsource()))
}

/// The job's event stream as the test's tenant.
pub async fn events(gateway: &str, job_id: &str) -> EventStream {
    event_stream(open_events(gateway, KEY, job_id, None).await)
}
