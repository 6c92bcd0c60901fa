//! The job store a URL names: SQLite on one machine, PostgreSQL for a cluster.

use std::time::Duration;

use database::{Location, Pool, SchemaPolicy};
use tokio::sync::Notify;

use crate::Changes;

use crate::job::{Cancellation, Claimed, Job, NewJob, QueueDepth, Submitted};
use crate::{
    ClaimRequest, Clock, Failure, JobStore, PostgresJobStore, Result, STORE, SqliteJobStore,
};

#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub policy: SchemaPolicy,
    pub clock: Clock,
    /// Connections to PostgreSQL (SQLite has one writer and a few readers).
    pub max_connections: u32,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            policy: SchemaPolicy::Require,
            clock: Clock::system(),
            max_connections: 8,
        }
    }
}

#[derive(Clone)]
pub enum AnyJobStore {
    Sqlite(SqliteJobStore),
    Postgres(PostgresJobStore),
}

/// Readers of an SQLite job store; its writes have a connection of their own.
const SQLITE_READERS: u32 = 4;

impl AnyJobStore {
    /// Opens the store at `location`, its schema checked (or, with
    /// [`SchemaPolicy::Apply`], migrated) like every store's.
    pub async fn open(location: &Location, options: StoreOptions) -> Result<Self> {
        let connections = match location {
            Location::Sqlite(_) => SQLITE_READERS,
            Location::Postgres(_) => options.max_connections,
        };
        let pool = Pool::open(location, &STORE, options.policy, connections).await?;
        Ok(match pool {
            Pool::Sqlite(readers) => {
                AnyJobStore::Sqlite(SqliteJobStore::with_readers(readers, options.clock).await?)
            }
            Pool::Postgres(pool) => {
                AnyJobStore::Postgres(PostgresJobStore::with_pool(pool, options.clock).await)
            }
        })
    }
}

/// Calls the same method on whichever backend this is.
macro_rules! delegate {
    ($self:ident, $store:ident => $call:expr) => {
        match $self {
            AnyJobStore::Sqlite($store) => $call,
            AnyJobStore::Postgres($store) => $call,
        }
    };
}

impl JobStore for AnyJobStore {
    async fn submit(&self, job: NewJob) -> Result<Submitted> {
        delegate!(self, store => store.submit(job).await)
    }

    async fn get(&self, owner: &str, id: &str) -> Result<Option<Job>> {
        delegate!(self, store => store.get(owner, id).await)
    }

    async fn claim(&self, request: ClaimRequest<'_>) -> Result<Vec<Claimed>> {
        delegate!(self, store => store.claim(request).await)
    }

    async fn heartbeat(&self, claim: &Claimed, progress: f64, lease: Duration) -> Result<bool> {
        delegate!(self, store => store.heartbeat(claim, progress, lease).await)
    }

    async fn complete(&self, claim: &Claimed, result_json: &str) -> Result<bool> {
        delegate!(self, store => store.complete(claim, result_json).await)
    }

    async fn fail(&self, claim: &Claimed, failure: Failure) -> Result<bool> {
        delegate!(self, store => store.fail(claim, failure).await)
    }

    async fn release(&self, claim: &Claimed) -> Result<bool> {
        delegate!(self, store => store.release(claim).await)
    }

    async fn cancel(&self, owner: &str, id: &str) -> Result<Cancellation> {
        delegate!(self, store => store.cancel(owner, id).await)
    }

    async fn ping(&self) -> Result<()> {
        delegate!(self, store => store.ping().await)
    }

    async fn queue_depth(&self) -> Result<QueueDepth> {
        delegate!(self, store => store.queue_depth().await)
    }

    async fn rename_owner(&self, from: &str, to: &str) -> Result<u64> {
        delegate!(self, store => store.rename_owner(from, to).await)
    }

    async fn reap_expired_leases(&self) -> Result<u64> {
        delegate!(self, store => store.reap_expired_leases().await)
    }

    async fn prune_finished(&self, age: Duration, batch: u32) -> Result<u64> {
        delegate!(self, store => store.prune_finished(age, batch).await)
    }

    async fn register_node(&self, node_id: &str, liveness: Duration) -> Result<()> {
        delegate!(self, store => store.register_node(node_id, liveness).await)
    }

    async fn node_heartbeat(&self, node_id: &str, liveness: Duration) -> Result<Vec<String>> {
        delegate!(self, store => store.node_heartbeat(node_id, liveness).await)
    }

    async fn deregister_node(&self, node_id: &str) -> Result<()> {
        delegate!(self, store => store.deregister_node(node_id).await)
    }

    fn jobs_signal(&self) -> &Notify {
        delegate!(self, store => store.jobs_signal())
    }

    fn changes(&self) -> &Changes {
        delegate!(self, store => store.changes())
    }

    async fn close(&self) {
        delegate!(self, store => store.close().await)
    }
}
