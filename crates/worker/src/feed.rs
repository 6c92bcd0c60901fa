//! Follows the data service's change feed: evicts the customers that changed
//! from the node's cache, with the cursor stored in the same atomic write, and
//! drops the whole cache when the node has missed changes (its cursor is older
//! than the oldest change kept, or the change log is another one).
//!
//! While the feed cannot be reached the cache's TTL bounds how stale an entry
//! can be.

use std::sync::Arc;
use std::time::Duration;

use cache::{FeedMark, PortfolioCache};
use tokio_util::sync::CancellationToken;
use wire::ChangeFeed;

use crate::client::DataClient;

/// How long one feed request waits for a change.
const WAIT: Duration = Duration::from_secs(20);
/// Changes per page.
const PAGE: u32 = 1_000;
/// First pause after a failed feed request; it doubles up to ten seconds.
const FIRST_PAUSE: Duration = Duration::from_millis(250);

/// Applies what the node missed while it was away, before it takes jobs:
/// every page, without waiting for new changes.
pub async fn catch_up(cache: &PortfolioCache, client: &DataClient) -> Result<(), String> {
    while step(cache, client, Duration::ZERO).await? == PAGE as usize {}
    Ok(())
}

/// Follows the feed until `stop`.
pub async fn follow_changes(
    cache: Arc<PortfolioCache>,
    client: DataClient,
    stop: CancellationToken,
) {
    let mut failures = database::FailureBackoff::new(FIRST_PAUSE);
    loop {
        let outcome = tokio::select! {
            () = stop.cancelled() => return,
            outcome = step(&cache, &client, WAIT) => outcome,
        };
        let pause = match outcome {
            Ok(_) => {
                if failures.count > 0 {
                    tracing::info!("following the change feed again");
                }
                failures.succeeded();
                continue;
            }
            Err(error) => {
                let pause = failures.failed();
                if failures.count == 1 || failures.count.is_multiple_of(10) {
                    tracing::warn!(%error, failures = failures.count, "cannot follow the change feed; cached portfolios stay until their TTL");
                }
                pause
            }
        };
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(pause) => {}
        }
    }
}

/// One feed request, waiting up to `wait` for a change, and its application.
/// Returns the number of changes applied.
async fn step(
    cache: &PortfolioCache,
    client: &DataClient,
    wait: Duration,
) -> Result<usize, String> {
    let mark = cache.feed_mark().await;
    // A node that has never followed this feed only needs to know where it
    // ends: it asks without waiting.
    let wait = if mark.feed_id.is_empty() {
        Duration::ZERO
    } else {
        wait
    };
    let page = client
        .changes(mark.cursor, wait, PAGE)
        .await
        .map_err(|error| error.to_string())?;
    let changes = page.changes.len();
    apply(cache, &mark, page)
        .await
        .map_err(|error| error.to_string())?;
    Ok(changes)
}

async fn apply(
    cache: &PortfolioCache,
    mark: &FeedMark,
    page: ChangeFeed,
) -> Result<(), cache::Error> {
    let first_contact = mark.feed_id.is_empty();
    if first_contact
        || mark.feed_id != page.feed_id
        || mark.cursor < page.oldest_cursor
        || mark.cursor > page.latest
    {
        if first_contact {
            tracing::info!(
                position = page.latest,
                "following the data service's change feed"
            );
        } else {
            tracing::warn!(
                cursor = mark.cursor,
                oldest_kept = page.oldest_cursor,
                latest = page.latest,
                same_log = mark.feed_id == page.feed_id,
                "this node missed changes (it was away longer than the data service keeps them, or the change log is another one): dropping the whole cache"
            );
        }
        return cache.start_epoch(&page.feed_id, page.latest).await;
    }
    let Some(through) = page.changes.last().map(|change| change.position) else {
        return Ok(());
    };
    let evicted = cache
        .apply_changes(&page.feed_id, &page.changes, through)
        .await?;
    let now = jobstore::now_millis();
    for (change, evicted) in page.changes.iter().zip(evicted) {
        tracing::debug!(
            customer = %change.customer_id,
            position = change.position,
            version = change.version,
            lag_ms = now - change.changed_at_ms,
            evicted,
            "change applied"
        );
    }
    Ok(())
}
