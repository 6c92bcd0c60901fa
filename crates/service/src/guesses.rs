//! Failed key checks, limited per client address and per key prefix: an API
//! key or a sign-in can be guessed only a few times a minute. Past the
//! allowance, every check of that address (or of keys with that prefix) is
//! answered 429 with `Retry-After` without looking at the key, so a guess
//! that happens to be right teaches nothing.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::Problem;

/// Failed checks allowed at once, then one more every [`REFILL`].
const BURST: u32 = 20;
const REFILL: Duration = Duration::from_secs(6);
/// Characters of a key that name its prefix.
const PREFIX_CHARS: usize = 4;
/// Blocked subjects kept before the expired ones are dropped.
const MAX_BLOCKED: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Subject {
    Client(IpAddr),
    Prefix(String),
}

pub struct Guesses {
    failures: DefaultKeyedRateLimiter<Subject>,
    clock: DefaultClock,
    blocked: Mutex<HashMap<Subject, Instant>>,
}

impl Default for Guesses {
    fn default() -> Self {
        let quota = Quota::with_period(REFILL)
            .expect("the refill period is not zero")
            .allow_burst(NonZeroU32::new(BURST).expect("the burst is not zero"));
        Guesses {
            failures: RateLimiter::keyed(quota),
            clock: DefaultClock::default(),
            blocked: Mutex::default(),
        }
    }
}

impl Guesses {
    /// 429 while `client`, or keys of `key`'s prefix, have spent their
    /// failed checks.
    pub fn admit(&self, client: Option<IpAddr>, key: &str) -> Result<(), Problem> {
        let now = Instant::now();
        let blocked = self.lock();
        let until = subjects(client, key)
            .filter_map(|subject| blocked.get(&subject).copied())
            .filter(|until| *until > now)
            .max();
        match until {
            Some(until) => Err(refusal(until - now)),
            None => Ok(()),
        }
    }

    /// Counts a failed check of `key` from `client`; past the allowance, the
    /// answer is 429 rather than the failure's own.
    pub fn failed(&self, client: Option<IpAddr>, key: &str) -> Result<(), Problem> {
        let now = Instant::now();
        let mut longest = None;
        for subject in subjects(client, key) {
            if let Err(not_until) = self.failures.check_key(&subject) {
                let wait = not_until.wait_time_from(self.clock.now());
                let mut blocked = self.lock();
                if blocked.len() >= MAX_BLOCKED {
                    blocked.retain(|_, until| *until > now);
                    self.failures.retain_recent();
                }
                blocked.insert(subject, now + wait);
                longest = longest.max(Some(wait));
            }
        }
        match longest {
            Some(wait) => Err(refusal(wait)),
            None => Ok(()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Subject, Instant>> {
        self.blocked
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn subjects(client: Option<IpAddr>, key: &str) -> impl Iterator<Item = Subject> {
    let prefix: String = key.chars().take(PREFIX_CHARS).collect();
    client
        .map(Subject::Client)
        .into_iter()
        .chain(std::iter::once(Subject::Prefix(prefix)))
}

fn refusal(wait: Duration) -> Problem {
    Problem::too_many(wait, |seconds| {
        format!(
            "too many wrong keys from this address, or for keys like this one; retry after {seconds} s with the right key"
        )
    })
    .with_error("Too many attempts")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_past_its_failed_checks_is_refused_even_with_the_right_key() {
        let guesses = Guesses::default();
        let client = Some(IpAddr::from([192, 0, 2, 7]));
        for attempt in 0..BURST {
            guesses.admit(client, &format!("wrong-{attempt}")).unwrap();
            guesses.failed(client, &format!("wrong-{attempt}")).unwrap();
        }
        let refused = guesses.failed(client, "wrong-last").unwrap_err();
        assert_eq!(refused.status, 429);
        assert!(refused.retry_after.is_some_and(|seconds| seconds >= 1));
        let right = guesses.admit(client, "the-right-key").unwrap_err();
        assert_eq!(right.status, 429);
        guesses
            .admit(Some(IpAddr::from([192, 0, 2, 8])), "the-right-key")
            .unwrap();
    }

    #[test]
    fn guesses_at_one_prefix_from_many_addresses_block_that_prefix_only() {
        let guesses = Guesses::default();
        for index in 0..=BURST {
            let client = Some(IpAddr::from([198, 51, 100, index as u8]));
            let _ = guesses.failed(client, &format!("abcd-{index}"));
        }
        let elsewhere = Some(IpAddr::from([203, 0, 113, 1]));
        assert_eq!(
            guesses.admit(elsewhere, "abcd-any").unwrap_err().status,
            429
        );
        guesses.admit(elsewhere, "wxyz-any").unwrap();
    }
}
