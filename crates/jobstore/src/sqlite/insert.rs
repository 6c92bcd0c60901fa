//! A group's submissions on SQLite: one multi-row insert, with each owner's
//! fair-queue slots reserved in the same transaction.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use sqlx::SqliteConnection;

use crate::Result;
use crate::job::{Job, NewJob, Submitted, partition_of};
use crate::rows::{
    AdoptedKey, JobRow, adopt_keys, collided, inserted_outcomes, resolve_collisions,
};

/// A submission as the group's JSON array carries it.
#[derive(Serialize)]
struct Row<'a> {
    id: &'a str,
    owner: &'a str,
    key: Option<&'a str>,
    request: &'a str,
    customer: &'a str,
    partition: u32,
    max_attempts: u32,
    fair_at: i64,
    traceparent: Option<&'a str>,
}

/// A group's submissions: one multi-row insert, one lookup of the rows it
/// collided with. One JSON array bound per statement, not one statement per job.
pub(super) async fn insert_group(
    connection: &mut SqliteConnection,
    jobs: &[&NewJob],
    now: i64,
) -> sqlx::Result<Vec<Result<Submitted>>> {
    let mut slots = reserve_slots(connection, jobs, now).await?;
    let rows: Vec<Row> = jobs
        .iter()
        .map(|job| Row {
            id: &job.id,
            owner: &job.owner,
            key: job.idempotency_key.as_deref(),
            request: &job.request,
            customer: &job.customer_id,
            partition: partition_of(&job.customer_id),
            max_attempts: job.max_attempts,
            fair_at: slots.next_for(job),
            traceparent: job.traceparent.as_deref(),
        })
        .collect();
    let rows = json(&rows)?;
    // `WHERE true` tells SQLite's parser that ON CONFLICT is not a join's ON.
    let inserted: Vec<JobRow> = sqlx::query_as(
        "INSERT INTO jobs (id, owner, idempotency_key, request, customer_id, partition_id, status,
                           max_attempts, created_at, available_at, fair_at, traceparent)
         SELECT value ->> 'id', value ->> 'owner', value ->> 'key', value ->> 'request',
                value ->> 'customer', value ->> 'partition', 'queued', value ->> 'max_attempts', $2, $2,
                value ->> 'fair_at', value ->> 'traceparent'
         FROM json_each($1) WHERE true
         ON CONFLICT DO NOTHING RETURNING *",
    )
    .bind(&rows)
    .bind(now)
    .fetch_all(&mut *connection)
    .await?;
    let outcomes = inserted_outcomes(jobs, inserted.into_iter().map(Job::from).collect());
    let collided = collided(jobs, &outcomes);
    if collided.is_empty() {
        return Ok(resolve_collisions(jobs, outcomes, &[]));
    }
    let ids: Vec<(&str, &str)> = collided
        .iter()
        .map(|job| (job.owner.as_str(), job.id.as_str()))
        .collect();
    let keys: Vec<(&str, Option<&str>)> = collided
        .iter()
        .map(|job| (job.owner.as_str(), job.idempotency_key.as_deref()))
        .collect();
    let existing: Vec<JobRow> = sqlx::query_as(
        "SELECT * FROM jobs WHERE (owner, id) IN (SELECT value ->> 0, value ->> 1 FROM json_each($1))
            OR (owner, idempotency_key) IN (SELECT value ->> 0, value ->> 1 FROM json_each($2))",
    )
    .bind(json(&ids)?)
    .bind(json(&keys)?)
    .fetch_all(&mut *connection)
    .await?;
    let existing: Vec<Job> = existing.into_iter().map(Job::from).collect();
    let mut outcomes = resolve_collisions(jobs, outcomes, &existing);
    let adopted = adopt_keys(jobs, &mut outcomes);
    // In the group's transaction: the keys are recorded with it or not at all,
    // and the writer is the only one, so no other job takes a key meanwhile.
    for AdoptedKey { owner, id, key } in &adopted {
        sqlx::query(
            "UPDATE jobs SET idempotency_key = $3
             WHERE owner = $1 AND id = $2 AND idempotency_key IS NULL
               AND NOT EXISTS (SELECT 1 FROM jobs WHERE owner = $1 AND idempotency_key = $3)",
        )
        .bind(owner)
        .bind(id)
        .bind(key)
        .execute(&mut *connection)
        .await?;
    }
    Ok(outcomes)
}

/// Where each owner's next job starts in virtual time.
struct Slots(HashMap<String, i64>);

impl Slots {
    /// The job's slot: its owner's next start, which moves on by the job's cost.
    fn next_for(&mut self, job: &NewJob) -> i64 {
        let next = self.0.entry(job.owner.clone()).or_default();
        let start = *next;
        *next += i64::from(job.cost_ms);
        start
    }
}

/// Moves each owner's virtual clock by the group's cost (from the later of
/// now and the end of its last slot) and returns where its first job starts.
async fn reserve_slots(
    connection: &mut SqliteConnection,
    jobs: &[&NewJob],
    now: i64,
) -> sqlx::Result<Slots> {
    let mut demand: BTreeMap<&str, i64> = BTreeMap::new();
    for job in jobs {
        *demand.entry(job.owner.as_str()).or_default() += i64::from(job.cost_ms);
    }
    let mut starts = HashMap::with_capacity(demand.len());
    for (owner, total) in demand {
        let (end,): (i64,) = sqlx::query_as(
            "INSERT INTO tenants (owner, virtual_ms) VALUES ($1, $2 + $3)
             ON CONFLICT (owner) DO UPDATE SET virtual_ms = MAX(virtual_ms, $2) + $3
             RETURNING virtual_ms",
        )
        .bind(owner)
        .bind(now)
        .bind(total)
        .fetch_one(&mut *connection)
        .await?;
        starts.insert(owner.to_string(), end - total);
    }
    Ok(Slots(starts))
}

fn json<T: Serialize>(value: &T) -> sqlx::Result<String> {
    serde_json::to_string(value).map_err(|error| sqlx::Error::Encode(error.into()))
}
