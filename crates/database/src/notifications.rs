//! PostgreSQL notifications as a wake-up call: the tables are the truth, a
//! notification only says "look now", and whoever waits also polls, so a
//! notification lost while the connection was down costs latency, never data.

use std::time::Duration;

use sqlx::postgres::{PgListener, PgNotification, PgPool};
use tokio::sync::oneshot;

/// Wait before listening again after the notification connection failed.
const LISTEN_RETRY: Duration = Duration::from_secs(1);

/// Listens on `channels` until the task is aborted or the pool is closed: calls
/// `wake` with every notification, and with `None` after each (re)connect for
/// whatever was committed while nobody listened. `listening` is answered once
/// the first connection listens. A closed pool is the process stopping, which
/// ends the listener without a warning.
pub async fn listen(
    pool: PgPool,
    channels: &'static [&'static str],
    what: &'static str,
    wake: impl Fn(Option<&PgNotification>) + Send + 'static,
    listening: oneshot::Sender<()>,
) {
    let mut listening = Some(listening);
    loop {
        match PgListener::connect_with(&pool).await {
            Ok(mut listener) => match listener.listen_all(channels.iter().copied()).await {
                Ok(()) => {
                    if let Some(listening) = listening.take() {
                        let _ = listening.send(());
                    }
                    wake(None);
                    loop {
                        match listener.try_recv().await {
                            Ok(Some(notification)) => wake(Some(&notification)),
                            // The connection was lost; the next receive connects again.
                            Ok(None) => wake(None),
                            Err(_) if pool.is_closed() => return,
                            Err(error) => {
                                tracing::warn!(%error, "{what} notifications interrupted; polling until they resume");
                                break;
                            }
                        }
                    }
                }
                Err(_) if pool.is_closed() => return,
                Err(error) => tracing::warn!(%error, "cannot listen for {what} notifications"),
            },
            Err(_) if pool.is_closed() => return,
            Err(error) => {
                tracing::warn!(%error, "cannot connect to listen for {what} notifications")
            }
        }
        tokio::time::sleep(LISTEN_RETRY).await;
    }
}
