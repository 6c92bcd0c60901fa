//! Submissions per API key: a token bucket per tenant (GCRA), so that one
//! tenant's burst cannot take every other tenant's share of the intake. The
//! bucket is this gateway's: with several gateways, each allows the rate.

use std::num::NonZeroU32;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use service::Problem;

/// How fast one tenant may submit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubmissionRate {
    pub per_second: NonZeroU32,
    /// Submissions accepted at once after a quiet spell.
    pub burst: NonZeroU32,
}

pub(crate) struct SubmissionLimiter {
    rate: SubmissionRate,
    buckets: DefaultKeyedRateLimiter<String>,
    clock: DefaultClock,
}

impl SubmissionLimiter {
    pub(crate) fn new(rate: SubmissionRate) -> Self {
        let quota = Quota::per_second(rate.per_second).allow_burst(rate.burst);
        SubmissionLimiter {
            rate,
            buckets: RateLimiter::keyed(quota),
            clock: DefaultClock::default(),
        }
    }

    /// Takes one submission from `owner`'s bucket, or answers 429 with how long to wait.
    pub(crate) fn admit(&self, owner: &str) -> Result<(), Problem> {
        let Err(not_until) = self.buckets.check_key(&owner.to_string()) else {
            return Ok(());
        };
        let wait = not_until.wait_time_from(self.clock.now());
        let problem = Problem::too_many(wait, |seconds| {
            format!(
                "this API key submits faster than {} jobs a second (bursts of {}); retry after {seconds} s",
                self.rate.per_second, self.rate.burst
            )
        });
        Err(problem)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_tenant_has_its_own_bucket_and_is_told_when_to_retry() {
        let limiter = SubmissionLimiter::new(SubmissionRate {
            per_second: NonZeroU32::new(1).unwrap(),
            burst: NonZeroU32::new(3).unwrap(),
        });
        for _ in 0..3 {
            limiter.admit("tenant-a").unwrap();
        }
        let refused = limiter.admit("tenant-a").unwrap_err();
        assert_eq!(refused.status, 429);
        assert_eq!(refused.retry_after, Some(1));
        limiter.admit("tenant-b").unwrap();
    }
}
