//! Claims and leases: no job shared, results fenced by the lease, attempts counted
//! to the dead letter, cancellation, the queue's order and depth.

use std::collections::HashSet;
use std::time::Duration;

use jobstore::{
    AnyJobStore, Cancellation, ClaimRequest, Failure, JobStatus, JobStore, NewJob, QueueDepth,
    partition_of,
};

use crate::backends::Backend;
use crate::{LEASE, OWNER, claim, claim_one, new_job, start_clock, status_of};

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

conformance_suite!(
    racing_claimers_never_share_a_job,
    results_are_fenced_by_the_lease,
    a_result_outlives_an_outage_that_expired_its_lease,
    dead_letter_after_the_last_attempt_with_the_reason,
    a_released_job_is_claimable_at_once_and_keeps_its_attempts,
    cancellation_stops_queued_and_running_jobs_only,
    cancel_racing_completion_leaves_exactly_one_final_state,
    the_queue_depth_counts_waiting_and_running_jobs_only,
    claims_take_owned_partitions_first_and_steal_only_waiting_jobs,
    an_owner_claims_in_queue_order_and_finds_jobs_given_back,
);
