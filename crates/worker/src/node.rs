//! The node's loops: membership (which partitions are ours), claiming for the
//! free actors, the lease reaper with retention, the change feed, and shutdown
//! with a deadline.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use jobstore::{ClaimRequest, JobStore};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::Node;
use crate::job::run_under_lease;
use crate::placement::owned_partitions;

/// Finished jobs deleted per retention round.
const PRUNE_BATCH: u32 = 10_000;
/// How often finished jobs past their retention are looked for.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// The partitions this node owns, as of its last membership heartbeat.
type Placement = Arc<RwLock<Arc<Vec<u32>>>>;

/// Runs the node until `shutdown`: registers it (refused while its id is live
/// elsewhere), claims and runs jobs, and on shutdown leaves the registry at once,
/// gives running jobs `shutdown_grace` to finish, then stops and releases the rest.
pub async fn run<S: JobStore>(
    node: Node<S>,
    shutdown: CancellationToken,
) -> Result<(), jobstore::Error> {
    let node = Arc::new(node);
    let config = &node.config;
    let previous_registration_alive_for = if config.reclaim_node_id {
        Duration::ZERO
    } else {
        config.lease
    };
    node.store
        .register_node(&config.node_id, previous_registration_alive_for)
        .await?;
    let live = node
        .store
        .node_heartbeat(&config.node_id, config.lease)
        .await?;
    let placement: Placement = Arc::new(RwLock::new(Arc::new(owned_partitions(
        &live,
        &config.node_id,
    ))));
    tracing::info!(node = %config.node_id, live = ?live, "worker node registered");

    // Evict what changed while the node was away before its first job reads
    // the cache; a data service that does not answer leaves the TTL in charge.
    match tokio::time::timeout(
        config.catch_up_limit,
        crate::feed::catch_up(&node.cache, &node.client),
    )
    .await
    {
        Ok(Ok(())) => {}
        Ok(Err(error)) => {
            tracing::warn!(%error, "cannot reach the change feed at start; cached portfolios stay until their TTL")
        }
        Err(_) => tracing::warn!(
            limit_seconds = config.catch_up_limit.as_secs(),
            "the change feed is slow to answer; taking jobs while catching up"
        ),
    }

    let mut housekeeping = JoinSet::new();
    housekeeping.spawn(membership_loop(
        node.clone(),
        placement.clone(),
        shutdown.clone(),
    ));
    housekeeping.spawn(reaper_loop(node.clone(), shutdown.clone()));
    housekeeping.spawn(crate::feed::follow_changes(
        node.cache.clone(),
        node.client.clone(),
        shutdown.clone(),
    ));
    claim_loop(node.clone(), placement, shutdown).await;
    while housekeeping.join_next().await.is_some() {}
    Ok(())
}

/// Claims for every free actor at once; sleeps until a commit, a free actor or
/// the idle poll when there is nothing to claim.
async fn claim_loop<S: JobStore>(
    node: Arc<Node<S>>,
    placement: Placement,
    shutdown: CancellationToken,
) {
    let config = &node.config;
    let actors = Arc::new(Semaphore::new(config.actors));
    let abandon = CancellationToken::new();
    let mut running = JoinSet::new();
    let mut store_failures = database::FailureBackoff::new(config.idle_poll);
    loop {
        let first = tokio::select! {
            () = shutdown.cancelled() => break,
            permit = actors.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let mut free = vec![first];
        while let Ok(permit) = actors.clone().try_acquire_owned() {
            free.push(permit);
        }
        // Listen before claiming, so a commit between the two is not missed.
        let woken = node.store.jobs_signal().notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        let owned = placement
            .read()
            .map(|owned| owned.clone())
            .unwrap_or_default();
        let request = ClaimRequest {
            worker: &config.node_id,
            limit: free.len() as u32,
            lease: config.lease,
            partitions: &owned,
            steal_after: config.steal_after,
            max_running_per_owner: config.max_running_per_tenant,
        };
        let claimed = match node.store.claim(request).await {
            Ok(claimed) => {
                store_failures.succeeded();
                claimed
            }
            Err(error) => {
                let pause = store_failures.failed();
                tracing::error!(%error, node = %config.node_id, failures = store_failures.count, pause_ms = pause.as_millis() as u64, "cannot claim jobs; pausing before the next claim");
                drop(free);
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(pause) => {}
                }
                continue;
            }
        };
        let idle = claimed.is_empty();
        for claim in claimed {
            let permit = free.pop();
            let node = node.clone();
            let abandon = abandon.clone();
            running.spawn(async move {
                run_under_lease(&node, claim, abandon).await;
                drop(permit);
            });
        }
        drop(free);
        while running.try_join_next().is_some() {}
        if idle {
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = &mut woken => {}
                () = tokio::time::sleep(config.idle_poll) => {}
            }
        }
    }
    if !running.is_empty() {
        tracing::info!(running = running.len(), grace = ?config.shutdown_grace, "waiting for running jobs before stopping");
        let drained = tokio::time::timeout(config.shutdown_grace, async {
            while running.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                running = running.len(),
                "grace period over: stopping running jobs and giving them back to the queue"
            );
            abandon.cancel();
            while running.join_next().await.is_some() {}
        }
    }
}

/// Renews the node's registration and recomputes its partitions; leaves the
/// registry on shutdown so that the partitions move at once.
async fn membership_loop<S: JobStore>(
    node: Arc<Node<S>>,
    placement: Placement,
    shutdown: CancellationToken,
) {
    let config = &node.config;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(config.heartbeat) => {}
        }
        match node
            .store
            .node_heartbeat(&config.node_id, config.lease)
            .await
        {
            Ok(live) => {
                let owned = owned_partitions(&live, &config.node_id);
                if let Ok(mut current) = placement.write()
                    && current.as_slice() != owned.as_slice()
                {
                    tracing::info!(node = %config.node_id, live = ?live, partitions = owned.len(), "partitions moved");
                    *current = Arc::new(owned);
                }
            }
            Err(error) => {
                tracing::error!(%error, "node heartbeat failed; will retry")
            }
        }
    }
    if let Err(error) = node.store.deregister_node(&config.node_id).await {
        tracing::warn!(%error, "could not leave the node registry; the entry expires by itself");
    }
}

/// Returns the jobs of dead workers to the queue and prunes old finished jobs.
/// Every node runs one; both statements are safe to run on several nodes at once.
async fn reaper_loop<S: JobStore>(node: Arc<Node<S>>, shutdown: CancellationToken) {
    let period = node.config.lease / 3;
    let mut since_prune = PRUNE_EVERY;
    loop {
        match node.store.reap_expired_leases().await {
            Ok(0) => {}
            Ok(count) => {
                tracing::warn!(count, "returned jobs of unresponsive workers to the queue")
            }
            Err(error) => tracing::error!(%error, "lease reaper could not reach the job store"),
        }
        if since_prune >= PRUNE_EVERY {
            since_prune = Duration::ZERO;
            match node
                .store
                .prune_finished(node.config.retention, PRUNE_BATCH)
                .await
            {
                Ok(0) => {}
                Ok(count) => tracing::info!(count, "pruned finished jobs past their retention"),
                Err(error) => tracing::error!(%error, "could not prune finished jobs"),
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(period) => since_prune += period,
        }
    }
}
