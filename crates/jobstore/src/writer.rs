//! The single writer: writes queue up, and each group runs in one transaction
//! (its submissions as one multi-row insert) and is answered once it is committed.

use std::future::Future;
use std::pin::Pin;

use sqlx::{SqliteConnection, SqlitePool};
use tokio::sync::{mpsc, oneshot};

use crate::clock::Clock;
use crate::job::{NewJob, Submitted};
use crate::sqlite::insert_group;
use crate::{Error, Result};

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
    fn abort(self: Box<Self>, reason: &str);
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

    fn abort(self: Box<Self>, reason: &str) {
        let _ = self.reply.send(Err(Error::Commit(reason.to_string())));
    }
}

/// What the writer is asked to do: submissions, written together by one
/// multi-row insert per group, and any other write.
pub enum Queued {
    Submission(NewJob, oneshot::Sender<Result<Submitted>>),
    Write(Write),
}

pub async fn group_commit(pool: SqlitePool, clock: Clock, mut receiver: mpsc::Receiver<Queued>) {
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
                for ((_, reply), outcome) in submissions.into_iter().zip(outcomes) {
                    let _ = reply.send(outcome);
                }
                writes.into_iter().for_each(|write| write.answer());
            }
            Err(error) => {
                let count = submissions.len() + writes.len();
                tracing::error!(%error, count, "job store writes could not be committed");
                let reason = error.to_string();
                for (_, reply) in submissions {
                    let _ = reply.send(Err(Error::Commit(reason.clone())));
                }
                writes.into_iter().for_each(|write| write.abort(&reason));
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
    // IMMEDIATE takes the write lock up front: a deferred transaction that reads
    // first fails at once (SQLITE_BUSY_SNAPSHOT) if another process writes meanwhile.
    let mut transaction = pool.begin_with("BEGIN IMMEDIATE").await?;
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
