//! The job store on PostgreSQL, shared by every gateway and worker node of a
//! cluster. Submissions and results are group-committed (`groups.rs`): one
//! statement and one commit for many jobs, and one NOTIFY per group of
//! submissions (NOTIFY serialises commits, so it is never sent per job; job
//! changes are announced after their commit, `announce.rs`). Claims
//! take `FOR UPDATE SKIP LOCKED`, so racing nodes never wait on, or share, a job.
//! Every time is the database's clock, which all nodes agree on.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgPool;
use tokio::sync::{Notify, oneshot};
use tokio::task::AbortHandle;

use crate::announce::Announcer;
use crate::changes::{CHANGES_CHANNEL, Changes, JOBS_CHANNEL};
use crate::clock::{Clock, millis};
use crate::cursor::{ClaimCursors, HEAD, Position};
use crate::job::{Cancellation, Claimed, Job, NewJob, QueueDepth, Submitted};
use crate::rows::{
    JobRow, PRUNE_STATEMENT_LIMIT, QUEUE_DEPTH, REAPED, failed_attempt, node_id_live,
};
use crate::{ClaimRequest, Failure, JobStore, Result};

mod claims;
mod groups;

use claims::CLAIMS;
use groups::{Completion, Completions, Group, Submissions};

#[derive(Clone)]
pub struct PostgresJobStore {
    pool: PgPool,
    submissions: Group<Submissions>,
    completions: Group<Completions>,
    clock: Clock,
    jobs_signal: Arc<Notify>,
    changes: Changes,
    announcer: Announcer,
    listener: AbortHandle,
    cursors: Arc<ClaimCursors>,
}

impl PostgresJobStore {
    /// The store on `pool` (already at this release's schema): starts the group
    /// committers and listens for other processes' commits.
    pub(crate) async fn with_pool(pool: PgPool, clock: Clock) -> Self {
        let submissions = Group::start(pool.clone(), clock.clone());
        let announcer = Announcer::start(pool.clone());
        let completions = Group::start(pool.clone(), clock.clone());
        let jobs_signal = Arc::new(Notify::new());
        let changes = Changes::default();
        let (listening, listening_now) = oneshot::channel();
        let (wake, push) = (jobs_signal.clone(), changes.clone());
        let listener = tokio::spawn(database::notifications::listen(
            pool.clone(),
            &[JOBS_CHANNEL, CHANGES_CHANNEL],
            "job",
            move |notification| match notification {
                Some(changed) if changed.channel() == CHANGES_CHANNEL => {
                    push.push_payload(changed.payload())
                }
                Some(_) => wake.notify_waiters(),
                None => {
                    wake.notify_waiters();
                    push.push_all();
                }
            },
            listening,
        ))
        .abort_handle();
        // Once open returns, no commit goes unnoticed (unless the connection drops).
        if tokio::time::timeout(database::ACQUIRE_TIMEOUT, listening_now)
            .await
            .is_err()
        {
            tracing::warn!("not yet listening for job notifications; claims poll meanwhile");
        }
        PostgresJobStore {
            pool,
            submissions,
            completions,
            clock,
            jobs_signal,
            changes,
            announcer,
            listener,
            cursors: Arc::default(),
        }
    }

    fn fixed_now(&self) -> Option<i64> {
        self.clock.fixed()
    }

    /// Runs a fenced update of one attempt (`$1` seq, `$2` token, `$3` time):
    /// true when the lease was still held (and the change is announced).
    async fn update_attempt<B>(&self, claim: &Claimed, sql: &'static str, bind: B) -> Result<bool>
    where
        B: FnOnce(PgQuery) -> PgQuery,
    {
        let query = sqlx::query(sql)
            .bind(claim.job.seq)
            .bind(claim.lease_token)
            .bind(self.fixed_now());
        let updated = bind(query).execute(&self.pool).await?.rows_affected() == 1;
        if updated {
            self.announcer.changed([claim.job.seq]);
        }
        Ok(updated)
    }

    /// One claim statement (`$1` worker, `$2` lease, `$3` time, `$4` limit,
    /// `$5` running jobs per owner at most, then its filter).
    async fn claim_rows<B>(
        &self,
        sql: &'static str,
        request: &ClaimRequest<'_>,
        wanted: i64,
        bind_filter: B,
    ) -> Result<Vec<JobRow>>
    where
        B: FnOnce(PgQueryAs) -> PgQueryAs,
    {
        let query = sqlx::query_as::<_, JobRow>(sql)
            .bind(request.worker.to_string())
            .bind(millis(request.lease))
            .bind(self.fixed_now())
            .bind(wanted)
            .bind(request.max_running_per_owner.map(i64::from));
        Ok(bind_filter(query).fetch_all(&self.pool).await?)
    }
}

type PgQueryAs = sqlx::query::QueryAs<'static, sqlx::Postgres, JobRow, sqlx::postgres::PgArguments>;
type PgQuery = sqlx::query::Query<'static, sqlx::Postgres, sqlx::postgres::PgArguments>;

impl JobStore for PostgresJobStore {
    async fn submit(&self, job: NewJob) -> Result<Submitted> {
        self.submissions.run(job).await
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
        let owned: Vec<i64> = request.partitions.iter().map(|&p| i64::from(p)).collect();
        let (claim_owned_sql, claim_waiting_sql) =
            CLAIMS[usize::from(request.max_running_per_owner.is_some())];
        let start = self.cursors.start(request.worker);
        let claim_owned = |from: Position, wanted: i64| {
            let owned = owned.clone();
            self.claim_rows(claim_owned_sql, &request, wanted, move |query| {
                query.bind(owned).bind(from.0).bind(from.1)
            })
        };
        let mut rows = claim_owned(start, i64::from(request.limit)).await?;
        let mut last = rows.iter().map(JobRow::queue_position).max();
        // Short from the cursor: a job given back or placed fairly ahead of it
        // may wait behind; look again from the head at once.
        if rows.len() < request.limit as usize && start != HEAD {
            let wanted = i64::from(request.limit) - rows.len() as i64;
            rows.extend(claim_owned(HEAD, wanted).await?);
            last = None;
        }
        let got_all = rows.len() == request.limit as usize;
        self.cursors.record(request.worker, last, got_all);
        let mut claimed: Vec<Claimed> = rows.into_iter().map(JobRow::into_claimed).collect();
        let wanted = i64::from(request.limit) - claimed.len() as i64;
        if wanted > 0 {
            let steal_after = millis(request.steal_after);
            let stolen = self
                .claim_rows(claim_waiting_sql, &request, wanted, |query| {
                    query.bind(steal_after)
                })
                .await?;
            claimed.extend(stolen.into_iter().map(JobRow::into_claimed));
        }
        self.announcer
            .changed(claimed.iter().map(|claim| claim.job.seq));
        Ok(claimed)
    }

    async fn heartbeat(&self, claim: &Claimed, progress: f64, lease: Duration) -> Result<bool> {
        self.update_attempt(
            claim,
            "UPDATE jobs SET lease_expires_at = clock_ms($3) + $4, progress = $5
             WHERE seq = $1 AND lease_token = $2 AND status = 'processing'",
            |query| query.bind(millis(lease)).bind(progress.clamp(0.0, 1.0)),
        )
        .await
    }

    async fn complete(&self, claim: &Claimed, result_json: &str) -> Result<bool> {
        let completion = Completion {
            seq: claim.job.seq,
            lease_token: claim.lease_token,
            result: result_json.to_string(),
        };
        let stored = self.completions.run(completion).await?;
        if stored {
            self.announcer.changed([claim.job.seq]);
        }
        Ok(stored)
    }

    async fn fail(&self, claim: &Claimed, failure: Failure) -> Result<bool> {
        let failed = failed_attempt(claim, failure);
        self.update_attempt(
            claim,
            "UPDATE jobs SET status = $4, error = $5, available_at = clock_ms($3) + $6,
                 finished_at = CASE WHEN $7 THEN clock_ms($3) END,
                 lease_owner = NULL, lease_expires_at = NULL
             WHERE seq = $1 AND lease_token = $2 AND status = 'processing'",
            |query| {
                query
                    .bind(failed.status.as_str())
                    .bind(failed.error)
                    .bind(failed.retry_delay_millis)
                    .bind(failed.finished)
            },
        )
        .await
    }

    async fn release(&self, claim: &Claimed) -> Result<bool> {
        self.update_attempt(
            claim,
            "WITH released AS (
                 UPDATE jobs SET status = 'queued', attempts = attempts - 1, available_at = clock_ms($3),
                     progress = 0, lease_owner = NULL, lease_expires_at = NULL
                 WHERE seq = $1 AND lease_token = $2 AND status = 'processing' RETURNING seq)
             SELECT pg_notify($4, '') FROM released",
            |query| query.bind(JOBS_CHANNEL),
        )
        .await
    }

    async fn cancel(&self, owner: &str, id: &str) -> Result<Cancellation> {
        let cancelled: Option<JobRow> = sqlx::query_as(
            "UPDATE jobs SET status = 'cancelled', finished_at = clock_ms($3),
                 lease_owner = NULL, lease_expires_at = NULL
             WHERE owner = $1 AND id = $2 AND status IN ('queued', 'processing') RETURNING *",
        )
        .bind(owner)
        .bind(id)
        .bind(self.fixed_now())
        .fetch_optional(&self.pool)
        .await?;
        if let Some(row) = cancelled {
            let job = Job::from(row);
            self.announcer.cancelled(job.seq);
            return Ok(Cancellation::Cancelled(job));
        }
        Ok(self
            .get(owner, id)
            .await?
            .map_or(Cancellation::NotFound, Cancellation::Finished))
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn queue_depth(&self) -> Result<QueueDepth> {
        let rows = sqlx::query_as(QUEUE_DEPTH).fetch_all(&self.pool).await?;
        Ok(QueueDepth::from_rows(rows))
    }

    async fn rename_owner(&self, from: &str, to: &str) -> Result<u64> {
        let renamed = sqlx::query("UPDATE jobs SET owner = $2 WHERE owner = $1")
            .bind(from)
            .bind(to)
            .execute(&self.pool)
            .await?;
        Ok(renamed.rows_affected())
    }

    async fn reap_expired_leases(&self) -> Result<u64> {
        // Safe with many nodes reaping at once: a row another reaper has just
        // changed is re-checked against `status = 'processing'` and skipped.
        let reaped: Vec<(i64,)> = sqlx::query_as(
            "UPDATE jobs SET
                 status = CASE WHEN attempts < max_attempts THEN 'queued' ELSE 'failed' END,
                 error = CASE WHEN attempts < max_attempts THEN $1
                              ELSE 'gave up after ' || attempts || ' attempts: ' || $1 END,
                 finished_at = CASE WHEN attempts < max_attempts THEN NULL ELSE clock_ms($2) END,
                 available_at = clock_ms($2), lease_owner = NULL, lease_expires_at = NULL
             WHERE status = 'processing' AND lease_expires_at < clock_ms($2)
             RETURNING seq",
        )
        .bind(REAPED)
        .bind(self.fixed_now())
        .fetch_all(&self.pool)
        .await?;
        self.announcer.changed(reaped.iter().map(|&(seq,)| seq));
        Ok(reaped.len() as u64)
    }

    async fn prune_finished(&self, age: Duration, batch: u32) -> Result<u64> {
        let mut pruned = 0;
        while pruned < u64::from(batch) {
            let wanted = (u64::from(batch) - pruned).min(u64::from(PRUNE_STATEMENT_LIMIT));
            let deleted = sqlx::query(
                "DELETE FROM jobs WHERE seq IN (SELECT seq FROM jobs
                     WHERE finished_at < clock_ms($1) - $2 LIMIT $3 FOR UPDATE SKIP LOCKED)",
            )
            .bind(self.fixed_now())
            .bind(millis(age))
            .bind(wanted as i64)
            .execute(&self.pool)
            .await?
            .rows_affected();
            pruned += deleted;
            if deleted < wanted {
                break;
            }
        }
        Ok(pruned)
    }

    async fn register_node(&self, node_id: &str, liveness: Duration) -> Result<()> {
        let registered = sqlx::query(
            "INSERT INTO nodes (id, started_at, heartbeat_at) VALUES ($1, clock_ms($2), clock_ms($2))
             ON CONFLICT (id) DO UPDATE SET started_at = clock_ms($2), heartbeat_at = clock_ms($2)
             WHERE nodes.heartbeat_at < clock_ms($2) - $3",
        )
        .bind(node_id)
        .bind(self.fixed_now())
        .bind(millis(liveness))
        .execute(&self.pool)
        .await?;
        if registered.rows_affected() == 1 {
            return Ok(());
        }
        let (heartbeat_at, now): (i64, i64) =
            sqlx::query_as("SELECT heartbeat_at, clock_ms($2) FROM nodes WHERE id = $1")
                .bind(node_id)
                .bind(self.fixed_now())
                .fetch_one(&self.pool)
                .await?;
        Err(node_id_live(node_id, now, heartbeat_at, liveness))
    }

    async fn node_heartbeat(&self, node_id: &str, liveness: Duration) -> Result<Vec<String>> {
        let live: Vec<(String,)> = sqlx::query_as(
            "WITH beat AS (
                 INSERT INTO nodes (id, started_at, heartbeat_at) VALUES ($1, clock_ms($2), clock_ms($2))
                 ON CONFLICT (id) DO UPDATE SET heartbeat_at = clock_ms($2) RETURNING id)
             SELECT id FROM nodes WHERE heartbeat_at >= clock_ms($2) - $3
             UNION SELECT id FROM beat ORDER BY id",
        )
        .bind(node_id)
        .bind(self.fixed_now())
        .bind(millis(liveness))
        .fetch_all(&self.pool)
        .await?;
        Ok(live.into_iter().map(|(id,)| id).collect())
    }

    async fn deregister_node(&self, node_id: &str) -> Result<()> {
        sqlx::query("DELETE FROM nodes WHERE id = $1")
            .bind(node_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    fn jobs_signal(&self) -> &Notify {
        &self.jobs_signal
    }

    fn changes(&self) -> &Changes {
        &self.changes
    }

    async fn close(&self) {
        self.listener.abort();
        self.pool.close().await;
    }
}
