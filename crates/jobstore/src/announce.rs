//! Job changes announced to every process on PostgreSQL: a NOTIFY on the
//! changes channel, sent once the write that made the change has committed,
//! from a task of its own that groups what has piled up. Sent inside the
//! write's transaction, a NOTIFY holds PostgreSQL's notification lock through
//! the commit's WAL flush, and every committing worker waits on every other
//! (trivial jobs through three workers: 1,830 completed/s fell to about 1,000).
//! An announcement is a hint: one lost is seen at the watcher's next read.

use sqlx::postgres::PgPool;
use tokio::sync::mpsc;

use crate::changes::{CHANGES_CHANNEL, token};

/// Announcements waiting to be sent before new ones are dropped.
const QUEUE: usize = 65_536;
/// How long changes wait for others to share their notification, under load.
const LINGER: std::time::Duration = std::time::Duration::from_millis(5);
/// Seqs in one notification: a payload holds 8000 bytes.
const PER_NOTIFICATION: usize = 300;

/// The sending side; the task ends when every clone is gone.
#[derive(Clone)]
pub(crate) struct Announcer {
    sender: mpsc::Sender<String>,
}

impl Announcer {
    pub fn start(pool: PgPool) -> Announcer {
        let (sender, receiver) = mpsc::channel(QUEUE);
        tokio::spawn(announce(pool, receiver));
        Announcer { sender }
    }

    pub fn changed(&self, seqs: impl IntoIterator<Item = i64>) {
        for seq in seqs {
            self.send(token(seq, false));
        }
    }

    pub fn cancelled(&self, seq: i64) {
        self.send(token(seq, true));
    }

    fn send(&self, token: String) {
        if self.sender.try_send(token).is_err() {
            tracing::debug!(
                "job change announcements are behind; watchers see this change at their next read"
            );
        }
    }
}

async fn announce(pool: PgPool, mut receiver: mpsc::Receiver<String>) {
    let mut tokens = Vec::new();
    let mut loaded = false;
    while receiver.recv_many(&mut tokens, QUEUE).await > 0 {
        // Under load (the last round found several changes waiting), changes
        // come faster than a notification's round trip: a short wait gathers
        // them into one. A lone change is sent at once.
        if loaded && tokens.len() < PER_NOTIFICATION {
            tokio::time::sleep(LINGER).await;
            while let Ok(token) = receiver.try_recv() {
                tokens.push(token);
            }
        }
        loaded = tokens.len() > 1;
        for chunk in tokens.chunks(PER_NOTIFICATION) {
            let sent = sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANGES_CHANNEL)
                .bind(chunk.join(","))
                .execute(&pool)
                .await;
            if let Err(error) = sent {
                tracing::warn!(%error, "cannot announce job changes; watchers see them at their next read");
            }
        }
        tokens.clear();
    }
}
