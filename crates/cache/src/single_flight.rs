//! One upstream call at a time per key: later callers wait for the first, then
//! read what it stored.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

#[derive(Default)]
pub struct SingleFlight {
    flights: Mutex<HashMap<String, Arc<AsyncMutex<()>>>>,
}

/// Held while a flight is under way; the key's slot is dropped with the last holder.
pub struct Flight<'a> {
    owner: &'a SingleFlight,
    key: String,
    guard: Option<OwnedMutexGuard<()>>,
}

impl SingleFlight {
    pub async fn join(&self, key: &str) -> Flight<'_> {
        let lock = {
            let mut flights = self
                .flights
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            flights.entry(key.to_string()).or_default().clone()
        };
        let guard = lock.lock_owned().await;
        Flight {
            owner: self,
            key: key.to_string(),
            guard: Some(guard),
        }
    }
}

impl Drop for Flight<'_> {
    fn drop(&mut self) {
        let mut flights = self
            .owner
            .flights
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        drop(self.guard.take());
        // Only the map still refers to the lock: nobody is waiting for this key.
        if let Some(lock) = flights.get(&self.key)
            && Arc::strong_count(lock) == 1
        {
            flights.remove(&self.key);
        }
    }
}
