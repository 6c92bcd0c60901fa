//! What the feed logs: every write that changes an answer, once per customer,
//! in the order readers can rely on, and what pruning leaves.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use crate::backends::Service;

/// Each kind of write, by plain SQL, lands in the feed once per customer it
/// changes, with the customer's version after it; writes that change nothing
/// do not.
async fn every_write_that_changes_an_answer_is_logged(service: Service) {
    let start = service.feed("after=0").await;
    assert!(start.changes.is_empty(), "seeding is not a change");
    assert!(!start.feed_id.is_empty());
    let first = service.portfolio("C-000001").await;
    let second = service.portfolio("C-000002").await;
    let held = first.assets[0].asset_id;
    let unheld = (1..=24)
        .find(|id| !first.assets.iter().any(|asset| asset.asset_id == *id))
        .unwrap();
    let holders_of_held: HashSet<String> = {
        let mut holders = HashSet::new();
        for number in 1..=50 {
            let customer = format!("C-{number:06}");
            if service
                .portfolio(&customer)
                .await
                .assets
                .iter()
                .any(|asset| asset.asset_id == held)
            {
                holders.insert(customer);
            }
        }
        holders
    };

    let writes: Vec<(String, Vec<&str>)> = vec![
        (
            format!(
                "UPDATE holdings SET quantity = quantity + 1 WHERE customer_id = 'C-000001' AND asset_id = {held}"
            ),
            vec!["C-000001"],
        ),
        (
            format!(
                "INSERT INTO holdings (customer_id, asset_id, quantity) VALUES ('C-000001', {unheld}, 3)"
            ),
            vec!["C-000001"],
        ),
        (
            format!(
                "UPDATE holdings SET customer_id = 'C-000002' WHERE customer_id = 'C-000001' AND asset_id = {unheld}"
            ),
            vec!["C-000001", "C-000002"],
        ),
        (
            format!("DELETE FROM holdings WHERE customer_id = 'C-000002' AND asset_id = {unheld}"),
            vec!["C-000002"],
        ),
        (
            "UPDATE customers SET name = 'Renamed Person' WHERE id = 'C-000002'".to_string(),
            vec!["C-000002"],
        ),
        (
            "INSERT INTO customers (id, name, base_currency) VALUES ('C-NEW', 'New Person', 'EUR')"
                .to_string(),
            vec!["C-NEW"],
        ),
        // Changes nothing a portfolio answer shows: not logged.
        (
            "UPDATE holdings SET quantity = quantity WHERE customer_id = 'C-000001'".to_string(),
            vec![],
        ),
        (
            "UPDATE customers SET name = name WHERE id = 'C-000001'".to_string(),
            vec![],
        ),
    ];
    let mut after = start.latest;
    for (sql, changed) in writes {
        service.other.execute(&sql).await;
        if changed.is_empty() {
            continue;
        }
        let feed = service.changes_after(after, changed.len()).await;
        let customers: Vec<&str> = feed
            .changes
            .iter()
            .map(|change| change.customer_id.as_str())
            .collect();
        let mut sorted = customers.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, changed, "{sql}");
        for change in &feed.changes {
            assert!(change.position > after, "{sql}: positions grow");
            if change.customer_id != "C-NEW" {
                let now = service.portfolio(&change.customer_id).await;
                assert_eq!(change.version, now.version, "{sql}: the version after");
                assert!(now.change_position >= change.position);
            }
            let age_ms = now_ms() - change.changed_at_ms;
            assert!(
                (0..60_000).contains(&age_ms),
                "{sql}: written {age_ms} ms ago"
            );
        }
        after = feed.changes.last().unwrap().position;
    }
    assert!(
        service.portfolio("C-000001").await.version > first.version
            && service.portfolio("C-000002").await.version > second.version
    );

    // A new price is part of every holder's answer.
    service
        .other
        .execute(&format!(
            "UPDATE assets SET price = price * 1.01 WHERE id = {held}"
        ))
        .await;
    let feed = service.changes_after(after, holders_of_held.len()).await;
    let repriced: HashSet<String> = feed
        .changes
        .iter()
        .map(|change| change.customer_id.clone())
        .collect();
    assert_eq!(repriced, holders_of_held);
}

/// A portfolio read before a change says a position the change comes after; a
/// read after it, one at or past it.
async fn a_portfolio_says_where_in_the_feed_it_was_read(service: Service) {
    let before = service.portfolio("C-000007").await;
    service
        .other
        .execute("UPDATE holdings SET quantity = quantity * 2 WHERE customer_id = 'C-000007'")
        .await;
    let feed = service
        .changes_after(before.change_position, before.assets.len())
        .await;
    assert!(
        feed.changes
            .iter()
            .all(|change| change.position > before.change_position)
    );
    let after = service.portfolio("C-000007").await;
    assert!(after.change_position >= feed.changes.last().unwrap().position);
    assert_eq!(after.version, feed.changes.last().unwrap().version);
}

/// Pruning moves the oldest cursor: a reader behind it is told at once, and a
/// portfolio read on an empty log still says where the feed stands.
async fn pruned_changes_move_the_oldest_cursor(service: Service) {
    service
        .other
        .execute("UPDATE holdings SET quantity = quantity + 1 WHERE customer_id = 'C-000009'")
        .await;
    let holdings = service.portfolio("C-000009").await.assets.len();
    let written = service.changes_after(0, holdings).await;
    assert_eq!(
        datasvc::prune_changes(service.store.pool(), Duration::from_secs(3600))
            .await
            .unwrap(),
        0,
        "nothing is older than an hour"
    );
    tokio::time::sleep(Duration::from_millis(5)).await;
    let pruned = datasvc::prune_changes(service.store.pool(), Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(pruned as usize, holdings);
    let started = Instant::now();
    let behind = service.feed("after=0&wait=30").await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "answered at once"
    );
    assert!(behind.changes.is_empty());
    assert_eq!(behind.oldest_cursor, written.latest);
    assert_eq!(behind.latest, written.latest);
    assert_eq!(behind.feed_id, written.feed_id);
    assert_eq!(
        service.portfolio("C-000009").await.change_position,
        written.latest
    );
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

feed_suite!(
    every_write_that_changes_an_answer_is_logged,
    a_portfolio_says_where_in_the_feed_it_was_read,
    pruned_changes_move_the_oldest_cursor,
);
