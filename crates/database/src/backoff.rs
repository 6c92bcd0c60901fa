//! How long to wait after consecutive store failures: doubling from a first
//! pause up to `MAX_PAUSE`, so that a store that fails on every call (read
//! only, damaged, down) is not asked, and logged about, dozens of times a second.

use std::time::Duration;

const MAX_PAUSE: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct FailureBackoff {
    first: Duration,
    /// Failures since the last success.
    pub count: u32,
}

impl FailureBackoff {
    pub fn new(first: Duration) -> Self {
        FailureBackoff { first, count: 0 }
    }

    /// Records a failure and returns how long to pause before the next try.
    pub fn failed(&mut self) -> Duration {
        let pause = self
            .first
            .saturating_mul(1 << self.count.min(16))
            .min(MAX_PAUSE);
        self.count += 1;
        pause
    }

    pub fn succeeded(&mut self) {
        self.count = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_up_to_a_ceiling_and_reset_on_success() {
        let mut backoff = FailureBackoff::new(Duration::from_millis(250));
        let pauses: Vec<u128> = (0..8).map(|_| backoff.failed().as_millis()).collect();
        assert_eq!(pauses, [250, 500, 1000, 2000, 4000, 8000, 10_000, 10_000]);
        backoff.succeeded();
        assert_eq!(backoff.failed(), Duration::from_millis(250));
    }
}
