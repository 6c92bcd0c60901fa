//! The job store's contract, one suite run against every backend: a real SQLite
//! file and a real PostgreSQL database of the test's own. Time is a manual clock
//! moved forward by the tests, never slept for. Each file holds one concern and
//! instantiates its tests once per backend (`conformance_suite!`).

use std::time::Duration;

use jobstore::{AnyJobStore, ClaimRequest, Claimed, Clock, JobStatus, JobStore, NewJob};

/// Runs each named test once per backend, as `<concern>::sqlite::<test>` and
/// `<concern>::postgres::<test>`.
macro_rules! conformance_suite {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test::<crate::backends::Sqlite>().await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test::<crate::backends::Postgres>().await
                }
            )*
        }
    };
}

mod backends;
mod claims;
mod nodes;
mod push;
mod submission;
mod tenancy;

const LEASE: Duration = Duration::from_secs(30);

const OWNER: &str = "owner-a";

const LIVENESS: Duration = Duration::from_secs(10);

fn new_job(id: &str, request: &str) -> NewJob {
    NewJob {
        id: id.to_string(),
        owner: OWNER.into(),
        idempotency_key: None,
        request: request.to_string(),
        customer_id: "C-000001".into(),
        max_attempts: 3,
        cost_ms: 10,
        traceparent: None,
    }
}

fn start_clock() -> Clock {
    Clock::manual(jobstore::now_millis())
}

/// Claims any queued job, whatever its partition.
async fn claim(store: &AnyJobStore, worker: &str, limit: u32, lease: Duration) -> Vec<Claimed> {
    store
        .claim(ClaimRequest::any_partition(worker, limit, lease))
        .await
        .unwrap()
}

async fn claim_one(store: &AnyJobStore, worker: &str, lease: Duration) -> Claimed {
    claim(store, worker, 1, lease).await.remove(0)
}

async fn status_of(store: &AnyJobStore, id: &str) -> JobStatus {
    store.get(OWNER, id).await.unwrap().unwrap().status
}
