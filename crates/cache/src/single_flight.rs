//! One upstream call at a time per key: later callers wait for the first, then
//! read what it stored. A flight also hears of changes to its key while it is
//! under way, so that what it fetched before a change is not stored as fresh.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

#[derive(Default)]
pub struct SingleFlight {
    flights: Mutex<HashMap<String, Arc<Slot>>>,
}

#[derive(Default)]
struct Slot {
    turn: Arc<AsyncMutex<()>>,
    /// The latest change-feed position at which the key changed while the
    /// slot existed; 0 for none.
    changed_at: AtomicI64,
}

/// Held while a flight is under way; the key's slot is dropped with the last holder.
pub struct Flight<'a> {
    owner: &'a SingleFlight,
    key: String,
    slot: Arc<Slot>,
    guard: Option<OwnedMutexGuard<()>>,
}

impl SingleFlight {
    pub async fn join(&self, key: &str) -> Flight<'_> {
        let slot = self.lock().entry(key.to_string()).or_default().clone();
        let guard = slot.turn.clone().lock_owned().await;
        Flight {
            owner: self,
            key: key.to_string(),
            slot,
            guard: Some(guard),
        }
    }

    /// Tells a flight under way for `key`, if any, that the key changed at
    /// `position`. False when no flight is under way.
    pub fn changed(&self, key: &str, position: i64) -> bool {
        match self.lock().get(key) {
            Some(slot) => {
                slot.changed_at.fetch_max(position, Ordering::SeqCst);
                true
            }
            None => false,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Slot>>> {
        self.flights
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Flight<'_> {
    /// The latest position at which the key changed while this flight's slot
    /// existed; 0 for none.
    pub fn changed_at(&self) -> i64 {
        self.slot.changed_at.load(Ordering::SeqCst)
    }
}

impl Drop for Flight<'_> {
    fn drop(&mut self) {
        let mut flights = self.owner.lock();
        drop(self.guard.take());
        // Only the map and this flight still refer to the slot: nobody is
        // waiting for this key.
        if Arc::strong_count(&self.slot) == 2 {
            flights.remove(&self.key);
        }
    }
}
