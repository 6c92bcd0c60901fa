//! The single writer: writes queue up, and each group runs in one transaction
//! (its submissions as one multi-row insert) and is answered once it is committed.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};

use sqlx::{SqliteConnection, SqlitePool};
use tokio::sync::{mpsc, oneshot};

use super::insert::insert_group;
use crate::clock::Clock;
use crate::job::{NewJob, Submitted};
use crate::{Error, Result, RolledBack};

/// Largest number of writes committed in one transaction.
const MAX_GROUP: usize = 512;

pub type OpFuture<'c, T> = Pin<Box<dyn Future<Output = sqlx::Result<T>> + Send + 'c>>;

/// A queued write, whatever its output.
pub type Write = Box<dyn Pending>;

pub trait Pending: Send {
    /// Runs the write inside the group's transaction, keeping its output.
    fn run<'c>(&'c mut self, connection: &'c mut SqliteConnection) -> OpFuture<'c, ()>;
    /// Hands the output over: the group is committed.
    fn answer(self: Box<Self>);
    /// The group was rolled back: nothing of this write happened.
    fn abort(self: Box<Self>, rolled_back: &RolledBack);
}

struct Operation<T, F> {
    write: Option<F>,
    output: Option<T>,
    reply: oneshot::Sender<Result<T>>,
}

pub fn operation<T, F>(write: F, reply: oneshot::Sender<Result<T>>) -> Write
where
    T: Send + 'static,
    F: for<'c> FnOnce(&'c mut SqliteConnection) -> OpFuture<'c, T> + Send + 'static,
{
    Box::new(Operation {
        write: Some(write),
        output: None,
        reply,
    })
}

impl<T, F> Pending for Operation<T, F>
where
    T: Send + 'static,
    F: for<'c> FnOnce(&'c mut SqliteConnection) -> OpFuture<'c, T> + Send + 'static,
{
    fn run<'c>(&'c mut self, connection: &'c mut SqliteConnection) -> OpFuture<'c, ()> {
        Box::pin(async move {
            if let Some(write) = self.write.take() {
                self.output = Some(write(connection).await?);
            }
            Ok(())
        })
    }

    fn answer(self: Box<Self>) {
        let outcome = self
            .output
            .ok_or_else(|| Error::Commit("the write did not run".into()));
        let _ = self.reply.send(outcome);
    }

    fn abort(self: Box<Self>, rolled_back: &RolledBack) {
        let _ = self.reply.send(Err(rolled_back.error()));
    }
}

/// What the writer is asked to do: submissions, written together by one
/// multi-row insert per group, and any other write.
pub enum Queued {
    Submission(NewJob, oneshot::Sender<Result<Submitted>>),
    Write(Write),
}

/// Whether the writer's last group failed, and why: readiness reports it
/// until a group commits again.
#[derive(Clone, Default)]
pub struct WriteFault(Arc<Mutex<Option<RolledBack>>>);

impl WriteFault {
    pub fn current(&self) -> Option<RolledBack> {
        self.lock().clone()
    }

    fn set(&self, fault: Option<RolledBack>) {
        *self.lock() = fault;
    }

    fn lock(&self) -> MutexGuard<'_, Option<RolledBack>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

pub async fn group_commit(
    pool: SqlitePool,
    clock: Clock,
    fault: WriteFault,
    mut receiver: mpsc::Receiver<Queued>,
) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    while receiver.recv_many(&mut group, MAX_GROUP).await > 0 {
        let mut submissions = Vec::new();
        let mut writes = Vec::new();
        for queued in group.drain(..) {
            match queued {
                Queued::Submission(job, reply) => submissions.push((job, reply)),
                Queued::Write(write) => writes.push(write),
            }
        }
        let jobs: Vec<&NewJob> = submissions.iter().map(|(job, _)| job).collect();
        match commit_group(&pool, clock.now(), &jobs, &mut writes).await {
            Ok(outcomes) => {
                fault.set(None);
                for ((_, reply), outcome) in submissions.into_iter().zip(outcomes) {
                    let _ = reply.send(outcome);
                }
                writes.into_iter().for_each(|write| write.answer());
            }
            Err(error) => {
                let count = submissions.len() + writes.len();
                tracing::error!(%error, count, "job store writes could not be committed");
                let rolled_back = RolledBack::of(&error);
                for (_, reply) in submissions {
                    let _ = reply.send(Err(rolled_back.error()));
                }
                writes
                    .into_iter()
                    .for_each(|write| write.abort(&rolled_back));
                fault.set(Some(rolled_back));
            }
        }
    }
}

async fn commit_group(
    pool: &SqlitePool,
    now: i64,
    jobs: &[&NewJob],
    writes: &mut [Write],
) -> sqlx::Result<Vec<Result<Submitted>>> {
    let mut connection = pool.acquire().await?;
    let committed = commit_on(&mut connection, now, jobs, writes).await;
    if committed.is_err() {
        // A commit that failed (on a full disk, say) can leave the connection
        // inside its transaction, refusing every later one: a new connection
        // takes its place, so the writer recovers once the fault passes.
        connection.close_on_drop();
    }
    committed
}

async fn commit_on(
    connection: &mut SqliteConnection,
    now: i64,
    jobs: &[&NewJob],
    writes: &mut [Write],
) -> sqlx::Result<Vec<Result<Submitted>>> {
    // IMMEDIATE takes the write lock up front: a deferred transaction that reads
    // first fails at once (SQLITE_BUSY_SNAPSHOT) if another process writes meanwhile.
    let mut transaction = sqlx::Connection::begin_with(connection, "BEGIN IMMEDIATE").await?;
    let outcomes = if jobs.is_empty() {
        Vec::new()
    } else {
        insert_group(&mut transaction, jobs, now).await?
    };
    for write in writes.iter_mut() {
        write.run(&mut transaction).await?;
    }
    transaction.commit().await?;
    Ok(outcomes)
}
