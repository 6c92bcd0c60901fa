//! The pages' sessions, server-side: signing in records one, each page reads
//! it, signing out deletes it, and expired ones are pruned with old reports.

use std::time::Duration;

use database::on_pool;

use super::{ReportStore, now_millis};
use crate::Error;

impl ReportStore {
    /// Records a new session of `owner` lasting `lifetime`; returns its id, a
    /// random value the session cookie carries.
    pub async fn start_session(&self, owner: &str, lifetime: Duration) -> Result<String, Error> {
        let id = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let now = now_millis();
        let expires_at =
            now.saturating_add(i64::try_from(lifetime.as_millis()).unwrap_or(i64::MAX));
        on_pool!(&self.pool, pool => {
            sqlx::query(
                "INSERT INTO sessions (id, owner, created_at, expires_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(&id)
            .bind(owner)
            .bind(now)
            .bind(expires_at)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(id)
    }

    /// The owner of session `id` while it lasts; `None` once it expired or
    /// was ended.
    pub async fn session_owner(&self, id: &str) -> Result<Option<String>, Error> {
        let owner: Option<(String,)> = on_pool!(&self.pool, pool => {
            sqlx::query_as("SELECT owner FROM sessions WHERE id = $1 AND expires_at > $2")
                .bind(id)
                .bind(now_millis())
                .fetch_optional(pool)
                .await?
        });
        Ok(owner.map(|(owner,)| owner))
    }

    /// Ends session `id`: its cookie signs nobody in from now on.
    pub async fn end_session(&self, id: &str) -> Result<(), Error> {
        on_pool!(&self.pool, pool => {
            sqlx::query("DELETE FROM sessions WHERE id = $1")
                .bind(id)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(())
    }

    /// Deletes expired sessions; returns how many.
    pub async fn prune_sessions(&self) -> Result<u64, Error> {
        let deleted = on_pool!(&self.pool, pool => {
            sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
                .bind(now_millis())
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(deleted)
    }
}
