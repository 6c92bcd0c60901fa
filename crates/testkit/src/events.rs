//! A job's event stream, read event by event as a client reads it.

use std::pin::Pin;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use eventsource_stream::{Event, EventStreamError, Eventsource};
use futures_util::{Stream, StreamExt};
use serde_json::Value;

/// Longest silence between two events before the reader gives up.
const SILENCE_LIMIT: Duration = Duration::from_secs(30);

/// One event of a job's event stream.
#[derive(Debug, Clone)]
pub struct JobEvent {
    pub name: String,
    pub id: String,
    pub job: Value,
}

type Events = Pin<Box<dyn Stream<Item = Result<Event, EventStreamError<reqwest::Error>>> + Send>>;

/// A job's event stream, read event by event.
pub struct EventStream(Events);

impl EventStream {
    /// The event stream a response opened; refused unless it answered 200
    /// with `text/event-stream`.
    pub fn of(response: reqwest::Response) -> Result<EventStream> {
        if response.status() != 200 {
            bail!(
                "the event stream at {} answered {}",
                response.url(),
                response.status()
            );
        }
        let kind = response.headers().get("content-type");
        if kind.is_none_or(|kind| kind != "text/event-stream") {
            bail!("the event stream's type is {kind:?}, not text/event-stream");
        }
        Ok(EventStream(Box::pin(response.bytes_stream().eventsource())))
    }

    /// The next event; `None` once the server ends the stream. Silence for
    /// 30 s, or a malformed stream, is an error.
    pub async fn next(&mut self) -> Result<Option<JobEvent>> {
        let Some(event) = tokio::time::timeout(SILENCE_LIMIT, self.0.next())
            .await
            .context("no event within 30 s")?
        else {
            return Ok(None);
        };
        let event = event.context("a malformed event stream")?;
        Ok(Some(JobEvent {
            job: serde_json::from_str(&event.data).context("event data that is not JSON")?,
            name: event.event,
            id: event.id,
        }))
    }

    /// Every event until the stream ends.
    pub async fn all(mut self) -> Result<Vec<JobEvent>> {
        let mut events = Vec::new();
        while let Some(event) = self.next().await? {
            events.push(event);
        }
        Ok(events)
    }
}
