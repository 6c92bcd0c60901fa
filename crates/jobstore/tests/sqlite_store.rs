//! The job store's contract on a real SQLite file.

use std::collections::HashSet;
use std::time::Duration;

use jobstore::{Error, Failure, JobStatus, JobStore, NewJob, SqliteJobStore};
use tokio::task::JoinSet;

const LEASE: Duration = Duration::from_secs(30);

fn new_job(id: &str, request: &str) -> NewJob {
    NewJob {
        id: id.to_string(),
        owner: "owner-a".into(),
        idempotency_key: None,
        request: request.to_string(),
        customer_id: "C-000001".into(),
        max_attempts: 3,
    }
}

async fn open(directory: &tempfile::TempDir) -> SqliteJobStore {
    SqliteJobStore::open(&directory.path().join("jobs.sqlite"))
        .await
        .unwrap()
}

#[tokio::test]
async fn submission_is_idempotent_and_conflicts_are_named() {
    let directory = tempfile::tempdir().unwrap();
    let store = open(&directory).await;
    let first = store.submit(new_job("j1", "{\"a\":1}")).await.unwrap();
    assert!(first.created);
    assert_eq!(first.job.status, JobStatus::Queued);
    let again = store.submit(new_job("j1", "{\"a\":1}")).await.unwrap();
    assert!(!again.created);
    assert_eq!(again.job, first.job);

    let different = store.submit(new_job("j1", "{\"a\":2}")).await.unwrap_err();
    assert!(
        matches!(&different, Error::Conflict(message) if message.contains("job_id \"j1\"")),
        "{different}"
    );

    let stranger = NewJob {
        owner: "owner-b".into(),
        ..new_job("j1", "{\"a\":1}")
    };
    assert!(matches!(
        store.submit(stranger).await,
        Err(Error::Conflict(_))
    ));

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
        matches!(&reused, Error::Conflict(message) if message.contains("X-Idempotency-Key \"k1\""))
    );
    assert!(store.get("j3").await.unwrap().is_none());
    assert!(store.get("j4").await.unwrap().is_none());
}

#[tokio::test]
async fn concurrent_submissions_are_all_durable() {
    let directory = tempfile::tempdir().unwrap();
    let store = open(&directory).await;
    let mut tasks = JoinSet::new();
    for index in 0..1000 {
        let store = store.clone();
        tasks.spawn(async move { store.submit(new_job(&format!("job-{index}"), "{}")).await });
    }
    while let Some(outcome) = tasks.join_next().await {
        assert!(outcome.unwrap().unwrap().created);
    }
    store.close().await;
    let reopened = open(&directory).await;
    for index in [0, 499, 999] {
        assert!(
            reopened
                .get(&format!("job-{index}"))
                .await
                .unwrap()
                .is_some()
        );
    }
}

#[tokio::test]
async fn racing_claimers_never_share_a_job() {
    let directory = tempfile::tempdir().unwrap();
    let store = open(&directory).await;
    for index in 0..200 {
        store
            .submit(new_job(&format!("job-{index}"), "{}"))
            .await
            .unwrap();
    }
    let claimer = |name: &'static str| {
        let store = store.clone();
        async move {
            let mut mine = Vec::new();
            loop {
                let claimed = store.claim(name, 7, LEASE).await.unwrap();
                if claimed.is_empty() {
                    return mine;
                }
                mine.extend(claimed.into_iter().map(|claim| claim.job.id));
            }
        }
    };
    let (a, b, c, d) = tokio::join!(claimer("a"), claimer("b"), claimer("c"), claimer("d"));
    let all: Vec<String> = [a, b, c, d].concat();
    let distinct: HashSet<&String> = all.iter().collect();
    assert_eq!(all.len(), 200);
    assert_eq!(distinct.len(), 200, "a job went to two claimers");
}

#[tokio::test]
async fn results_are_fenced_by_the_lease() {
    let directory = tempfile::tempdir().unwrap();
    let store = open(&directory).await;
    store.submit(new_job("j", "{}")).await.unwrap();
    let zombie = store
        .claim("w1", 1, Duration::ZERO)
        .await
        .unwrap()
        .remove(0);
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(store.reap_expired_leases().await.unwrap(), 1);
    assert!(
        !store.heartbeat(&zombie, 0.5, LEASE).await.unwrap(),
        "an expired lease cannot be renewed"
    );

    let current = store.claim("w2", 1, LEASE).await.unwrap().remove(0);
    assert!(current.lease_token > zombie.lease_token);
    assert_eq!(current.job.attempts, 2);
    assert!(
        !store.complete(&zombie, "{\"late\":true}").await.unwrap(),
        "the zombie cannot store a result"
    );
    assert!(store.heartbeat(&current, 0.5, LEASE).await.unwrap());
    assert!(store.complete(&current, "{\"ok\":true}").await.unwrap());
    assert!(
        !store.complete(&current, "{\"again\":true}").await.unwrap(),
        "a result is stored once"
    );
    let job = store.get("j").await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Completed);
    assert_eq!(job.result.as_deref(), Some("{\"ok\":true}"));
    assert_eq!(job.progress, 1.0);
    assert!(job.finished_at.is_some());
}

#[tokio::test]
async fn dead_letter_after_the_last_attempt_with_the_reason() {
    let directory = tempfile::tempdir().unwrap();
    let store = open(&directory).await;
    store.submit(new_job("lost", "{}")).await.unwrap();
    for _ in 0..3 {
        store.claim("w", 1, Duration::ZERO).await.unwrap().remove(0);
        tokio::time::sleep(Duration::from_millis(5)).await;
        store.reap_expired_leases().await.unwrap();
    }
    let job = store.get("lost").await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Failed);
    assert_eq!(job.attempts, 3);
    let error = job.error.unwrap();
    assert!(
        error.starts_with("gave up after 3 attempts: the worker stopped renewing"),
        "{error}"
    );
    assert!(store.claim("w", 1, LEASE).await.unwrap().is_empty());

    store.submit(new_job("retry", "{}")).await.unwrap();
    let claim = store.claim("w", 1, LEASE).await.unwrap().remove(0);
    let retry = Failure::Retryable {
        reason: "data service timed out".into(),
        retry_after: Duration::ZERO,
    };
    assert!(store.fail(&claim, retry).await.unwrap());
    assert_eq!(
        store.get("retry").await.unwrap().unwrap().status,
        JobStatus::Queued
    );
    let claim = store.claim("w", 1, LEASE).await.unwrap().remove(0);
    let permanent = Failure::Permanent {
        reason: "customer \"C-9\" not found".into(),
    };
    assert!(store.fail(&claim, permanent).await.unwrap());
    let job = store.get("retry").await.unwrap().unwrap();
    assert_eq!(
        (job.status, job.error.as_deref()),
        (JobStatus::Failed, Some("customer \"C-9\" not found"))
    );
}

#[tokio::test]
async fn refuses_a_schema_newer_than_this_release() {
    let directory = tempfile::tempdir().unwrap();
    let store = open(&directory).await;
    store.close().await;
    let path = directory.path().join("jobs.sqlite");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES (9999, 'from the future', 1, x'00', 0)",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    let error = SqliteJobStore::open(&path)
        .await
        .err()
        .expect("a newer schema is refused");
    assert!(matches!(error, Error::Migration(_)), "{error}");
}
