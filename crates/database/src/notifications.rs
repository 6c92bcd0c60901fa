//! PostgreSQL notifications as a wake-up call: the tables are the truth, a
//! notification only says "look now", and whoever waits also polls, so a
//! notification lost while the connection was down costs latency, never data.

use std::time::Duration;

use sqlx::postgres::{PgListener, PgPool};
use tokio::sync::oneshot;

/// Wait before listening again after the notification connection failed.
const LISTEN_RETRY: Duration = Duration::from_secs(1);

/// Listens on `channels` until the task is aborted: calls `wake` on every
/// notification (several at once are one call), and once after each (re)connect
/// for whatever was committed while nobody listened. `listening` is answered
/// once the first connection listens.
pub async fn listen(
    pool: PgPool,
    channels: &'static [&'static str],
    what: &'static str,
    wake: impl Fn() + Send + 'static,
    listening: oneshot::Sender<()>,
) {
    let mut listening = Some(listening);
    loop {
        match PgListener::connect_with(&pool).await {
            Ok(mut listener) => match listener.listen_all(channels.iter().copied()).await {
                Ok(()) => loop {
                    if let Some(listening) = listening.take() {
                        let _ = listening.send(());
                    }
                    wake();
                    if let Err(error) = listener.try_recv().await {
                        tracing::warn!(%error, "{what} notifications interrupted; polling until they resume");
                        break;
                    }
                    while let Some(_buffered) = listener.next_buffered() {}
                },
                Err(error) => tracing::warn!(%error, "cannot listen for {what} notifications"),
            },
            Err(error) => {
                tracing::warn!(%error, "cannot connect to listen for {what} notifications")
            }
        }
        tokio::time::sleep(LISTEN_RETRY).await;
    }
}
