//! The job store's contract, one suite run against every backend: a real SQLite
//! file and a real PostgreSQL database of the test's own. Time is a manual clock
//! moved forward by the tests, never slept for.

mod backends;

use std::collections::HashSet;
use std::time::Duration;

use backends::{Backend, Postgres, Sqlite};
use database::SchemaPolicy;
use jobstore::{
    AnyJobStore, Cancellation, ClaimRequest, Claimed, Clock, Conflict, Error, Failure, JobStatus,
    JobStore, NewJob, QueueDepth, partition_of,
};
use tokio::task::JoinSet;

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
        .claim(ClaimRequest {
            worker,
            limit,
            lease,
            partitions: &[],
            steal_after: Duration::ZERO,
            max_running_per_owner: None,
        })
        .await
        .unwrap()
}

async fn claim_one(store: &AnyJobStore, worker: &str, lease: Duration) -> Claimed {
    claim(store, worker, 1, lease).await.remove(0)
}

async fn status_of(store: &AnyJobStore, id: &str) -> JobStatus {
    store.get(OWNER, id).await.unwrap().unwrap().status
}

async fn submission_is_idempotent_and_conflicts_are_typed<B: Backend>() {
    let backend = B::create().await;
    let store = backend.open(&start_clock()).await;
    let first = store.submit(new_job("j1", "{\"a\":1}")).await.unwrap();
    assert!(first.created);
    assert_eq!(first.job.status, JobStatus::Queued);
    let again = store.submit(new_job("j1", "{\"a\":1}")).await.unwrap();
    assert!(!again.created);
    assert_eq!(again.job, first.job);

    let different = store.submit(new_job("j1", "{\"a\":2}")).await.unwrap_err();
    assert!(
        matches!(&different, Error::Conflict(Conflict::JobId { job_id }) if job_id == "j1"),
        "{different}"
    );

    let keyed = NewJob {
        idempotency_key: Some("k1".into()),
        ..new_job("j2", "{\"b\":1}")
    };
    store.submit(keyed.clone()).await.unwrap();
    let replay = store
        .submit(NewJob {
            id: "j3".into(),
            ..keyed.clone()
        })
        .await
        .unwrap();
    assert_eq!(
        replay.job.id, "j2",
        "the same key and request return the first job"
    );
    let reused = store
        .submit(NewJob {
            id: "j4".into(),
            request: "{\"b\":2}".into(),
            ..keyed
        })
        .await
        .unwrap_err();
    assert!(
        matches!(&reused, Error::Conflict(Conflict::IdempotencyKey { key, job_id }) if key == "k1" && job_id == "j2"),
        "{reused}"
    );
    assert!(store.get(OWNER, "j3").await.unwrap().is_none());
    assert!(store.get(OWNER, "j4").await.unwrap().is_none());
    store.close().await;
}

async fn concurrent_submissions_are_all_durable<B: Backend>() {
    let backend = B::create().await;
    let clock = start_clock();
    let store = backend.open(&clock).await;
    let mut tasks = JoinSet::new();
    for index in 0..1000 {
        let store = store.clone();
        tasks.spawn(async move { store.submit(new_job(&format!("job-{index}"), "{}")).await });
    }
    while let Some(outcome) = tasks.join_next().await {
        assert!(outcome.unwrap().unwrap().created);
    }
    store.close().await;
    let reopened = backend.open(&clock).await;
    for index in [0, 499, 999] {
        let job = reopened.get(OWNER, &format!("job-{index}")).await.unwrap();
        assert_eq!(job.map(|job| job.status), Some(JobStatus::Queued));
    }
    reopened.close().await;
}

async fn identical_concurrent_submissions_make_one_job<B: Backend>() {
    let backend = B::create().await;
    let store = backend.open(&start_clock()).await;
    let mut tasks = JoinSet::new();
    for _ in 0..50 {
        let store = store.clone();
        tasks.spawn(async move { store.submit(new_job("same", "{\"x\":1}")).await });
    }
    let mut created = 0;
    while let Some(outcome) = tasks.join_next().await {
        let submitted = outcome.unwrap().unwrap();
        assert_eq!(submitted.job.id, "same");
        created += usize::from(submitted.created);
    }
    assert_eq!(created, 1, "exactly one submission created the job");
    store.close().await;
}

async fn racing_claimers_never_share_a_job<B: Backend>() {
    let backend = B::create().await;
    let clock = start_clock();
    let first_node = backend.open(&clock).await;
    let second_node = backend.open(&clock).await;
    for index in 0..200 {
        first_node
            .submit(new_job(&format!("job-{index}"), "{}"))
            .await
            .unwrap();
    }
    let claimer = |store: AnyJobStore, name: &'static str| async move {
        let mut mine = Vec::new();
        loop {
            let claimed = claim(&store, name, 7, LEASE).await;
            if claimed.is_empty() {
                return mine;
            }
            mine.extend(claimed.into_iter().map(|claim| claim.job.id));
        }
    };
    let (a, b, c, d) = tokio::join!(
        claimer(first_node.clone(), "a"),
        claimer(first_node.clone(), "b"),
        claimer(second_node.clone(), "c"),
        claimer(second_node.clone(), "d")
    );
    let all: Vec<String> = [a, b, c, d].concat();
    let distinct: HashSet<&String> = all.iter().collect();
    assert_eq!(all.len(), 200);
    assert_eq!(distinct.len(), 200, "a job went to two claimers");
    first_node.close().await;
    second_node.close().await;
}

async fn results_are_fenced_by_the_lease<B: Backend>() {
    let backend = B::create().await;
    let clock = start_clock();
    let store = backend.open(&clock).await;
    store.submit(new_job("j", "{}")).await.unwrap();
    let zombie = claim_one(&store, "w1", LEASE).await;
    clock.advance(LEASE / 2);
    assert_eq!(
        store.reap_expired_leases().await.unwrap(),
        0,
        "the lease still runs"
    );
    clock.advance(LEASE);
    assert_eq!(store.reap_expired_leases().await.unwrap(), 1);
    assert!(
        !store.heartbeat(&zombie, 0.5, LEASE).await.unwrap(),
        "an expired lease cannot be renewed"
    );

    let current = claim_one(&store, "w2", LEASE).await;
    assert!(current.lease_token > zombie.lease_token);
    assert_eq!(current.job.attempts, 2);
    assert!(
        !store.complete(&zombie, "{\"late\":true}").await.unwrap(),
        "the zombie cannot store a result"
    );
    assert!(store.heartbeat(&current, 0.5, LEASE).await.unwrap());
    assert_eq!(store.get(OWNER, "j").await.unwrap().unwrap().progress, 0.5);
    assert!(store.complete(&current, "{\"ok\":true}").await.unwrap());
    assert!(
        !store.complete(&current, "{\"again\":true}").await.unwrap(),
        "a result is stored once"
    );
    let job = store.get(OWNER, "j").await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Completed);
    assert_eq!(job.result.as_deref(), Some("{\"ok\":true}"));
    assert_eq!(job.progress, 1.0);
    assert!(job.finished_at.is_some());
    store.close().await;
}

async fn a_result_outlives_an_outage_that_expired_its_lease<B: Backend>() {
    let backend = B::create().await;
    let clock = start_clock();
    let store = backend.open(&clock).await;
    store.submit(new_job("j", "{}")).await.unwrap();
    let running = claim_one(&store, "w1", LEASE).await;
    // The store was unreachable past the lease, and a reaper got there first;
    // nobody claimed the job since, so the attempt that ran may still finish it.
    clock.advance(LEASE * 2);
    assert_eq!(store.reap_expired_leases().await.unwrap(), 1);
    assert!(store.complete(&running, "{\"ok\":true}").await.unwrap());
    assert_eq!(status_of(&store, "j").await, JobStatus::Completed);
    assert!(claim(&store, "w2", 1, LEASE).await.is_empty());
    store.close().await;
}

async fn dead_letter_after_the_last_attempt_with_the_reason<B: Backend>() {
    let backend = B::create().await;
    let clock = start_clock();
    let store = backend.open(&clock).await;
    store.submit(new_job("lost", "{}")).await.unwrap();
    for _ in 0..3 {
        claim_one(&store, "w", LEASE).await;
        clock.advance(LEASE + Duration::from_millis(1));
        store.reap_expired_leases().await.unwrap();
    }
    let job = store.get(OWNER, "lost").await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Failed);
    assert_eq!(job.attempts, 3);
    let error = job.error.unwrap();
    assert!(
        error.starts_with("gave up after 3 attempts: the worker stopped renewing"),
        "{error}"
    );
    assert!(claim(&store, "w", 1, LEASE).await.is_empty());

    store.submit(new_job("retry", "{}")).await.unwrap();
    let attempt = claim_one(&store, "w", LEASE).await;
    let retry = Failure::Retryable {
        reason: "data service timed out".into(),
        retry_after: Duration::from_secs(5),
    };
    assert!(store.fail(&attempt, retry).await.unwrap());
    assert_eq!(status_of(&store, "retry").await, JobStatus::Queued);
    assert!(
        claim(&store, "w", 1, LEASE).await.is_empty(),
        "a retry waits for its delay"
    );
    clock.advance(Duration::from_secs(5));
    let attempt = claim_one(&store, "w", LEASE).await;
    let permanent = Failure::Permanent {
        reason: "customer \"C-9\" not found".into(),
    };
    assert!(store.fail(&attempt, permanent).await.unwrap());
    let job = store.get(OWNER, "retry").await.unwrap().unwrap();
    assert_eq!(
        (job.status, job.error.as_deref()),
        (JobStatus::Failed, Some("customer \"C-9\" not found"))
    );
    store.close().await;
}

async fn a_released_job_is_claimable_at_once_and_keeps_its_attempts<B: Backend>() {
    let backend = B::create().await;
    let store = backend.open(&start_clock()).await;
    store.submit(new_job("j", "{}")).await.unwrap();
    let stopping = claim_one(&store, "leaving", LEASE).await;
    assert!(store.release(&stopping).await.unwrap());
    assert!(!store.release(&stopping).await.unwrap(), "released once");
    let next = claim_one(&store, "staying", LEASE).await;
    assert_eq!(next.job.id, "j");
    assert_eq!(next.job.attempts, 1, "a release does not spend an attempt");
    assert!(!store.complete(&stopping, "{}").await.unwrap());
    store.close().await;
}

async fn cancellation_stops_queued_and_running_jobs_only<B: Backend>() {
    let backend = B::create().await;
    let store = backend.open(&start_clock()).await;
    for id in ["queued", "running", "done"] {
        store.submit(new_job(id, "{}")).await.unwrap();
    }
    assert!(matches!(
        store.cancel(OWNER, "queued").await.unwrap(),
        Cancellation::Cancelled(job) if job.status == JobStatus::Cancelled
    ));
    let running = claim_one(&store, "w", LEASE).await;
    let done = claim_one(&store, "w", LEASE).await;
    assert!(store.complete(&done, "{}").await.unwrap());
    assert!(matches!(
        store.cancel(OWNER, &running.job.id).await.unwrap(),
        Cancellation::Cancelled(_)
    ));
    assert!(
        !store.heartbeat(&running, 0.2, LEASE).await.unwrap(),
        "the running attempt learns of the cancellation at its next heartbeat"
    );
    assert!(!store.complete(&running, "{}").await.unwrap());
    assert_eq!(
        status_of(&store, &running.job.id).await,
        JobStatus::Cancelled
    );
    assert!(matches!(
        store.cancel(OWNER, &done.job.id).await.unwrap(),
        Cancellation::Finished(job) if job.status == JobStatus::Completed
    ));
    assert_eq!(
        store.cancel(OWNER, "nope").await.unwrap(),
        Cancellation::NotFound
    );
    assert!(claim(&store, "w", 1, LEASE).await.is_empty());
    store.close().await;
}

async fn the_queue_depth_counts_waiting_and_running_jobs_only<B: Backend>() {
    let backend = B::create().await;
    let store = backend.open(&start_clock()).await;
    assert_eq!(store.queue_depth().await.unwrap(), QueueDepth::default());
    for id in ["a", "b", "c", "d", "e"] {
        store.submit(new_job(id, "{}")).await.unwrap();
    }
    let running = claim_one(&store, "w", LEASE).await;
    let done = claim_one(&store, "w", LEASE).await;
    assert!(store.complete(&done, "{}").await.unwrap());
    store.cancel(OWNER, "e").await.unwrap();
    assert_eq!(
        store.queue_depth().await.unwrap(),
        QueueDepth {
            queued: 2,
            processing: 1
        }
    );
    assert!(store.complete(&running, "{}").await.unwrap());
    assert_eq!(store.queue_depth().await.unwrap().processing, 0);
    store.close().await;
}

async fn claims_take_owned_partitions_first_and_steal_only_waiting_jobs<B: Backend>() {
    let backend = B::create().await;
    let clock = start_clock();
    let store = backend.open(&clock).await;
    let customers: Vec<String> = (1..=40).map(|n| format!("C-{n:06}")).collect();
    let mine = partition_of(&customers[0]);
    for (index, customer) in customers.iter().enumerate() {
        let job = NewJob {
            customer_id: customer.clone(),
            ..new_job(&format!("job-{index}"), "{}")
        };
        store.submit(job).await.unwrap();
    }
    let owned_count = customers.iter().filter(|c| partition_of(c) == mine).count();
    let request = |limit| ClaimRequest {
        worker: "node-a",
        limit,
        lease: LEASE,
        partitions: std::slice::from_ref(&mine),
        steal_after: Duration::from_secs(5),
        max_running_per_owner: None,
    };
    let first = store.claim(request(100)).await.unwrap();
    assert_eq!(
        first.len(),
        owned_count,
        "only owned jobs before the steal threshold"
    );
    assert!(
        first
            .iter()
            .all(|claim| partition_of(&claim.job.customer_id) == mine)
    );
    clock.advance(Duration::from_secs(5));
    let stolen = store.claim(request(3)).await.unwrap();
    assert_eq!(
        stolen.len(),
        3,
        "jobs that waited are stolen, up to the limit"
    );
    store.close().await;
}

async fn an_owner_claims_in_queue_order_and_finds_jobs_given_back<B: Backend>() {
    let backend = B::create().await;
    let clock = start_clock();
    let store = backend.open(&clock).await;
    let mine = partition_of("C-000001");
    for id in ["j1", "j2", "j3"] {
        store.submit(new_job(id, "{}")).await.unwrap();
        clock.advance(Duration::from_millis(1));
    }
    let one = || ClaimRequest {
        worker: "node-a",
        limit: 1,
        lease: LEASE,
        partitions: std::slice::from_ref(&mine),
        steal_after: Duration::from_secs(3600),
        max_running_per_owner: None,
    };
    let first = store.claim(one()).await.unwrap().remove(0);
    assert_eq!(first.job.id, "j1");
    clock.advance(Duration::from_millis(1));
    assert!(store.release(&first).await.unwrap());
    let order: Vec<String> = [
        store.claim(one()).await.unwrap(),
        store.claim(one()).await.unwrap(),
        store.claim(one()).await.unwrap(),
    ]
    .into_iter()
    .flatten()
    .map(|claim| claim.job.id)
    .collect();
    // A job given back keeps its place in the fair order; a node reading from
    // its cursor finds it when it looks again from the head, at once when its
    // claim comes up short.
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(sorted, ["j1", "j2", "j3"], "each job once: {order:?}");
    let position = |id: &str| order.iter().position(|claimed| claimed == id);
    assert!(position("j2") < position("j3"), "queue order: {order:?}");
    assert!(store.claim(one()).await.unwrap().is_empty());
    store.close().await;
}

async fn node_ids_are_exclusive_while_live<B: Backend>() {
    let backend = B::create().await;
    let clock = start_clock();
    let store = backend.open(&clock).await;
    store.register_node("node-a", LIVENESS).await.unwrap();
    store.register_node("node-b", LIVENESS).await.unwrap();
    let refused = store.register_node("node-a", LIVENESS).await.unwrap_err();
    assert!(
        matches!(&refused, Error::NodeIdLive { node_id, .. } if node_id == "node-a"),
        "{refused}"
    );
    assert!(refused.to_string().contains("--node-id"), "{refused}");
    clock.advance(LIVENESS / 2);
    assert_eq!(
        store.node_heartbeat("node-a", LIVENESS).await.unwrap(),
        ["node-a", "node-b"]
    );
    clock.advance(LIVENESS / 2 + Duration::from_millis(1));
    assert_eq!(
        store.node_heartbeat("node-a", LIVENESS).await.unwrap(),
        ["node-a"],
        "node-b stopped beating and is no longer live"
    );
    store.register_node("node-b", LIVENESS).await.unwrap();
    store.deregister_node("node-a").await.unwrap();
    assert_eq!(
        store.node_heartbeat("node-b", LIVENESS).await.unwrap(),
        ["node-b"]
    );
    store.close().await;
}

async fn finished_jobs_are_pruned_after_their_age_in_batches<B: Backend>() {
    let backend = B::create().await;
    let clock = start_clock();
    let store = backend.open(&clock).await;
    for index in 0..25 {
        store
            .submit(new_job(&format!("old-{index}"), "{}"))
            .await
            .unwrap();
    }
    for attempt in claim(&store, "w", 25, LEASE).await {
        assert!(store.complete(&attempt, "{}").await.unwrap());
    }
    clock.advance(Duration::from_secs(3600));
    store.submit(new_job("queued-old", "{}")).await.unwrap();
    store.submit(new_job("recent", "{}")).await.unwrap();
    let recent = claim(&store, "w", 2, LEASE).await;
    for attempt in &recent {
        assert!(store.complete(attempt, "{}").await.unwrap());
    }
    let age = Duration::from_secs(1800);
    assert_eq!(store.prune_finished(age, 10).await.unwrap(), 10);
    assert_eq!(store.prune_finished(age, 100).await.unwrap(), 15);
    assert_eq!(store.prune_finished(age, 100).await.unwrap(), 0);
    assert!(store.get(OWNER, "old-0").await.unwrap().is_none());
    for attempt in recent {
        assert!(store.get(OWNER, &attempt.job.id).await.unwrap().is_some());
    }
    store.close().await;
}

async fn schema_behind_is_refused_and_newer_is_refused<B: Backend>() {
    let backend = B::create().await;
    let clock = start_clock();
    let refused = backend
        .open_with(&clock, SchemaPolicy::Require)
        .await
        .err()
        .expect("an unmigrated store is refused");
    assert!(
        refused.to_string().contains("projector migrate"),
        "{refused}"
    );
    backend.open(&clock).await.close().await;
    let store = backend
        .open_with(&clock, SchemaPolicy::Require)
        .await
        .unwrap();
    store.close().await;
    backend.add_future_migration().await;
    let newer = backend
        .open_with(&clock, SchemaPolicy::Apply)
        .await
        .err()
        .expect("a newer schema is refused");
    assert!(newer.to_string().contains("newer release"), "{newer}");
}

async fn idle_claimers_are_woken_by_submissions<B: Backend>() {
    let backend = B::create().await;
    let clock = start_clock();
    let worker_side = backend.open(&clock).await;
    let gateway_side = backend.peer(&worker_side, &clock).await;
    let woken = worker_side.jobs_signal().notified();
    tokio::pin!(woken);
    woken.as_mut().enable();
    gateway_side.submit(new_job("wake", "{}")).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), woken)
        .await
        .expect("a commit wakes an idle claimer");
    worker_side.close().await;
    gateway_side.close().await;
}

async fn ids_and_idempotency_keys_belong_to_their_tenant<B: Backend>() {
    let backend = B::create().await;
    let store = backend.open(&start_clock()).await;
    let of_a = NewJob {
        idempotency_key: Some("k".into()),
        ..new_job("shared", "{\"a\":1}")
    };
    let of_b = NewJob {
        owner: "owner-b".into(),
        request: "{\"b\":1}".into(),
        ..of_a.clone()
    };
    assert!(store.submit(of_a.clone()).await.unwrap().created);
    let submitted_b = store.submit(of_b.clone()).await.unwrap();
    assert!(
        submitted_b.created,
        "another tenant's id and key are no one else's business"
    );
    assert_eq!(
        store
            .get("owner-b", "shared")
            .await
            .unwrap()
            .unwrap()
            .request,
        "{\"b\":1}"
    );
    assert_eq!(
        store.get(OWNER, "shared").await.unwrap().unwrap().request,
        "{\"a\":1}"
    );
    assert!(store.get("owner-c", "shared").await.unwrap().is_none());

    // Both run, each fenced by its own lease: finishing one leaves the other.
    let claimed = claim(&store, "w", 2, LEASE).await;
    assert_eq!(claimed.len(), 2);
    assert!(store.complete(&claimed[0], "{}").await.unwrap());
    let other = &claimed[1];
    assert_eq!(
        store
            .get(&other.job.owner, "shared")
            .await
            .unwrap()
            .unwrap()
            .status,
        JobStatus::Processing
    );
    assert_eq!(
        store.cancel("owner-c", "shared").await.unwrap(),
        Cancellation::NotFound
    );
}

async fn a_replay_matched_by_id_records_the_idempotency_key_it_brings<B: Backend>() {
    let backend = B::create().await;
    let store = backend.open(&start_clock()).await;
    store.submit(new_job("by-id", "{\"a\":1}")).await.unwrap();
    let keyed = NewJob {
        idempotency_key: Some("late-key".into()),
        ..new_job("by-id", "{\"a\":1}")
    };
    let replay = store.submit(keyed.clone()).await.unwrap();
    assert!(!replay.created);
    assert_eq!(replay.job.idempotency_key.as_deref(), Some("late-key"));
    assert_eq!(
        store
            .get(OWNER, "by-id")
            .await
            .unwrap()
            .unwrap()
            .idempotency_key
            .as_deref(),
        Some("late-key")
    );
    // A retry that sends only the key (under a new id) finds the job.
    let by_key = store
        .submit(NewJob {
            id: "another-id".into(),
            ..keyed
        })
        .await
        .unwrap();
    assert!(!by_key.created);
    assert_eq!(by_key.job.id, "by-id");
    assert!(store.get(OWNER, "another-id").await.unwrap().is_none());
}

/// A job of `owner` that costs `cost_ms`.
fn job_of(owner: &str, id: &str, cost_ms: u32) -> NewJob {
    NewJob {
        owner: owner.into(),
        cost_ms,
        ..new_job(id, "{}")
    }
}

fn any_partition(limit: u32, max_running_per_owner: Option<u32>) -> ClaimRequest<'static> {
    ClaimRequest {
        worker: "node-a",
        limit,
        lease: LEASE,
        partitions: &[],
        steal_after: Duration::ZERO,
        max_running_per_owner,
    }
}

async fn a_tenants_backlog_does_not_hold_up_another_tenants_job<B: Backend>() {
    let backend = B::create().await;
    let clock = start_clock();
    let store = backend.open(&clock).await;
    for index in 0..40 {
        store
            .submit(job_of("heavy", &format!("big-{index}"), 60_000))
            .await
            .unwrap();
    }
    clock.advance(Duration::from_secs(5));
    store.submit(job_of("light", "small", 5)).await.unwrap();
    let first = store.claim(any_partition(1, None)).await.unwrap();
    let second = store.claim(any_partition(1, None)).await.unwrap();
    let order: Vec<&str> = first
        .iter()
        .chain(&second)
        .map(|claim| claim.job.id.as_str())
        .collect();
    assert_eq!(
        order,
        ["big-0", "small"],
        "the light tenant's job goes before the heavy tenant's backlog"
    );
    // Within a tenant, its own jobs keep their order.
    let third = store.claim(any_partition(1, None)).await.unwrap();
    assert_eq!(third[0].job.id, "big-1");
    store.close().await;
}

async fn no_tenant_runs_more_jobs_than_its_limit<B: Backend>() {
    let backend = B::create().await;
    let clock = start_clock();
    let store = backend.open(&clock).await;
    for index in 0..5 {
        store
            .submit(job_of("owner-a", &format!("a-{index}"), 10))
            .await
            .unwrap();
    }
    for index in 0..3 {
        store
            .submit(job_of("owner-b", &format!("b-{index}"), 10))
            .await
            .unwrap();
    }
    let claimed = store.claim(any_partition(10, Some(2))).await.unwrap();
    let per_owner = |claims: &[Claimed], owner: &str| {
        claims
            .iter()
            .filter(|claim| claim.job.owner == owner)
            .count()
    };
    assert_eq!(per_owner(&claimed, "owner-a"), 2, "{claimed:?}");
    assert_eq!(per_owner(&claimed, "owner-b"), 2, "{claimed:?}");
    assert!(
        store
            .claim(any_partition(10, Some(2)))
            .await
            .unwrap()
            .is_empty(),
        "both tenants are at their limit"
    );
    let done = claimed
        .iter()
        .find(|claim| claim.job.owner == "owner-a")
        .unwrap();
    assert!(store.complete(done, "{}").await.unwrap());
    let next = store.claim(any_partition(10, Some(2))).await.unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].job.owner, "owner-a");
    let unlimited = store.claim(any_partition(10, None)).await.unwrap();
    assert_eq!(unlimited.len(), 3, "without a limit the rest is taken");
    store.close().await;
}

async fn cancel_racing_completion_leaves_exactly_one_final_state<B: Backend>() {
    let backend = B::create().await;
    let store = backend.open(&start_clock()).await;
    for round in 0..20 {
        let id = format!("race-{round}");
        store.submit(new_job(&id, "{}")).await.unwrap();
        let running = claim_one(&store, "w1", LEASE).await;
        let (completing, cancelling) = (store.clone(), store.clone());
        let completed =
            tokio::spawn(async move { completing.complete(&running, "{\"done\":1}").await });
        let cancel_id = id.clone();
        let cancelled = tokio::spawn(async move { cancelling.cancel(OWNER, &cancel_id).await });
        let completed = completed.await.unwrap().unwrap();
        let cancelled = cancelled.await.unwrap().unwrap();
        let job = store.get(OWNER, &id).await.unwrap().unwrap();
        match job.status {
            JobStatus::Completed => {
                assert!(completed, "round {round}");
                assert!(
                    matches!(cancelled, Cancellation::Finished(_)),
                    "round {round}"
                );
                assert!(job.result.is_some());
            }
            JobStatus::Cancelled => {
                assert!(!completed, "round {round}: a cancelled job took a result");
                assert!(
                    matches!(cancelled, Cancellation::Cancelled(_)),
                    "round {round}"
                );
                assert!(job.result.is_none());
            }
            other => panic!("round {round} ended {other:?}"),
        }
    }
    store.close().await;
}

/// Waits for a push; a push that does not come within seconds is a failure.
async fn pushed(what: &str, push: impl std::future::Future<Output = ()>) {
    tokio::time::timeout(Duration::from_secs(5), push)
        .await
        .unwrap_or_else(|_| panic!("no push for {what}"));
}

/// Nothing is pushed within a moment.
async fn quiet(watch: &mut jobstore::JobWatch) {
    assert!(
        tokio::time::timeout(Duration::from_millis(300), watch.changed())
            .await
            .is_err(),
        "a push came for a job that did not change"
    );
}

async fn watchers_are_pushed_every_change_of_status_and_progress<B: Backend>() {
    let backend = B::create().await;
    let clock = start_clock();
    let worker_side = backend.open(&clock).await;
    // On PostgreSQL the watcher is in another process-like store: the push
    // crosses processes through the database.
    let gateway_side = backend.peer(&worker_side, &clock).await;
    let submitted = gateway_side.submit(new_job("watched", "{}")).await.unwrap();
    let mut watch = gateway_side.changes().watch(submitted.job.seq);
    let mut bystander = gateway_side.changes().watch(submitted.job.seq + 1000);

    let running = claim_one(&worker_side, "w1", LEASE).await;
    assert_eq!(running.job.seq, submitted.job.seq);
    pushed("the claim", watch.changed()).await;
    assert!(worker_side.heartbeat(&running, 0.5, LEASE).await.unwrap());
    pushed("progress", watch.changed()).await;
    let progress = gateway_side.get(OWNER, "watched").await.unwrap().unwrap();
    assert_eq!(progress.progress, 0.5);
    quiet(&mut bystander).await;

    let mut cancelled = worker_side.changes().watch(running.job.seq);
    assert!(matches!(
        gateway_side.cancel(OWNER, "watched").await.unwrap(),
        Cancellation::Cancelled(_)
    ));
    pushed("the cancellation to the gateway", watch.cancelled()).await;
    // The worker learns of it without waiting for its next heartbeat.
    pushed("the cancellation to the worker", cancelled.cancelled()).await;
    assert!(!worker_side.heartbeat(&running, 0.7, LEASE).await.unwrap());

    let second = worker_side
        .submit(new_job("completed", "{}"))
        .await
        .unwrap();
    let mut done = gateway_side.changes().watch(second.job.seq);
    let running = claim_one(&worker_side, "w1", LEASE).await;
    pushed("the second claim", done.changed()).await;
    assert!(worker_side.complete(&running, "{}").await.unwrap());
    pushed("the result", done.changed()).await;
    quiet(&mut done).await;
    worker_side.close().await;
    gateway_side.close().await;
}

macro_rules! conformance_suite {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test::<super::Sqlite>().await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test::<super::Postgres>().await
                }
            )*
        }
    };
}

conformance_suite!(
    submission_is_idempotent_and_conflicts_are_typed,
    concurrent_submissions_are_all_durable,
    identical_concurrent_submissions_make_one_job,
    racing_claimers_never_share_a_job,
    results_are_fenced_by_the_lease,
    a_result_outlives_an_outage_that_expired_its_lease,
    dead_letter_after_the_last_attempt_with_the_reason,
    a_released_job_is_claimable_at_once_and_keeps_its_attempts,
    cancellation_stops_queued_and_running_jobs_only,
    the_queue_depth_counts_waiting_and_running_jobs_only,
    claims_take_owned_partitions_first_and_steal_only_waiting_jobs,
    an_owner_claims_in_queue_order_and_finds_jobs_given_back,
    node_ids_are_exclusive_while_live,
    finished_jobs_are_pruned_after_their_age_in_batches,
    schema_behind_is_refused_and_newer_is_refused,
    idle_claimers_are_woken_by_submissions,
    ids_and_idempotency_keys_belong_to_their_tenant,
    a_replay_matched_by_id_records_the_idempotency_key_it_brings,
    a_tenants_backlog_does_not_hold_up_another_tenants_job,
    no_tenant_runs_more_jobs_than_its_limit,
    watchers_are_pushed_every_change_of_status_and_progress,
    cancel_racing_completion_leaves_exactly_one_final_state,
);
