//! Reports: each its tenant's, kept until it has ended and aged, and the
//! reports of earlier releases given to a tenant.

use std::time::Duration;

use orchestrator::{ReportStatus, ReportStore};
use wire::ProjectionParameters;

fn parameters() -> ProjectionParameters {
    ProjectionParameters {
        customer_id: "C-000001".into(),
        time_horizon_years: 5,
        risk_profile: "balanced".into(),
        ..Default::default()
    }
}

async fn finished_reports_are_pruned_and_unowned_ones_adopted(store: ReportStore) {
    let finished = store.create("owner-a", &parameters()).await.unwrap();
    let running = store.create("owner-a", &parameters()).await.unwrap();
    store
        .update(&finished.id, ReportStatus::Completed, Some("{}"), None)
        .await
        .unwrap();
    store
        .update(&running.id, ReportStatus::Dispatched, None, None)
        .await
        .unwrap();
    assert_eq!(
        store
            .prune_finished(Duration::from_secs(3600), 10)
            .await
            .unwrap(),
        0,
        "a report that just ended is kept"
    );
    assert_eq!(store.prune_finished(Duration::ZERO, 10).await.unwrap(), 1);
    assert!(store.get("owner-a", &finished.id).await.unwrap().is_none());
    assert!(store.get("owner-a", &running.id).await.unwrap().is_some());

    let legacy = store.create("", &parameters()).await.unwrap();
    assert!(store.get("owner-b", &legacy.id).await.unwrap().is_none());
    assert_eq!(store.adopt_unowned("owner-b").await.unwrap(), 1);
    assert!(store.get("owner-b", &legacy.id).await.unwrap().is_some());
    store.close().await;
}

async fn each_tenant_lists_only_its_own(store: ReportStore) {
    let first = store.create("owner-a", &parameters()).await.unwrap();
    let second = store.create("owner-a", &parameters()).await.unwrap();
    let theirs = store.create("owner-b", &parameters()).await.unwrap();
    let listed: Vec<String> = store
        .list("owner-a", 10)
        .await
        .unwrap()
        .into_iter()
        .map(|report| report.id)
        .collect();
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert!(listed.contains(&first.id) && listed.contains(&second.id));
    assert!(!listed.contains(&theirs.id));
    assert!(store.get("owner-a", &theirs.id).await.unwrap().is_none());
    assert_eq!(store.list("owner-a", 1).await.unwrap().len(), 1);
    store.close().await;
}

report_suite!(
    finished_reports_are_pruned_and_unowned_ones_adopted,
    each_tenant_lists_only_its_own,
);
