//! How readers are served: a waiting reader answered at the commit, concurrent
//! writers reaching a follower exactly once, bad cursors and strangers refused.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use prost::Message;
use wire::ChangeFeed;

use crate::backends::{Service, on_sqlite};

/// A reader waiting at the end is answered when a change commits, not at the
/// end of its wait.
async fn a_waiting_reader_is_answered_at_the_commit(service: Service) {
    let end = service.feed("after=0").await.latest;
    let waiting = {
        let client = service.client.clone();
        let url = format!("{}/api/changes?after={end}&wait=30", service.base);
        tokio::spawn(async move {
            let response = client
                .get(url)
                .header("accept", wire::PROTOBUF)
                .send()
                .await
                .unwrap();
            (
                Instant::now(),
                ChangeFeed::decode(response.bytes().await.unwrap()).unwrap(),
            )
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "nothing changed yet");
    service
        .other
        .execute("UPDATE customers SET base_currency = 'CHF' WHERE id = 'C-000003'")
        .await;
    let committed = Instant::now();
    let (answered, feed) = waiting.await.unwrap();
    assert_eq!(feed.changes.len(), 1);
    assert_eq!(feed.changes[0].customer_id, "C-000003");
    let latency = answered.duration_since(committed);
    assert!(
        latency < Duration::from_secs(2),
        "answered {latency:?} after the commit"
    );

    // Nothing to say: the wait ends with no changes and the same end.
    let started = Instant::now();
    let quiet = service.feed(&format!("after={}&wait=1", feed.latest)).await;
    assert!(quiet.changes.is_empty());
    assert_eq!(quiet.latest, feed.latest);
    assert!(started.elapsed() >= Duration::from_millis(900));
}

/// Writers committing at once, in transactions of several changes: a reader
/// following the feed in small pages sees every change exactly once, in
/// increasing positions, even though the writers' commits interleave.
async fn concurrent_writers_reach_a_follower_exactly_once(service: Service) {
    const WRITERS: usize = 6;
    const TRANSACTIONS: usize = 25;
    let start = service.feed("after=0").await.latest;
    let service = std::sync::Arc::new(service);
    let follower = {
        let service = service.clone();
        tokio::spawn(async move {
            let mut cursor = start;
            let mut seen = Vec::new();
            while seen.len() < WRITERS * TRANSACTIONS * 2 {
                let page = service
                    .feed(&format!("after={cursor}&wait=10&limit=7"))
                    .await;
                assert!(!page.changes.is_empty(), "the feed went quiet at {cursor}");
                for change in page.changes {
                    assert!(change.position > cursor);
                    cursor = change.position;
                    seen.push((change.customer_id, change.version));
                }
            }
            seen
        })
    };
    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        let service = service.clone();
        writers.push(tokio::spawn(async move {
            for round in 0..TRANSACTIONS {
                // Two customers per transaction, in an order that keeps writers
                // from waiting on each other's locks in a cycle.
                let a = 1 + (writer * TRANSACTIONS + round) % 50;
                let b = 1 + (a + 17) % 50;
                let (low, high) = (a.min(b), a.max(b));
                service
                    .other
                    .execute(&format!(
                        "BEGIN;
                         UPDATE customers SET name = name || '.' WHERE id = 'C-{low:06}';
                         UPDATE customers SET name = name || '.' WHERE id = 'C-{high:06}';
                         PAUSE;
                         COMMIT;"
                    ))
                    .await;
            }
        }));
    }
    for writer in writers {
        writer.await.unwrap();
    }
    let seen = tokio::time::timeout(Duration::from_secs(60), follower)
        .await
        .expect("the follower saw every change")
        .unwrap();
    let distinct: HashSet<&(String, i64)> = seen.iter().collect();
    assert_eq!(distinct.len(), seen.len(), "no change seen twice");
    // Every version of every customer came, from its first to its last.
    for number in 1..=50 {
        let customer = format!("C-{number:06}");
        let mut versions: Vec<i64> = seen
            .iter()
            .filter(|(id, _)| *id == customer)
            .map(|(_, version)| *version)
            .collect();
        versions.sort_unstable();
        let now = service.portfolio(&customer).await.version;
        let expected: Vec<i64> = (now + 1 - versions.len() as i64..=now).collect();
        assert_eq!(versions, expected, "{customer}");
    }
}

#[tokio::test]
async fn the_feed_refuses_bad_cursors_and_callers_without_the_token() {
    let service = on_sqlite().await;
    for query in ["after=-1", "after=abc", "wait=61", "limit=0", "limit=10001"] {
        let response = service
            .client
            .get(format!("{}/api/changes?{query}", service.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{query}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert!(
            body["detail"].as_str().unwrap().contains("after=POSITION"),
            "{query}: {body}"
        );
    }
    let anonymous = reqwest::get(format!("{}/api/changes", service.base))
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let json = testkit::json_of(service.client.get(format!("{}/api/changes", service.base))).await;
    for member in ["feed_id", "changes", "oldest_cursor", "latest"] {
        assert!(json.get(member).is_some(), "missing {member}: {json}");
    }
}

feed_suite!(
    a_waiting_reader_is_answered_at_the_commit,
    concurrent_writers_reach_a_follower_exactly_once,
);
