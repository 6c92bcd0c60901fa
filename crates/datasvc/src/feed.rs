//! The change feed: the change log read in commit order from a cursor, with a
//! long-poll that answers as soon as a change is committed, and pruning of what
//! is older than the retention.
//!
//! On PostgreSQL a row's place in the feed is given after commit (see the
//! migration): the watcher below gives positions to committed rows whenever a
//! trigger's notification, or its poll, says there are some, and tells the other
//! data services. On SQLite a row's sequence number is its place, and the
//! watcher polls the log's end, since another process's commit sends nothing.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use database::{FailureBackoff, Pool, on_pool};
use sqlx::PgPool;
use tokio::sync::{Notify, oneshot, watch};
use tokio::task::AbortHandle;
use wire::{Change, ChangeFeed};

/// Sent by the change triggers at commit.
const CHANGES_CHANNEL: &str = "datasvc_changes";
/// Sent by a data service that gave positions to committed changes.
const POSITIONS_CHANNEL: &str = "datasvc_positions";
/// Serialises the giving of positions among data services: one at a time, so
/// that positions are committed in the order they are given.
const SEQUENCER_LOCK: i64 = 0x4645_4544_504f_5331;
/// How often the watcher looks without being woken. SQLite commits by another
/// process wake nobody, so this is the feed's latency there; on PostgreSQL it
/// covers notifications lost while their connection was down.
const SQLITE_POLL: Duration = Duration::from_millis(20);
const POSTGRES_POLL: Duration = Duration::from_secs(1);
/// Changes pruned per transaction.
const PRUNE_BATCH: i64 = 1_000;

/// The feed's end as this process last saw it, and the tasks that keep it.
#[derive(Clone)]
pub(crate) struct Feed {
    latest: Arc<watch::Sender<i64>>,
    _watcher: Arc<Watcher>,
}

struct Watcher(Vec<AbortHandle>);

impl Drop for Watcher {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

impl Feed {
    /// Starts watching the log on `pool`; on PostgreSQL, once this returns, no
    /// commit goes unnoticed (unless the notification connection drops).
    pub(crate) async fn start(pool: Pool) -> Feed {
        let latest = Arc::new(watch::Sender::new(0));
        let wake = Arc::new(Notify::new());
        let mut tasks = Vec::new();
        if let Pool::Postgres(postgres) = &pool {
            let (listening, listening_now) = oneshot::channel();
            let woken = wake.clone();
            let listener = tokio::spawn(database::notifications::listen(
                postgres.clone(),
                &[CHANGES_CHANNEL, POSITIONS_CHANNEL],
                "change feed",
                move |_| woken.notify_one(),
                listening,
            ));
            tasks.push(listener.abort_handle());
            if tokio::time::timeout(database::ACQUIRE_TIMEOUT, listening_now)
                .await
                .is_err()
            {
                tracing::warn!("not yet listening for changes; the feed polls meanwhile");
            }
        }
        tasks.push(tokio::spawn(watch_log(pool, latest.clone(), wake)).abort_handle());
        Feed {
            latest,
            _watcher: Arc::new(Watcher(tasks)),
        }
    }

    /// A receiver that has seen the end as it stands: `changed` wakes it when
    /// the end moves.
    pub(crate) fn subscribe(&self) -> watch::Receiver<i64> {
        self.latest.subscribe()
    }
}

/// Keeps `latest` at the log's end: gives positions first on PostgreSQL. Its
/// statements say `/* change feed */`, so that statement counts can leave
/// them out.
async fn watch_log(pool: Pool, latest: Arc<watch::Sender<i64>>, wake: Arc<Notify>) {
    let poll = match pool {
        Pool::Sqlite(_) => SQLITE_POLL,
        Pool::Postgres(_) => POSTGRES_POLL,
    };
    let mut failures = FailureBackoff::new(poll);
    loop {
        // SQLite reads cost a query for nobody when no reader waits.
        let someone_waits = latest.receiver_count() > 0 || matches!(pool, Pool::Postgres(_));
        let pause = if someone_waits {
            match advance(&pool).await {
                Ok(end) => {
                    failures.succeeded();
                    latest.send_if_modified(|seen| std::mem::replace(seen, end) != end);
                    poll
                }
                Err(error) => {
                    let pause = failures.failed();
                    tracing::warn!(%error, pause_ms = pause.as_millis() as u64, "cannot read the change log's end; trying again");
                    pause
                }
            }
        } else {
            poll
        };
        tokio::select! {
            () = wake.notified() => {}
            () = tokio::time::sleep(pause) => {}
        }
    }
}

/// Gives positions to committed changes (PostgreSQL) and returns the log's end.
async fn advance(pool: &Pool) -> Result<i64, sqlx::Error> {
    if let Pool::Postgres(postgres) = pool {
        give_positions(postgres).await?;
    }
    let (end,): (i64,) = on_pool!(pool, pool => sqlx::query_as(END_QUERY).fetch_one(pool).await?);
    Ok(end)
}

/// The last position written, or the pruned mark when every change was pruned.
const END_QUERY: &str = "/* change feed */
    SELECT COALESCE((SELECT MAX(position) FROM changes), (SELECT pruned_through FROM change_feed))";

/// Positions for every committed change without one, in one transaction that
/// holds the sequencer lock until it commits, so a reader never sees a position
/// before a smaller one that is still to commit.
async fn give_positions(pool: &PgPool) -> Result<(), sqlx::Error> {
    let mut transaction = pool.begin().await?;
    sqlx::query("/* change feed */ SELECT pg_advisory_xact_lock($1)")
        .bind(SEQUENCER_LOCK)
        .execute(&mut *transaction)
        .await?;
    let given = sqlx::query(
        "/* change feed */ WITH waiting AS (SELECT seq FROM change_log WHERE position IS NULL ORDER BY seq)
         UPDATE change_log SET position = nextval('change_positions')
         FROM waiting WHERE change_log.seq = waiting.seq",
    )
    .execute(&mut *transaction)
    .await?
    .rows_affected();
    if given > 0 {
        sqlx::query("/* change feed */ SELECT pg_notify($1, '')")
            .bind(POSITIONS_CHANNEL)
            .execute(&mut *transaction)
            .await?;
    }
    transaction.commit().await
}

/// The changes after `after`, at most `limit`, with the log's identity, its
/// oldest full cursor and its end.
pub(crate) async fn read(pool: &Pool, after: i64, limit: i64) -> Result<ChangeFeed, sqlx::Error> {
    // Changes first, then the marks: a prune between the two shows as a cursor
    // too old (the reader starts over), never as changes silently missing.
    let changes: Vec<(i64, String, i64, i64)> = on_pool!(pool, pool => {
        sqlx::query_as(
            "SELECT position, customer_id, version, changed_at_ms FROM changes
             WHERE position > $1 ORDER BY position LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(pool)
        .await?
    });
    let (feed_id, oldest_cursor, end): (String, i64, i64) = on_pool!(pool, pool => {
        sqlx::query_as(
            "SELECT id, pruned_through, COALESCE((SELECT MAX(position) FROM changes), pruned_through)
             FROM change_feed",
        )
        .fetch_one(pool)
        .await?
    });
    let changes: Vec<Change> = changes
        .into_iter()
        .map(|(position, customer_id, version, changed_at_ms)| Change {
            position,
            customer_id,
            version,
            changed_at_ms,
        })
        .collect();
    let latest = changes.last().map_or(end, |last| last.position.max(end));
    Ok(ChangeFeed {
        feed_id,
        changes,
        oldest_cursor,
        latest,
    })
}

/// Deletes the changes written more than `retention` ago, oldest first, and
/// moves the pruned mark with them. Returns how many went.
pub async fn prune(pool: &Pool, retention: Duration) -> Result<u64, sqlx::Error> {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as i64);
    let cutoff = now_ms.saturating_sub(i64::try_from(retention.as_millis()).unwrap_or(i64::MAX));
    let delete = match pool {
        Pool::Sqlite(_) => "DELETE FROM change_log WHERE seq <= $1",
        Pool::Postgres(_) => "DELETE FROM change_log WHERE position <= $1",
    };
    let mut pruned = 0;
    loop {
        let batch = on_pool!(pool, pool => {
            let mut transaction = pool.begin().await?;
            let (through,): (Option<i64>,) = sqlx::query_as(
                "SELECT MAX(position) FROM
                   (SELECT position, changed_at_ms FROM changes ORDER BY position LIMIT $1) oldest
                 WHERE changed_at_ms < $2",
            )
            .bind(PRUNE_BATCH)
            .bind(cutoff)
            .fetch_one(&mut *transaction)
            .await?;
            let Some(through) = through else {
                break;
            };
            let deleted = sqlx::query(delete)
                .bind(through)
                .execute(&mut *transaction)
                .await?
                .rows_affected();
            sqlx::query(
                "UPDATE change_feed SET pruned_through = $1 WHERE pruned_through < $1",
            )
            .bind(through)
            .execute(&mut *transaction)
            .await?;
            transaction.commit().await?;
            deleted
        });
        pruned += batch;
    }
    Ok(pruned)
}
