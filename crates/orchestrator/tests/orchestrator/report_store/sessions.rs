//! Sign-in sessions: each its own, ended by signing out or by expiry.

use std::time::Duration;

use orchestrator::ReportStore;

async fn sessions_last_until_ended_or_expired(store: ReportStore) {
    let id = store
        .start_session("owner-a", Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(
        store.session_owner(&id).await.unwrap().as_deref(),
        Some("owner-a")
    );
    assert_eq!(store.session_owner("made-up").await.unwrap(), None);
    let other = store
        .start_session("owner-a", Duration::from_secs(60))
        .await
        .unwrap();
    assert_ne!(id, other, "every sign-in is a session of its own");
    store.end_session(&id).await.unwrap();
    assert_eq!(store.session_owner(&id).await.unwrap(), None);
    assert!(store.session_owner(&other).await.unwrap().is_some());
    let expired = store
        .start_session("owner-a", Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(store.session_owner(&expired).await.unwrap(), None);
    assert_eq!(store.prune_sessions().await.unwrap(), 1);
    assert!(store.session_owner(&other).await.unwrap().is_some());
    store.close().await;
}

report_suite!(sessions_last_until_ended_or_expired);
