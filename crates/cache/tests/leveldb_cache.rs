//! The cache on a real LevelDB directory.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use api::wire::{Asset, Portfolio};
use cache::{PortfolioCache, Source};

const HOUR: Duration = Duration::from_secs(3600);

fn portfolio(customer_id: &str, version: i64) -> Portfolio {
    Portfolio {
        customer_id: customer_id.into(),
        name: "Ada Lovelace".into(),
        base_currency: "EUR".into(),
        as_of: "2026-11-27".into(),
        version,
        change_position: 0,
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
    cache
        .get_or_fetch(customer, || async {
            Ok::<_, cache::Error>(portfolio(customer, version))
        })
        .await
        .unwrap()
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
async fn an_expired_entry_is_fetched_again_and_eviction_forces_a_fetch() {
    let directory = tempfile::tempdir().unwrap();
    let expiring =
        PortfolioCache::open(&directory.path().join("expiring"), Duration::ZERO).unwrap();
    fetch(&expiring, "C-2", 1).await;
    assert_eq!(
        fetch(&expiring, "C-2", 2).await,
        (portfolio("C-2", 2), Source::Upstream)
    );
    assert_eq!(expiring.stats().expired.load(Ordering::Relaxed), 2);

    let lasting = PortfolioCache::open(&directory.path().join("lasting"), HOUR).unwrap();
    fetch(&lasting, "C-3", 1).await;
    lasting.evict("C-3").await.unwrap();
    assert_eq!(
        fetch(&lasting, "C-3", 2).await,
        (portfolio("C-3", 2), Source::Upstream)
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
                .get_or_fetch("C-4", || async {
                    calls.fetch_add(1, Ordering::SeqCst);
                    // A slow legacy service: the other 19 arrive while this call is out.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    Ok::<_, cache::Error>(portfolio("C-4", 1))
                })
                .await
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
