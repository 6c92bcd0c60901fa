//! The connections a listener holds, at most `capacity` of them. When a new one
//! arrives at capacity, the connection idle the longest (between requests, or
//! never having sent one) is closed to make room, as nginx reuses keep-alive
//! connections when it runs short: idle clients cannot lock out active ones.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes, HttpBody};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

/// How long admission waits for an evicted connection to close before it
/// evicts the next one (an evicted connection finishes its response first).
const EVICTION_WAIT: Duration = Duration::from_millis(50);

pub(super) struct Connections {
    permits: Arc<Semaphore>,
    open: Mutex<HashMap<u64, Arc<Connection>>>,
    next_id: AtomicU64,
    started: Instant,
}

/// One open connection: whether it is serving a request, and since when it is idle.
struct Connection {
    in_flight: AtomicUsize,
    /// Milliseconds after `Connections::started`.
    idle_since: AtomicU64,
    evicted: CancellationToken,
}

impl Connections {
    pub(super) fn new(capacity: usize) -> Arc<Self> {
        Arc::new(Connections {
            permits: Arc::new(Semaphore::new(capacity.max(1))),
            open: Mutex::default(),
            next_id: AtomicU64::new(0),
            started: Instant::now(),
        })
    }

    /// A place for a new connection, once one is free.
    pub(super) async fn admit(self: &Arc<Self>) -> Slot {
        loop {
            if let Ok(permit) = self.permits.clone().try_acquire_owned() {
                return self.register(permit);
            }
            self.evict_longest_idle();
            if let Ok(Ok(permit)) =
                tokio::time::timeout(EVICTION_WAIT, self.permits.clone().acquire_owned()).await
            {
                return self.register(permit);
            }
        }
    }

    fn register(self: &Arc<Self>, permit: OwnedSemaphorePermit) -> Slot {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let connection = Arc::new(Connection {
            in_flight: AtomicUsize::new(0),
            idle_since: AtomicU64::new(self.elapsed_millis()),
            evicted: CancellationToken::new(),
        });
        self.lock().insert(id, connection.clone());
        Slot {
            id,
            connection,
            connections: self.clone(),
            _permit: permit,
        }
    }

    fn evict_longest_idle(&self) {
        let open = self.lock();
        let longest_idle = open
            .values()
            .filter(|connection| {
                connection.in_flight.load(Ordering::Acquire) == 0
                    && !connection.evicted.is_cancelled()
            })
            .min_by_key(|connection| connection.idle_since.load(Ordering::Acquire));
        if let Some(connection) = longest_idle {
            tracing::debug!("at the connection limit: closing the connection idle the longest");
            connection.evicted.cancel();
        }
    }

    fn elapsed_millis(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Arc<Connection>>> {
        self.open
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A connection's place; dropping it frees the place.
pub(super) struct Slot {
    id: u64,
    connection: Arc<Connection>,
    connections: Arc<Connections>,
    _permit: OwnedSemaphorePermit,
}

impl Slot {
    /// Marks the connection busy until the guard drops.
    pub(super) fn busy(&self) -> Busy {
        self.connection.in_flight.fetch_add(1, Ordering::AcqRel);
        Busy {
            connection: self.connection.clone(),
            connections: self.connections.clone(),
        }
    }

    /// Fires when the connection should close to make room for a new one.
    pub(super) fn evicted(&self) -> CancellationToken {
        self.connection.evicted.clone()
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.connections.lock().remove(&self.id);
    }
}

pub(super) struct Busy {
    connection: Arc<Connection>,
    connections: Arc<Connections>,
}

pin_project_lite::pin_project! {
    /// An answer's body that keeps its connection busy until it is sent
    /// whole or dropped: an event stream is busy for as long as it streams,
    /// so it is never taken for idle and evicted halfway.
    pub(super) struct BusyBody {
        #[pin]
        body: Body,
        busy: Option<Busy>,
    }
}

impl BusyBody {
    pub(super) fn new(body: Body, busy: Busy) -> Self {
        BusyBody {
            body,
            busy: Some(busy),
        }
    }
}

impl HttpBody for BusyBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        let this = self.project();
        let frame = std::task::ready!(this.body.poll_frame(cx));
        if frame.is_none() {
            this.busy.take();
        }
        std::task::Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.connection
            .idle_since
            .store(self.connections.elapsed_millis(), Ordering::Release);
        self.connection.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn at_capacity_the_longest_idle_connection_is_evicted_and_busy_ones_are_kept() {
        let connections = Connections::new(2);
        let busy_slot = connections.admit().await;
        let _busy = busy_slot.busy();
        let idle_slot = connections.admit().await;
        let idle_evicted = idle_slot.evicted();
        let (admitted, ()) = tokio::join!(connections.admit(), async {
            idle_evicted.cancelled().await;
            drop(idle_slot);
        });
        assert!(!busy_slot.evicted().is_cancelled());
        assert!(!admitted.evicted().is_cancelled());
    }

    #[tokio::test(start_paused = true)]
    async fn at_capacity_with_every_connection_busy_admission_waits_for_one_to_close() {
        let connections = Connections::new(1);
        let slot = connections.admit().await;
        let busy = slot.busy();
        let waiting = tokio::time::timeout(Duration::from_secs(5), connections.admit()).await;
        assert!(waiting.is_err(), "a busy connection must not be evicted");
        assert!(!slot.evicted().is_cancelled());
        drop(busy);
        drop(slot);
        connections.admit().await;
    }
}
