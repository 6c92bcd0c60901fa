//! The single writer: writes queue up, and each group runs in one transaction
//! and is answered once it is committed.

use std::future::Future;
use std::pin::Pin;

use sqlx::{SqliteConnection, SqlitePool};
use tokio::sync::{mpsc, oneshot};

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

pub async fn group_commit(pool: SqlitePool, mut receiver: mpsc::Receiver<Write>) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    while receiver.recv_many(&mut group, MAX_GROUP).await > 0 {
        match commit_group(&pool, &mut group).await {
            Ok(()) => group.drain(..).for_each(|write| write.answer()),
            Err(error) => {
                tracing::error!(%error, count = group.len(), "job store writes could not be committed");
                let reason = error.to_string();
                group.drain(..).for_each(|write| write.abort(&reason));
            }
        }
    }
}

async fn commit_group(pool: &SqlitePool, group: &mut [Write]) -> sqlx::Result<()> {
    // IMMEDIATE takes the write lock up front: a deferred transaction that reads
    // first fails at once (SQLITE_BUSY_SNAPSHOT) if another process writes meanwhile.
    let mut transaction = pool.begin_with("BEGIN IMMEDIATE").await?;
    for write in group.iter_mut() {
        write.run(&mut transaction).await?;
    }
    transaction.commit().await
}
