//! Nodes and the store they open: exclusive node ids, the schema a release accepts,
//! pruning of finished jobs.

use std::time::Duration;

use database::SchemaPolicy;
use jobstore::{Error, JobStore};

use crate::backends::Backend;
use crate::{LEASE, LIVENESS, OWNER, claim, new_job, start_clock};

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

conformance_suite!(
    node_ids_are_exclusive_while_live,
    schema_behind_is_refused_and_newer_is_refused,
    finished_jobs_are_pruned_after_their_age_in_batches,
);
