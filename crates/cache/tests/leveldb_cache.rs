//! The cache on a real LevelDB directory.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cache::{FeedMark, Fetched, Lookup, PortfolioCache, Source};
use wire::{Asset, Change, Portfolio};

const HOUR: Duration = Duration::from_secs(3600);

/// A portfolio as the data service answers it at change position `version`
/// (the tests move both together).
fn portfolio(customer_id: &str, version: i64) -> Portfolio {
    Portfolio {
        customer_id: customer_id.into(),
        name: "Ada Lovelace".into(),
        base_currency: "EUR".into(),
        as_of: "2026-11-27".into(),
        version,
        change_position: version,
        assets: vec![Asset {
            asset_id: 1,
            symbol: "USEQUITY-1".into(),
            asset_class: "us_equity".into(),
            quantity: 2.0,
            price: 50.0,
            market_value: 100.0,
        }],
    }
}

async fn fetch(cache: &PortfolioCache, customer: &str, version: i64) -> (Portfolio, Source) {
    found(
        cache
            .get_or_fetch(
                customer,
                || async {
                    Ok::<_, cache::Error>(Fetched::Portfolio(portfolio(customer, version)))
                },
                |_| false,
            )
            .await
            .unwrap(),
    )
}

fn found(lookup: Lookup) -> (Portfolio, Source) {
    match lookup {
        Lookup::Found(portfolio, source) => (portfolio, source),
        Lookup::Unknown => panic!("the customer is known"),
    }
}

#[tokio::test]
async fn hits_after_a_miss_and_stays_warm_across_a_restart() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("cache");
    let cache = PortfolioCache::open(&path, HOUR).unwrap();
    assert_eq!(
        fetch(&cache, "C-1", 1).await,
        (portfolio("C-1", 1), Source::Upstream)
    );
    assert_eq!(
        fetch(&cache, "C-1", 2).await,
        (portfolio("C-1", 1), Source::Cache)
    );
    cache.close().await.unwrap();
    drop(cache);

    let reopened = PortfolioCache::open(&path, HOUR).unwrap();
    assert_eq!(fetch(&reopened, "C-1", 3).await.1, Source::Cache);
    assert_eq!(reopened.stats().upstream_calls.load(Ordering::Relaxed), 0);
}

#[tokio::test]
async fn an_expired_entry_is_fetched_again() {
    let directory = tempfile::tempdir().unwrap();
    let expiring =
        PortfolioCache::open(&directory.path().join("expiring"), Duration::ZERO).unwrap();
    fetch(&expiring, "C-2", 1).await;
    assert_eq!(
        fetch(&expiring, "C-2", 2).await,
        (portfolio("C-2", 2), Source::Upstream)
    );
    assert_eq!(expiring.stats().expired.load(Ordering::Relaxed), 1);
    assert_eq!(expiring.stats().misses.load(Ordering::Relaxed), 2);
    assert_eq!(expiring.stats().hits.load(Ordering::Relaxed), 0);
}

fn change(customer_id: &str, position: i64) -> Change {
    Change {
        position,
        customer_id: customer_id.into(),
        version: position,
        changed_at_ms: 0,
    }
}

#[tokio::test]
async fn a_change_evicts_entries_read_before_it_and_moves_the_cursor_for_good() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("cache");
    let cache = PortfolioCache::open(&path, HOUR).unwrap();
    cache.start_epoch("feed-a", 10).await.unwrap();
    fetch(&cache, "C-3", 11).await;
    fetch(&cache, "C-4", 13).await;
    // C-3 changed at 12, after its entry was read; C-4's entry already
    // reflects its change at 12; C-9 is not cached.
    let evicted = cache
        .apply_changes(
            "feed-a",
            &[change("C-3", 12), change("C-4", 12), change("C-9", 12)],
            12,
        )
        .await
        .unwrap();
    assert_eq!(evicted, [true, false, false]);
    assert_eq!(
        fetch(&cache, "C-3", 14).await,
        (portfolio("C-3", 14), Source::Upstream)
    );
    assert_eq!(fetch(&cache, "C-4", 15).await.1, Source::Cache);
    cache.close().await.unwrap();
    drop(cache);

    let reopened = PortfolioCache::open(&path, HOUR).unwrap();
    let mark = reopened.feed_mark().await;
    assert_eq!(
        mark,
        FeedMark {
            feed_id: "feed-a".into(),
            cursor: 12,
            floor: 10,
            epoch: 1
        }
    );
    assert_eq!(fetch(&reopened, "C-3", 16).await.1, Source::Cache);
}

#[tokio::test]
async fn a_new_epoch_drops_every_entry_and_refuses_portfolios_read_before_it() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("cache");
    let cache = PortfolioCache::open(&path, HOUR).unwrap();
    for customer in ["C-1", "C-2", "C-3"] {
        fetch(&cache, customer, 5).await;
    }
    cache.start_epoch("feed-b", 20).await.unwrap();
    assert_eq!(fetch(&cache, "C-1", 21).await.1, Source::Upstream);
    // A data service answering from before the epoch's start (a read that
    // was under way): used, never stored.
    assert_eq!(fetch(&cache, "C-2", 19).await.1, Source::Upstream);
    assert_eq!(cache.stats().discarded.load(Ordering::Relaxed), 3);
    assert_eq!(fetch(&cache, "C-2", 22).await.1, Source::Upstream);
    assert_eq!(fetch(&cache, "C-2", 23).await.1, Source::Cache);
    cache.close().await.unwrap();
    drop(cache);

    // The old epoch's entries are deleted at the next open.
    let reopened = PortfolioCache::open(&path, HOUR).unwrap();
    assert_eq!(fetch(&reopened, "C-3", 24).await.1, Source::Upstream);
    assert_eq!(fetch(&reopened, "C-1", 25).await.1, Source::Cache);
    reopened.close().await.unwrap();
    drop(reopened);
    let mut db = rusty_leveldb::DB::open(&path, rusty_leveldb::Options::default()).unwrap();
    let mut entries = db.new_iter().unwrap();
    let mut keys = Vec::new();
    while let Some((key, _)) = rusty_leveldb::LdbIterator::next(&mut entries) {
        keys.push(String::from_utf8(key).unwrap());
    }
    assert!(
        keys.iter()
            .all(|key| key == "v2/feed" || key.starts_with("v2/e1/")),
        "{keys:?}"
    );
    assert_eq!(keys.len(), 4, "{keys:?}");
}

/// A fetch under way while its customer changes has read the old portfolio:
/// it is fetched again, and what is stored is the new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_under_way_when_its_customer_changes_is_not_stored() {
    let directory = tempfile::tempdir().unwrap();
    let cache = Arc::new(PortfolioCache::open(&directory.path().join("cache"), HOUR).unwrap());
    cache.start_epoch("feed-c", 100).await.unwrap();
    let (reached, reached_now) = tokio::sync::oneshot::channel::<()>();
    let reached = Arc::new(tokio::sync::Mutex::new(Some(reached)));
    let released = Arc::new(tokio::sync::Notify::new());
    let calls = Arc::new(AtomicUsize::new(0));
    let fetching = {
        let (cache, reached, released, calls) = (
            cache.clone(),
            reached.clone(),
            released.clone(),
            calls.clone(),
        );
        tokio::spawn(async move {
            cache
                .get_or_fetch(
                    "C-7",
                    || {
                        let (reached, released, calls) =
                            (reached.clone(), released.clone(), calls.clone());
                        async move {
                            let call = calls.fetch_add(1, Ordering::SeqCst);
                            if let Some(reached) = reached.lock().await.take() {
                                // The data service read at 100; the answer is
                                // still on its way when the change arrives.
                                drop(reached);
                                released.notified().await;
                            }
                            Ok::<_, cache::Error>(Fetched::Portfolio(portfolio(
                                "C-7",
                                100 + 2 * call as i64,
                            )))
                        }
                    },
                    |_| false,
                )
                .await
                .map(found)
                .unwrap()
        })
    };
    reached_now.await.unwrap_err();
    cache
        .apply_changes("feed-c", &[change("C-7", 101)], 101)
        .await
        .unwrap();
    released.notify_one();
    let (used, source) = fetching.await.unwrap();
    assert_eq!(source, Source::Upstream);
    assert_eq!(used, portfolio("C-7", 102), "the second fetch is used");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(cache.stats().discarded.load(Ordering::Relaxed), 1);
    assert_eq!(
        fetch(&cache, "C-7", 999).await,
        (portfolio("C-7", 102), Source::Cache),
        "the portfolio read after the change is the one kept"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_misses_make_one_upstream_call() {
    let directory = tempfile::tempdir().unwrap();
    let cache = Arc::new(PortfolioCache::open(&directory.path().join("cache"), HOUR).unwrap());
    let calls = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let (cache, calls) = (cache.clone(), calls.clone());
        tasks.spawn(async move {
            cache
                .get_or_fetch(
                    "C-4",
                    || async {
                        calls.fetch_add(1, Ordering::SeqCst);
                        // A slow legacy service: the other 19 arrive while this call is out.
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        Ok::<_, cache::Error>(Fetched::Portfolio(portfolio("C-4", 1)))
                    },
                    |_| false,
                )
                .await
                .map(found)
                .unwrap()
        });
    }
    let mut sources = Vec::new();
    while let Some(outcome) = tasks.join_next().await {
        let (value, source) = outcome.unwrap();
        assert_eq!(value, portfolio("C-4", 1));
        sources.push(source);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(
        sources
            .iter()
            .filter(|source| **source == Source::Upstream)
            .count(),
        1
    );
}

#[tokio::test]
async fn a_damaged_directory_is_moved_aside_and_rebuilt() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("cache");
    std::fs::create_dir_all(&path).unwrap();
    std::fs::write(path.join("CURRENT"), b"MANIFEST-999999\n").unwrap();
    let cache = PortfolioCache::open(&path, HOUR).unwrap();
    assert_eq!(fetch(&cache, "C-5", 1).await.1, Source::Upstream);
    assert_eq!(fetch(&cache, "C-5", 1).await.1, Source::Cache);
    let set_aside = std::fs::read_dir(directory.path())
        .unwrap()
        .filter_map(|entry| entry.ok())
        .filter(|entry| {
            entry
                .file_name()
                .to_string_lossy()
                .starts_with("cache.damaged-")
        })
        .count();
    assert_eq!(set_aside, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_in_use_is_refused_not_discarded() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("cache");
    let holder = PortfolioCache::open(&path, HOUR).unwrap();
    fetch(&holder, "C-6", 1).await;
    let error = PortfolioCache::open(&path, HOUR)
        .err()
        .expect("a second opener is refused");
    assert!(
        error.to_string().contains("in use by another process"),
        "{error}"
    );
    assert_eq!(
        fetch(&holder, "C-6", 2).await.1,
        Source::Cache,
        "the cache was left alone"
    );
}

#[tokio::test]
async fn results_are_kept_by_digest_across_epochs_and_restarts() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("cache");
    let cache = PortfolioCache::open(&path, HOUR).unwrap();
    let digest = [7u8; 32];
    assert_eq!(cache.result(&digest).await.unwrap(), None);
    cache
        .store_result(&digest, r#"{"median_final":1.5}"#)
        .await
        .unwrap();
    cache.start_epoch("feed-r", 1).await.unwrap();
    assert_eq!(
        cache.result(&digest).await.unwrap().as_deref(),
        Some(r#"{"median_final":1.5}"#),
        "a result names its inputs: a new epoch keeps it"
    );
    assert_eq!(cache.result(&[8u8; 32]).await.unwrap(), None);
    cache.close().await.unwrap();
    drop(cache);
    let reopened = PortfolioCache::open(&path, HOUR).unwrap();
    assert!(reopened.result(&digest).await.unwrap().is_some());
    assert_eq!(reopened.stats().results_reused.load(Ordering::Relaxed), 1);
}

/// The data service down: an expired entry serves (marked stale) for errors
/// the caller says are an outage, never for others, and never once evicted.
#[tokio::test]
async fn an_expired_entry_serves_while_the_data_service_is_down() {
    let directory = tempfile::tempdir().unwrap();
    let cache = PortfolioCache::open(&directory.path().join("cache"), Duration::ZERO).unwrap();
    cache.start_epoch("feed-s", 1).await.unwrap();
    fetch(&cache, "C-1", 2).await;
    let down = || async { Err::<Fetched, _>(cache::Error::Storage("down".into())) };
    let outage = |error: &cache::Error| matches!(error, cache::Error::Storage(_));
    assert_eq!(
        found(cache.get_or_fetch("C-1", down, outage).await.unwrap()),
        (portfolio("C-1", 2), Source::Stale)
    );
    assert!(cache.get_or_fetch("C-1", down, |_| false).await.is_err());
    assert!(
        cache.get_or_fetch("C-2", down, outage).await.is_err(),
        "nothing cached: nothing to serve"
    );
    cache
        .apply_changes("feed-s", &[change("C-1", 3)], 3)
        .await
        .unwrap();
    assert!(
        cache.get_or_fetch("C-1", down, outage).await.is_err(),
        "an entry a change evicted is not served stale"
    );
    assert_eq!(cache.stats().stale_served.load(Ordering::Relaxed), 1);
}

/// "Unknown customer" is remembered briefly, and forgotten when the customer
/// changes (it was created).
#[tokio::test]
async fn an_unknown_customer_is_remembered_until_it_changes() {
    let directory = tempfile::tempdir().unwrap();
    let cache = PortfolioCache::open(&directory.path().join("cache"), HOUR).unwrap();
    cache.start_epoch("feed-u", 1).await.unwrap();
    let calls = AtomicUsize::new(0);
    let unknown = || async {
        calls.fetch_add(1, Ordering::SeqCst);
        Ok::<_, cache::Error>(Fetched::Unknown)
    };
    for _ in 0..5 {
        assert_eq!(
            cache
                .get_or_fetch("C-404", unknown, |_| false)
                .await
                .unwrap(),
            Lookup::Unknown
        );
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let evicted = cache
        .apply_changes("feed-u", &[change("C-404", 2)], 2)
        .await
        .unwrap();
    assert_eq!(evicted, [true]);
    assert_eq!(fetch(&cache, "C-404", 2).await.1, Source::Upstream);
}
