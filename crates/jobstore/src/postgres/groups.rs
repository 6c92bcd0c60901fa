//! Group commit on PostgreSQL: concurrent writes of one kind queue up, and each
//! group becomes one statement in its own transaction, so that a node pays one
//! commit (one WAL flush) for many jobs. Submissions are one multi-row insert
//! with the group's one NOTIFY; results are one multi-row update, fenced by
//! each attempt's lease token.

use std::future::Future;
use std::marker::PhantomData;

use sqlx::postgres::PgPool;
use tokio::sync::{mpsc, oneshot};

use crate::changes::JOBS_CHANNEL;
use crate::clock::Clock;
use crate::job::{Job, NewJob, Submitted, partition_of};
use crate::rows::{
    AdoptedKey, JobRow, adopt_keys, collided, inserted_outcomes, resolve_collisions,
};
use crate::{Error, Result, RolledBack};

/// Largest number of writes in one statement.
const MAX_GROUP: usize = 512;
/// Writes waiting for the committer before senders wait too.
const QUEUE: usize = 4096;

/// One field of every item, as an array to bind for `UNNEST`.
fn column<I, T>(items: &[&I], field: impl Fn(&I) -> T) -> Vec<T> {
    items.iter().map(|item| field(item)).collect()
}

/// A kind of write that many callers' items share one statement for.
pub trait Batch: Send + 'static {
    type Item: Send + Sync + 'static;
    type Output: Send + 'static;
    /// Writes the group; one outcome per item, in order.
    fn write(
        pool: &PgPool,
        fixed_now: Option<i64>,
        items: &[&Self::Item],
    ) -> impl Future<Output = sqlx::Result<Vec<Result<Self::Output>>>> + Send;
}

type Queued<B> = (
    <B as Batch>::Item,
    oneshot::Sender<Result<<B as Batch>::Output>>,
);

/// The sending side of one kind's committer.
pub struct Group<B: Batch> {
    sender: mpsc::Sender<Queued<B>>,
    kind: PhantomData<B>,
}

impl<B: Batch> Clone for Group<B> {
    fn clone(&self) -> Self {
        Group {
            sender: self.sender.clone(),
            kind: PhantomData,
        }
    }
}

impl<B: Batch> Group<B> {
    /// Starts the committer; it ends when every sender is gone.
    pub fn start(pool: PgPool, clock: Clock) -> Self {
        let (sender, receiver) = mpsc::channel(QUEUE);
        tokio::spawn(commit::<B>(pool, clock, receiver));
        Group {
            sender,
            kind: PhantomData,
        }
    }

    /// Queues `item` and returns its outcome once its group is committed.
    pub async fn run(&self, item: B::Item) -> Result<B::Output> {
        let (reply, answer) = oneshot::channel();
        self.sender
            .send((item, reply))
            .await
            .map_err(|_| Error::Closed)?;
        answer.await.map_err(|_| Error::Closed)?
    }
}

async fn commit<B: Batch>(pool: PgPool, clock: Clock, mut receiver: mpsc::Receiver<Queued<B>>) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    while receiver.recv_many(&mut group, MAX_GROUP).await > 0 {
        let items: Vec<&B::Item> = group.iter().map(|(item, _)| item).collect();
        match B::write(&pool, clock.fixed(), &items).await {
            Ok(outcomes) => {
                for ((_, reply), outcome) in group.drain(..).zip(outcomes) {
                    let _ = reply.send(outcome);
                }
            }
            Err(error) => {
                tracing::error!(%error, count = group.len(), "job store writes could not be committed");
                let rolled_back = RolledBack::of(&error);
                for (_, reply) in group.drain(..) {
                    let _ = reply.send(Err(rolled_back.error()));
                }
            }
        }
    }
}

/// Submissions: one statement inserts the group and sends its one NOTIFY when
/// it inserted anything (four round trips become one); only when some
/// submissions collided, a read of the rows they hit follows.
pub struct Submissions;

impl Batch for Submissions {
    type Item = NewJob;
    type Output = Submitted;

    async fn write(
        pool: &PgPool,
        fixed_now: Option<i64>,
        jobs: &[&NewJob],
    ) -> sqlx::Result<Vec<Result<Submitted>>> {
        // Each owner's virtual clock moves by the group's cost in one upsert
        // (in owner order, so that groups lock tenants in the same order), and
        // its jobs take consecutive slots of that span, in submission order.
        let inserted: Vec<JobRow> = sqlx::query_as(
            "WITH submitted AS (
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                                      $6::bigint[], $7::bigint[], $10::bigint[], $11::text[])
                      WITH ORDINALITY AS submitted (id, owner, idempotency_key, request, customer_id,
                                                    partition_id, max_attempts, cost, traceparent,
                                                    position)),
             demand AS (SELECT owner, sum(cost)::bigint AS total FROM submitted GROUP BY owner),
             reserved AS (
                 INSERT INTO tenants AS tenant (owner, virtual_ms)
                 SELECT owner, clock_ms($8) + total FROM demand ORDER BY owner
                 ON CONFLICT (owner) DO UPDATE
                     SET virtual_ms = GREATEST(tenant.virtual_ms, clock_ms($8))
                                      + (EXCLUDED.virtual_ms - clock_ms($8))
                 RETURNING owner, virtual_ms),
             slotted AS (
                 SELECT submitted.*, reserved.virtual_ms - demand.total - submitted.cost
                        + (sum(submitted.cost) OVER (PARTITION BY submitted.owner
                                                     ORDER BY submitted.position))::bigint AS fair_at
                 FROM submitted JOIN demand USING (owner) JOIN reserved USING (owner)),
             inserted AS (
                 INSERT INTO jobs (id, owner, idempotency_key, request, customer_id, partition_id,
                                   status, max_attempts, created_at, available_at, fair_at,
                                   traceparent)
                 SELECT id, owner, idempotency_key, request, customer_id, partition_id, 'queued',
                        max_attempts, clock_ms($8), clock_ms($8), fair_at, traceparent
                 FROM slotted ORDER BY position
                 ON CONFLICT DO NOTHING
                 RETURNING *)
         -- The uncorrelated subquery runs once, and only if a row was inserted.
         SELECT inserted.*, (SELECT 1 FROM pg_notify($9, '')) AS woken FROM inserted",
        )
        .bind(column(jobs, |job| job.id.clone()))
        .bind(column(jobs, |job| job.owner.clone()))
        .bind(column(jobs, |job| job.idempotency_key.clone()))
        .bind(column(jobs, |job| job.request.clone()))
        .bind(column(jobs, |job| job.customer_id.clone()))
        .bind(column(jobs, |job| {
            i64::from(partition_of(&job.customer_id))
        }))
        .bind(column(jobs, |job| i64::from(job.max_attempts)))
        .bind(fixed_now)
        .bind(JOBS_CHANNEL)
        .bind(column(jobs, |job| i64::from(job.cost_ms)))
        .bind(column(jobs, |job| job.traceparent.clone()))
        .fetch_all(pool)
        .await?;
        let outcomes = inserted_outcomes(jobs, inserted.into_iter().map(Job::from).collect());
        let collided = collided(jobs, &outcomes);
        if collided.is_empty() {
            return Ok(resolve_collisions(jobs, outcomes, &[]));
        }
        let existing: Vec<JobRow> = sqlx::query_as(
            // Two index lookups: an OR of them would need a bitmap or a whole-table scan.
            "SELECT * FROM jobs WHERE (owner, id) IN (SELECT * FROM UNNEST($1::text[], $2::text[]))
             UNION ALL
             SELECT * FROM jobs
             WHERE (owner, idempotency_key) IN (SELECT * FROM UNNEST($1::text[], $3::text[]))",
        )
        .bind(column(&collided, |job| job.owner.clone()))
        .bind(column(&collided, |job| job.id.clone()))
        .bind(column(&collided, |job| job.idempotency_key.clone()))
        .fetch_all(pool)
        .await?;
        let existing: Vec<Job> = existing.into_iter().map(Job::from).collect();
        let mut outcomes = resolve_collisions(jobs, outcomes, &existing);
        let adopted = adopt_keys(jobs, &mut outcomes);
        if !adopted.is_empty() {
            record_adopted_keys(pool, &adopted).await;
        }
        Ok(outcomes)
    }
}

/// Records the keys that replays brought on their jobs. The submissions are
/// committed already: a failure here is logged, never reported as theirs. A
/// key that another job of the tenant took meanwhile stays with that job.
async fn record_adopted_keys(pool: &PgPool, adopted: &[AdoptedKey]) {
    let adopted: Vec<&AdoptedKey> = adopted.iter().collect();
    let recorded = sqlx::query(
        "UPDATE jobs SET idempotency_key = adopted.key
         FROM UNNEST($1::text[], $2::text[], $3::text[]) AS adopted (owner, id, key)
         WHERE jobs.owner = adopted.owner AND jobs.id = adopted.id AND jobs.idempotency_key IS NULL
           AND NOT EXISTS (SELECT 1 FROM jobs AS other
                           WHERE other.owner = adopted.owner AND other.idempotency_key = adopted.key)",
    )
    .bind(column(&adopted, |key| key.owner.clone()))
    .bind(column(&adopted, |key| key.id.clone()))
    .bind(column(&adopted, |key| key.key.clone()))
    .execute(pool)
    .await;
    if let Err(error) = recorded {
        tracing::warn!(%error, count = adopted.len(), "could not record the idempotency keys of replays");
    }
}

/// A finished attempt's result.
pub struct Completion {
    pub seq: i64,
    pub lease_token: i64,
    pub result: String,
}

/// Results: one update for the group; each is stored only under its own lease
/// token. A job reaped while the database was unreachable, and not claimed since
/// (the token is unchanged), still takes the result of the attempt that ran.
pub struct Completions;

impl Batch for Completions {
    type Item = Completion;
    /// Whether the result was stored.
    type Output = bool;

    async fn write(
        pool: &PgPool,
        fixed_now: Option<i64>,
        completions: &[&Completion],
    ) -> sqlx::Result<Vec<Result<bool>>> {
        let stored: Vec<(i64, i64)> = sqlx::query_as(
            "UPDATE jobs SET status = 'completed', result = done.result, error = NULL, progress = 1,
                 finished_at = clock_ms($4), lease_owner = NULL, lease_expires_at = NULL
             FROM UNNEST($1::bigint[], $2::bigint[], $3::text[]) AS done (seq, lease_token, result)
             WHERE jobs.seq = done.seq AND jobs.lease_token = done.lease_token
               AND jobs.status IN ('processing', 'queued')
             RETURNING jobs.seq, jobs.lease_token",
        )
        .bind(column(completions, |done| done.seq))
        .bind(column(completions, |done| done.lease_token))
        .bind(column(completions, |done| done.result.clone()))
        .bind(fixed_now)
        .fetch_all(pool)
        .await?;
        Ok(completions
            .iter()
            .map(|done| {
                Ok(stored
                    .iter()
                    .any(|(seq, token)| *seq == done.seq && *token == done.lease_token))
            })
            .collect())
    }
}
