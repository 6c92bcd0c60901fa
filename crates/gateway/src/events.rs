//! `GET /jobs/{job_id}/events`: the job's changes as Server-Sent Events, under
//! the same key and tenancy rules as its status. Each event carries the whole
//! status body (as `GET /job_status` answers it in JSON) and the state as its
//! id. Events are named `status` (the status or attempt changed), `progress`,
//! and the final `completed`, `failed` or `cancelled`, after which the stream
//! ends. A client that reconnects with `Last-Event-ID` is sent nothing it has
//! seen; one that has seen the end is answered 204, which tells a browser's
//! `EventSource` to stop reconnecting.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use jobstore::{Job, JobStatus, JobStore};
use service::Owner;
use service::server::StreamPermit;

use crate::Gateway;
use crate::answers::{Attempt, store_problem};
use crate::follow::{Follow, Seen, Stopped};
use crate::status::{not_found, to_wire};

/// How long a browser waits before reconnecting a broken stream.
const RECONNECT: Duration = Duration::from_secs(1);

/// The job's changes as Server-Sent Events, each carrying the whole status body.
#[utoipa::path(get, path = "/jobs/{job_id}/events", tag = "jobs",
    security(("tenant_key" = [])),
    params(
        ("job_id" = String, Path, description = "The job's id"),
        ("Last-Event-ID" = Option<String>, Header, description = "The last event seen: nothing seen is sent again"),
    ),
    responses(
        (status = 200, description = "Events `status`, `progress` and a final `completed`, `failed` or `cancelled`, each carrying the job", body = wire::JobStatus, content_type = "text/event-stream"),
        (status = 204, description = "The client has seen the job's end"),
        service::openapi::NotFound,
        (status = 429, description = "This key, or the gateway, has as many event streams and long-polls open as it allows; retry after `Retry-After` seconds", body = service::Problem, content_type = "application/problem+json"),
        service::openapi::StoreFailures,
        service::openapi::TenantRefusals,
    ),
)]
pub async fn job_events<S: JobStore>(
    State(gateway): State<Gateway<S>>,
    Owner(owner): Owner,
    Path(job_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let last_seen = headers
        .get("last-event-id")
        .and_then(|value| value.to_str().ok())
        .map(Seen::from_event_id);
    let permit = match gateway.streams.open(&owner) {
        Ok(permit) => permit,
        Err(problem) => return problem.into_response(),
    };
    let (follow, job) = match Follow::start(gateway, owner, job_id.clone()).await {
        Ok(Some(followed)) => followed,
        Ok(None) => return not_found(&job_id),
        Err(error) => return store_problem(error, Attempt::Read).into_response(),
    };
    let seen = Seen::of(&job);
    let resumed_here = last_seen.as_ref() == Some(&seen);
    if resumed_here && job.status.is_final() {
        return StatusCode::NO_CONTENT.into_response();
    }
    let stream = Stream {
        _permit: permit,
        follow,
        seen,
        sent: resumed_here.then_some((job.status, job.attempts)),
        pending: (!resumed_here).then_some(job),
        ended: false,
    };
    let events = futures_util::stream::unfold(stream, Stream::next);
    Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response()
}

struct Stream<S> {
    /// The stream's place in the budget, freed when the client goes.
    _permit: StreamPermit,
    follow: Follow<S>,
    /// The state of the last event sent, or of the job when the stream began.
    seen: Seen,
    /// The status and attempt the client last had, if it had any.
    sent: Option<(JobStatus, u32)>,
    /// A state to send before waiting for the next change.
    pending: Option<Job>,
    ended: bool,
}

impl<S: JobStore> Stream<S> {
    async fn next(mut self) -> Option<(Result<Event, Infallible>, Self)> {
        if self.ended {
            return None;
        }
        let job = match self.pending.take() {
            Some(job) => job,
            None => match self.follow.changed_from(&self.seen, None).await {
                Ok(Some(job)) => job,
                // The gateway drains: the client reconnects to another.
                Ok(None) | Err(Stopped::Gone) => return None,
                Err(Stopped::Store(error)) => {
                    tracing::warn!(%error, "job store unreadable; ending an event stream for its client to resume");
                    return None;
                }
            },
        };
        let name = if job.status.is_final() {
            job.status.as_str()
        } else if self.sent == Some((job.status, job.attempts)) {
            "progress"
        } else {
            "status"
        };
        self.seen = Seen::of(&job);
        self.sent = Some((job.status, job.attempts));
        self.ended = job.status.is_final();
        let data = serde_json::to_string(&to_wire(&job)).unwrap_or_default();
        let event = Event::default()
            .event(name)
            .id(self.seen.event_id())
            .retry(RECONNECT)
            .data(data);
        Some((Ok(event), self))
    }
}
