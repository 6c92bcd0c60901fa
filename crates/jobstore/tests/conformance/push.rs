//! Pushes: idle claimers woken by submissions, watchers told every change.

use std::time::Duration;

use jobstore::{Cancellation, JobStore};

use crate::backends::Backend;
use crate::{LEASE, OWNER, claim_one, new_job, start_clock};

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

conformance_suite!(
    idle_claimers_are_woken_by_submissions,
    watchers_are_pushed_every_change_of_status_and_progress,
);
