//! The job store on SQLite in WAL mode: one file. Every write (submissions,
//! claims, heartbeats, results, the reaper) goes through one writer task that
//! commits them in groups: writers never wait on each other's locks, and many
//! concurrent writes share one `fsync`. Reads use a pool of their own.

use std::sync::Arc;
use std::time::Duration;

use sqlx::SqliteConnection;
use sqlx::sqlite::{SqlitePool, SqlitePoolOptions};
use tokio::sync::{Notify, mpsc, oneshot};

use crate::changes::Changes;
use crate::clock::{Clock, millis};
use crate::job::{Cancellation, Claimed, Job, NewJob, QueueDepth, Submitted};
use crate::rows::{
    JobRow, PRUNE_STATEMENT_LIMIT, QUEUE_DEPTH, REAPED, failed_attempt, node_id_live,
};
use crate::{ClaimRequest, Error, Failure, JobStore, Result};
use statements::{CLAIM, REAP};
use writer::{OpFuture, Queued, WriteFault, group_commit, operation};

mod insert;
mod statements;
mod writer;

type SqliteQuery =
    sqlx::query::Query<'static, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'static>>;

/// Writes waiting for the writer before senders wait too.
const WRITE_QUEUE: usize = 2048;

#[derive(Clone)]
pub struct SqliteJobStore {
    /// Reads.
    pool: SqlitePool,
    /// The writer's own connection, durable at every commit.
    writer_pool: SqlitePool,
    writes: mpsc::Sender<Queued>,
    /// The writer's last failure, until a group commits again.
    fault: WriteFault,
    clock: Clock,
    jobs_signal: Arc<Notify>,
    changes: Changes,
}

impl SqliteJobStore {
    /// The store on `readers` (a pool already at this release's schema), with a
    /// writer connection of its own to the same file.
    pub(crate) async fn with_readers(readers: SqlitePool, clock: Clock) -> Result<Self> {
        let writer_pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with((*readers.connect_options()).clone())
            .await?;
        let (writes, receiver) = mpsc::channel(WRITE_QUEUE);
        let fault = WriteFault::default();
        tokio::spawn(group_commit(
            writer_pool.clone(),
            clock.clone(),
            fault.clone(),
            receiver,
        ));
        Ok(SqliteJobStore {
            pool: readers,
            writer_pool,
            writes,
            fault,
            clock,
            jobs_signal: Arc::default(),
            changes: Changes::default(),
        })
    }

    /// Runs `write` in the writer's next group and returns its outcome once committed.
    async fn write<T, F>(&self, write: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection, i64) -> OpFuture<'c, T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let clock = self.clock.clone();
        self.writes
            .send(Queued::Write(operation(
                move |connection: &mut SqliteConnection| write(connection, clock.now()),
                reply,
            )))
            .await
            .map_err(|_| Error::Closed)?;
        answer.await.map_err(|_| Error::Closed)?
    }

    /// Runs a fenced update of one attempt: true when the lease was still held
    /// (and the job's watchers are told).
    async fn update_attempt<B>(&self, claim: &Claimed, sql: &'static str, bind: B) -> Result<bool>
    where
        B: FnOnce(SqliteQuery, i64) -> SqliteQuery + Send + 'static,
    {
        let (seq, token) = (claim.job.seq, claim.lease_token);
        let updated = self
            .write(move |connection, now| {
                Box::pin(async move {
                    let query = bind(sqlx::query(sql).bind(seq).bind(token), now);
                    let updated = query.execute(&mut *connection).await?;
                    Ok(updated.rows_affected() == 1)
                })
            })
            .await?;
        if updated {
            self.changes.push([seq]);
        }
        Ok(updated)
    }
}

impl JobStore for SqliteJobStore {
    async fn submit(&self, job: NewJob) -> Result<Submitted> {
        let (reply, answer) = oneshot::channel();
        self.writes
            .send(Queued::Submission(job, reply))
            .await
            .map_err(|_| Error::Closed)?;
        let submitted = answer.await.map_err(|_| Error::Closed)??;
        if submitted.created {
            self.jobs_signal.notify_waiters();
        }
        Ok(submitted)
    }

    async fn get(&self, owner: &str, id: &str) -> Result<Option<Job>> {
        let row: Option<JobRow> = sqlx::query_as("SELECT * FROM jobs WHERE owner = $1 AND id = $2")
            .bind(owner)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(Job::from))
    }

    async fn claim(&self, request: ClaimRequest<'_>) -> Result<Vec<Claimed>> {
        let worker = request.worker.to_string();
        let owned = format!("{:?}", request.partitions);
        let (limit, lease, steal_after) = (request.limit, request.lease, request.steal_after);
        let max_running = request.max_running_per_owner.map(i64::from);
        let claimed = self
            .write(move |connection, now| {
                Box::pin(async move {
                    let mut claimed = Vec::new();
                    // Owned partitions first; then jobs that have waited for another owner.
                    for (any_partition, ready_by) in
                        [(false, now), (true, now - millis(steal_after))]
                    {
                        let wanted = i64::from(limit) - claimed.len() as i64;
                        if wanted <= 0 {
                            break;
                        }
                        let rows: Vec<JobRow> = sqlx::query_as(CLAIM)
                            .bind(&worker)
                            .bind(now + millis(lease))
                            .bind(now)
                            .bind(ready_by)
                            .bind(any_partition)
                            .bind(&owned)
                            .bind(wanted)
                            .bind(max_running)
                            .fetch_all(&mut *connection)
                            .await?;
                        claimed.extend(rows.into_iter().map(JobRow::into_claimed));
                    }
                    Ok(claimed)
                })
            })
            .await?;
        self.changes.push(claimed.iter().map(|claim| claim.job.seq));
        Ok(claimed)
    }

    async fn heartbeat(&self, claim: &Claimed, progress: f64, lease: Duration) -> Result<bool> {
        let progress = progress.clamp(0.0, 1.0);
        self.update_attempt(
            claim,
            "UPDATE jobs SET lease_expires_at = $3, progress = $4
             WHERE seq = $1 AND lease_token = $2 AND status = 'processing'",
            move |query, now| query.bind(now + millis(lease)).bind(progress),
        )
        .await
    }

    async fn complete(&self, claim: &Claimed, result_json: &str) -> Result<bool> {
        let result = result_json.to_string();
        // A job reaped while its store was unreachable, and not claimed since (the
        // token is unchanged), still takes the result of the attempt that ran.
        self.update_attempt(
            claim,
            "UPDATE jobs SET status = 'completed', result = $3, error = NULL, progress = 1, finished_at = $4,
                 lease_owner = NULL, lease_expires_at = NULL
             WHERE seq = $1 AND lease_token = $2 AND status IN ('processing', 'queued')",
            move |query, now| query.bind(result).bind(now),
        )
        .await
    }

    async fn fail(&self, claim: &Claimed, failure: Failure) -> Result<bool> {
        let failed = failed_attempt(claim, failure);
        self.update_attempt(
            claim,
            "UPDATE jobs SET status = $3, error = $4, available_at = $5 + $6,
                 finished_at = CASE WHEN $7 THEN $5 END, lease_owner = NULL, lease_expires_at = NULL
             WHERE seq = $1 AND lease_token = $2 AND status = 'processing'",
            move |query, now| {
                query
                    .bind(failed.status.as_str())
                    .bind(failed.error)
                    .bind(now)
                    .bind(failed.retry_delay_millis)
                    .bind(failed.finished)
            },
        )
        .await
    }

    async fn release(&self, claim: &Claimed) -> Result<bool> {
        let released = self
            .update_attempt(
                claim,
                "UPDATE jobs SET status = 'queued', attempts = attempts - 1, available_at = $3,
                     progress = 0, lease_owner = NULL, lease_expires_at = NULL
                 WHERE seq = $1 AND lease_token = $2 AND status = 'processing'",
                |query, now| query.bind(now),
            )
            .await?;
        if released {
            self.jobs_signal.notify_waiters();
        }
        Ok(released)
    }

    async fn cancel(&self, owner: &str, id: &str) -> Result<Cancellation> {
        let (owner, id) = (owner.to_string(), id.to_string());
        let cancellation = self.write(move |connection, now| {
            Box::pin(async move {
                let cancelled: Option<JobRow> = sqlx::query_as(
                    "UPDATE jobs SET status = 'cancelled', finished_at = $3, lease_owner = NULL, lease_expires_at = NULL
                     WHERE owner = $1 AND id = $2 AND status IN ('queued', 'processing') RETURNING *",
                )
                .bind(&owner)
                .bind(&id)
                .bind(now)
                .fetch_optional(&mut *connection)
                .await?;
                if let Some(row) = cancelled {
                    return Ok(Cancellation::Cancelled(row.into()));
                }
                let existing: Option<JobRow> =
                    sqlx::query_as("SELECT * FROM jobs WHERE owner = $1 AND id = $2")
                        .bind(&owner)
                        .bind(&id)
                        .fetch_optional(&mut *connection)
                        .await?;
                Ok(existing.map_or(Cancellation::NotFound, |row| Cancellation::Finished(row.into())))
            })
        })
        .await?;
        if let Cancellation::Cancelled(job) = &cancellation {
            self.changes.push_cancelled(job.seq);
        }
        Ok(cancellation)
    }

    /// Reads, and writes too when the last write failed: a store whose disk
    /// is full is not ready, and is ready again once a write commits.
    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        if self.fault.current().is_none() {
            return Ok(());
        }
        // Rewriting the header's user version writes a page, as any write
        // does, and changes nothing. The value is the file's own integer.
        self.write(|connection, _| {
            Box::pin(async move {
                let (version,): (i64,) = sqlx::query_as("PRAGMA user_version")
                    .fetch_one(&mut *connection)
                    .await?;
                sqlx::query(&format!("PRAGMA user_version = {version}"))
                    .execute(&mut *connection)
                    .await?;
                Ok(())
            })
        })
        .await
    }

    async fn queue_depth(&self) -> Result<QueueDepth> {
        let rows = sqlx::query_as(QUEUE_DEPTH).fetch_all(&self.pool).await?;
        Ok(QueueDepth::from_rows(rows))
    }

    async fn rename_owner(&self, from: &str, to: &str) -> Result<u64> {
        let (from, to) = (from.to_string(), to.to_string());
        self.write(move |connection, _| {
            Box::pin(async move {
                let renamed = sqlx::query("UPDATE jobs SET owner = $2 WHERE owner = $1")
                    .bind(&from)
                    .bind(&to)
                    .execute(&mut *connection)
                    .await?;
                Ok(renamed.rows_affected())
            })
        })
        .await
    }

    async fn reap_expired_leases(&self) -> Result<u64> {
        let reaped: Vec<(i64,)> = self
            .write(|connection, now| {
                Box::pin(async move {
                    sqlx::query_as(REAP)
                        .bind(REAPED)
                        .bind(now)
                        .fetch_all(&mut *connection)
                        .await
                })
            })
            .await?;
        self.changes.push(reaped.iter().map(|&(seq,)| seq));
        Ok(reaped.len() as u64)
    }

    async fn prune_finished(&self, age: Duration, batch: u32) -> Result<u64> {
        let mut pruned = 0;
        while pruned < u64::from(batch) {
            let wanted = (u64::from(batch) - pruned).min(u64::from(PRUNE_STATEMENT_LIMIT));
            let deleted = self
                .write(move |connection, now| {
                    Box::pin(async move {
                        let deleted = sqlx::query(
                            "DELETE FROM jobs WHERE seq IN (SELECT seq FROM jobs
                                 WHERE finished_at IS NOT NULL AND finished_at < $1 LIMIT $2)",
                        )
                        .bind(now - millis(age))
                        .bind(wanted as i64)
                        .execute(&mut *connection)
                        .await?;
                        Ok(deleted.rows_affected())
                    })
                })
                .await?;
            pruned += deleted;
            if deleted < wanted {
                break;
            }
        }
        Ok(pruned)
    }

    async fn register_node(&self, node_id: &str, liveness: Duration) -> Result<()> {
        let node_id = node_id.to_string();
        self.write(move |connection, now| {
            Box::pin(async move {
                let registered = sqlx::query(
                    "INSERT INTO nodes (id, started_at, heartbeat_at) VALUES ($1, $2, $2)
                     ON CONFLICT (id) DO UPDATE SET started_at = $2, heartbeat_at = $2
                     WHERE nodes.heartbeat_at < $3",
                )
                .bind(&node_id)
                .bind(now)
                .bind(now - millis(liveness))
                .execute(&mut *connection)
                .await?;
                if registered.rows_affected() == 1 {
                    return Ok(Ok(()));
                }
                let (heartbeat_at,): (i64,) =
                    sqlx::query_as("SELECT heartbeat_at FROM nodes WHERE id = $1")
                        .bind(&node_id)
                        .fetch_one(&mut *connection)
                        .await?;
                Ok(Err(node_id_live(&node_id, now, heartbeat_at, liveness)))
            })
        })
        .await?
    }

    async fn node_heartbeat(&self, node_id: &str, liveness: Duration) -> Result<Vec<String>> {
        let node_id = node_id.to_string();
        self.write(move |connection, now| {
            Box::pin(async move {
                sqlx::query(
                    "INSERT INTO nodes (id, started_at, heartbeat_at) VALUES ($1, $2, $2)
                     ON CONFLICT (id) DO UPDATE SET heartbeat_at = $2",
                )
                .bind(&node_id)
                .bind(now)
                .execute(&mut *connection)
                .await?;
                let live: Vec<(String,)> =
                    sqlx::query_as("SELECT id FROM nodes WHERE heartbeat_at >= $1 ORDER BY id")
                        .bind(now - millis(liveness))
                        .fetch_all(&mut *connection)
                        .await?;
                Ok(live.into_iter().map(|(id,)| id).collect())
            })
        })
        .await
    }

    async fn deregister_node(&self, node_id: &str) -> Result<()> {
        let node_id = node_id.to_string();
        self.write(move |connection, _| {
            Box::pin(async move {
                sqlx::query("DELETE FROM nodes WHERE id = $1")
                    .bind(&node_id)
                    .execute(&mut *connection)
                    .await?;
                Ok(())
            })
        })
        .await
    }

    fn jobs_signal(&self) -> &Notify {
        &self.jobs_signal
    }

    fn changes(&self) -> &Changes {
        &self.changes
    }

    async fn close(&self) {
        self.writer_pool.close().await;
        self.pool.close().await;
    }
}
