//! Tenancy: ids and keys belong to their tenant, fair order between tenants,
//! running caps.

use std::time::Duration;

use jobstore::{Cancellation, ClaimRequest, Claimed, JobStatus, JobStore, NewJob};

use crate::backends::Backend;
use crate::{LEASE, OWNER, claim, new_job, start_clock};

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
        max_running_per_owner,
        ..ClaimRequest::any_partition("node-a", limit, LEASE)
    }
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

conformance_suite!(
    ids_and_idempotency_keys_belong_to_their_tenant,
    a_tenants_backlog_does_not_hold_up_another_tenants_job,
    no_tenant_runs_more_jobs_than_its_limit,
);
