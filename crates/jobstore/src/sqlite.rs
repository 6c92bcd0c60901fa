//! The job store on SQLite in WAL mode: one file. Every write (submissions,
//! claims, heartbeats, results, the reaper) goes through one writer task that
//! commits them in groups: writers never wait on each other's locks, and many
//! concurrent writes share one `fsync`. Reads use a pool of their own.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{FromRow, SqliteConnection};
use tokio::sync::{mpsc, oneshot};

use crate::writer::{OpFuture, Write, group_commit, operation};

use crate::job::{Claimed, Job, JobStatus, NewJob, Submitted, now_millis};
use crate::{Error, Failure, JobStore, Result};

const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Writes waiting for the writer before senders wait too.
const WRITE_QUEUE: usize = 2048;

#[derive(Clone)]
pub struct SqliteJobStore {
    /// Reads.
    pool: SqlitePool,
    /// The writer's own connection, durable at every commit.
    writer_pool: SqlitePool,
    writes: mpsc::Sender<Write>,
}

impl SqliteJobStore {
    /// Opens (creating when missing) the store at `path` and brings its schema up
    /// to date; refuses a database whose schema is newer than this release.
    pub async fn open(path: &Path) -> Result<Self> {
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        let writer_pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        let (writes, receiver) = mpsc::channel(WRITE_QUEUE);
        tokio::spawn(group_commit(writer_pool.clone(), receiver));
        Ok(SqliteJobStore {
            pool,
            writer_pool,
            writes,
        })
    }

    /// Waits for pending writes and closes the database.
    pub async fn close(&self) {
        self.writer_pool.close().await;
        self.pool.close().await;
    }

    /// Runs `write` in the writer's next group and returns its outcome once committed.
    async fn write<T, F>(&self, write: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> OpFuture<'c, T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        self.writes
            .send(operation(write, reply))
            .await
            .map_err(|_| Error::Closed)?;
        answer.await.map_err(|_| Error::Closed)?
    }
}

async fn insert_or_match(
    connection: &mut SqliteConnection,
    job: &NewJob,
) -> std::result::Result<Result<Submitted>, sqlx::Error> {
    // The common case first: one statement for a new job.
    let now = now_millis();
    let inserted: Option<JobRow> = sqlx::query_as(
        "INSERT INTO jobs (id, owner, idempotency_key, request, customer_id, status, max_attempts, created_at, available_at)
         VALUES (?1, ?2, ?3, ?4, ?5, 'queued', ?6, ?7, ?7) ON CONFLICT DO NOTHING RETURNING *",
    )
    .bind(&job.id)
    .bind(&job.owner)
    .bind(&job.idempotency_key)
    .bind(&job.request)
    .bind(&job.customer_id)
    .bind(i64::from(job.max_attempts))
    .bind(now)
    .fetch_optional(&mut *connection)
    .await?;
    if let Some(row) = inserted {
        return Ok(Ok(Submitted {
            job: row.into(),
            created: true,
        }));
    }
    // The id or the idempotency key is taken: the same request is a replay.
    let existing: JobRow = sqlx::query_as(
        "SELECT * FROM jobs WHERE id = ?1 OR (owner = ?2 AND idempotency_key = ?3) LIMIT 1",
    )
    .bind(&job.id)
    .bind(&job.owner)
    .bind(&job.idempotency_key)
    .fetch_one(&mut *connection)
    .await?;
    let existing = Job::from(existing);
    if existing.owner == job.owner && existing.request == job.request {
        return Ok(Ok(Submitted {
            job: existing,
            created: false,
        }));
    }
    let conflict = if existing.id == job.id {
        format!(
            "job_id {:?} is already used for a different request; use a new job_id to submit another job",
            job.id
        )
    } else {
        format!(
            "X-Idempotency-Key {:?} was already used for a different request (job {:?}); use a new key",
            job.idempotency_key.as_deref().unwrap_or_default(),
            existing.id
        )
    };
    Ok(Err(Error::Conflict(conflict)))
}

#[derive(FromRow)]
struct JobRow {
    id: String,
    owner: String,
    idempotency_key: Option<String>,
    request: String,
    customer_id: String,
    status: String,
    attempts: i64,
    max_attempts: i64,
    lease_token: i64,
    progress: f64,
    result: Option<String>,
    error: Option<String>,
    created_at: i64,
    started_at: Option<i64>,
    finished_at: Option<i64>,
}

impl From<JobRow> for Job {
    fn from(row: JobRow) -> Self {
        Job {
            id: row.id,
            owner: row.owner,
            idempotency_key: row.idempotency_key,
            request: row.request,
            customer_id: row.customer_id,
            // The CHECK constraint admits only the known statuses.
            status: JobStatus::parse(&row.status).unwrap_or(JobStatus::Failed),
            attempts: row.attempts as u32,
            max_attempts: row.max_attempts as u32,
            progress: row.progress,
            result: row.result,
            error: row.error,
            created_at: row.created_at,
            started_at: row.started_at,
            finished_at: row.finished_at,
        }
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// Ends the attempts of dead workers: back to the queue while attempts remain,
/// failed with the reason otherwise.
const REAP: &str = "UPDATE jobs SET
    status = CASE WHEN attempts < max_attempts THEN 'queued' ELSE 'failed' END,
    error = CASE WHEN attempts < max_attempts THEN ?1
                 ELSE 'gave up after ' || attempts || ' attempts: ' || ?1 END,
    finished_at = CASE WHEN attempts < max_attempts THEN NULL ELSE ?2 END,
    available_at = ?3,
    lease_owner = NULL,
    lease_expires_at = NULL
    WHERE status = 'processing' AND lease_expires_at < ?2";

impl JobStore for SqliteJobStore {
    async fn submit(&self, job: NewJob) -> Result<Submitted> {
        self.write(move |connection| {
            Box::pin(async move { insert_or_match(connection, &job).await })
        })
        .await?
    }

    async fn get(&self, id: &str) -> Result<Option<Job>> {
        let row: Option<JobRow> = sqlx::query_as("SELECT * FROM jobs WHERE id = ?1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(Job::from))
    }

    async fn claim(&self, worker: &str, limit: u32, lease: Duration) -> Result<Vec<Claimed>> {
        let worker = worker.to_string();
        self.write(move |connection| {
            Box::pin(async move {
                let now = now_millis();
                let rows: Vec<JobRow> = sqlx::query_as(
                    "UPDATE jobs SET status = 'processing', attempts = attempts + 1, lease_token = lease_token + 1,
                         lease_owner = ?1, lease_expires_at = ?2, started_at = COALESCE(started_at, ?3), progress = 0
                     WHERE id IN (SELECT id FROM jobs WHERE status = 'queued' AND available_at <= ?3
                                  ORDER BY created_at, id LIMIT ?4)
                     RETURNING *",
                )
                .bind(&worker)
                .bind(now + millis(lease))
                .bind(now)
                .bind(i64::from(limit))
                .fetch_all(&mut *connection)
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|row| {
                        let lease_token = row.lease_token;
                        Claimed {
                            job: row.into(),
                            lease_token,
                        }
                    })
                    .collect())
            })
        })
        .await
    }

    async fn heartbeat(&self, claim: &Claimed, progress: f64, lease: Duration) -> Result<bool> {
        let (id, token) = (claim.job.id.clone(), claim.lease_token);
        self.write(move |connection| {
            Box::pin(async move {
                let updated = sqlx::query(
                    "UPDATE jobs SET lease_expires_at = ?1, progress = ?2
                     WHERE id = ?3 AND lease_token = ?4 AND status = 'processing'",
                )
                .bind(now_millis() + millis(lease))
                .bind(progress.clamp(0.0, 1.0))
                .bind(&id)
                .bind(token)
                .execute(&mut *connection)
                .await?;
                Ok(updated.rows_affected() == 1)
            })
        })
        .await
    }

    async fn complete(&self, claim: &Claimed, result_json: &str) -> Result<bool> {
        let (id, token, result) = (
            claim.job.id.clone(),
            claim.lease_token,
            result_json.to_string(),
        );
        self.write(move |connection| {
            Box::pin(async move {
                let updated = sqlx::query(
                    "UPDATE jobs SET status = 'completed', result = ?1, error = NULL, progress = 1, finished_at = ?2,
                         lease_owner = NULL, lease_expires_at = NULL
                     WHERE id = ?3 AND lease_token = ?4 AND status = 'processing'",
                )
                .bind(&result)
                .bind(now_millis())
                .bind(&id)
                .bind(token)
                .execute(&mut *connection)
                .await?;
                Ok(updated.rows_affected() == 1)
            })
        })
        .await
    }

    async fn fail(&self, claim: &Claimed, failure: Failure) -> Result<bool> {
        let now = now_millis();
        let out_of_attempts = claim.job.attempts >= claim.job.max_attempts;
        let (status, error, available_at, finished_at) = match failure {
            Failure::Retryable {
                reason,
                retry_after,
            } if !out_of_attempts => (JobStatus::Queued, reason, now + millis(retry_after), None),
            Failure::Retryable { reason, .. } => (
                JobStatus::Failed,
                format!("gave up after {} attempts: {reason}", claim.job.attempts),
                now,
                Some(now),
            ),
            Failure::Permanent { reason } => (JobStatus::Failed, reason, now, Some(now)),
        };
        let (id, token) = (claim.job.id.clone(), claim.lease_token);
        self.write(move |connection| {
            Box::pin(async move {
                let updated = sqlx::query(
                    "UPDATE jobs SET status = ?1, error = ?2, available_at = ?3, finished_at = ?4,
                         lease_owner = NULL, lease_expires_at = NULL
                     WHERE id = ?5 AND lease_token = ?6 AND status = 'processing'",
                )
                .bind(status.as_str())
                .bind(&error)
                .bind(available_at)
                .bind(finished_at)
                .bind(&id)
                .bind(token)
                .execute(&mut *connection)
                .await?;
                Ok(updated.rows_affected() == 1)
            })
        })
        .await
    }

    async fn reap_expired_leases(&self) -> Result<u64> {
        self.write(|connection| {
            Box::pin(async move {
                let now = now_millis();
                let updated = sqlx::query(REAP)
                    .bind("the worker stopped renewing its lease (it crashed or was cut off)")
                    .bind(now)
                    .bind(now)
                    .execute(&mut *connection)
                    .await?;
                Ok(updated.rows_affected())
            })
        })
        .await
    }
}
