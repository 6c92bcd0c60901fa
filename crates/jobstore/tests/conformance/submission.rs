//! Submissions: durable, idempotent, one job for identical racing submissions,
//! conflicts typed.

use jobstore::{Conflict, Error, JobStatus, JobStore, NewJob};
use tokio::task::JoinSet;

use crate::backends::Backend;
use crate::{OWNER, new_job, start_clock};

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

conformance_suite!(
    submission_is_idempotent_and_conflicts_are_typed,
    concurrent_submissions_are_all_durable,
    identical_concurrent_submissions_make_one_job,
    a_replay_matched_by_id_records_the_idempotency_key_it_brings,
);
