//! Reports and their outbox, on SQLite or PostgreSQL (the same SQL on both).

use std::time::Duration;

use api::wire::{ProjectionParameters, ProjectionResult, Report};
use database::{Location, Pool, SchemaPolicy, on_pool};
use sqlx::FromRow;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::Error;

#[derive(Clone)]
pub struct ReportStore {
    pool: Pool,
}

#[derive(FromRow)]
pub(crate) struct ReportRow {
    pub id: String,
    pub status: String,
    pub parameters: String,
    pub created_at: i64,
    pub job_id: Option<String>,
    pub result: Option<String>,
    pub error: Option<String>,
    pub dispatch_attempts: i64,
}

impl ReportRow {
    pub fn to_wire(&self) -> Report {
        Report {
            id: self.id.clone(),
            status: self.status.clone(),
            parameters: serde_json::from_str::<ProjectionParameters>(&self.parameters).ok(),
            created_at: OffsetDateTime::from_unix_timestamp_nanos(
                i128::from(self.created_at) * 1_000_000,
            )
            .ok()
            .and_then(|moment| moment.format(&Rfc3339).ok())
            .unwrap_or_default(),
            job_id: self.job_id.clone(),
            result: self
                .result
                .as_deref()
                .and_then(|json| serde_json::from_str::<ProjectionResult>(json).ok()),
            error: self.error.clone(),
            dispatch_attempts: self.dispatch_attempts as u32,
        }
    }
}

pub(crate) fn now_millis() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

impl ReportStore {
    pub async fn open(
        location: &Location,
        policy: SchemaPolicy,
        max_connections: u32,
    ) -> Result<Self, Error> {
        let pool = Pool::open(location, &crate::STORE, policy, max_connections).await?;
        Ok(ReportStore { pool })
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Records a report and its outbox entry (one row, one commit).
    pub async fn create(&self, parameters: &ProjectionParameters) -> Result<Report, Error> {
        let id = uuid::Uuid::new_v4().to_string();
        let now = now_millis();
        let parameters = serde_json::to_string(parameters).expect("wire messages serialise");
        let row: ReportRow = on_pool!(&self.pool, pool => {
            sqlx::query_as(
                "INSERT INTO reports (id, status, parameters, created_at, next_attempt_at)
                 VALUES ($1, 'pending', $2, $3, $3) RETURNING *",
            )
            .bind(&id)
            .bind(&parameters)
            .bind(now)
            .fetch_one(pool)
            .await?
        });
        Ok(row.to_wire())
    }

    pub async fn get(&self, id: &str) -> Result<Option<Report>, Error> {
        let row: Option<ReportRow> = on_pool!(&self.pool, pool => {
            sqlx::query_as("SELECT * FROM reports WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?
        });
        Ok(row.map(|row| row.to_wire()))
    }

    /// The newest reports first.
    pub async fn list(&self, limit: u32) -> Result<Vec<Report>, Error> {
        let rows: Vec<ReportRow> = on_pool!(&self.pool, pool => {
            sqlx::query_as("SELECT * FROM reports ORDER BY created_at DESC, id LIMIT $1")
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?
        });
        Ok(rows.iter().map(ReportRow::to_wire).collect())
    }

    pub(crate) async fn due_for_dispatch(&self, limit: u32) -> Result<Vec<ReportRow>, Error> {
        Ok(on_pool!(&self.pool, pool => {
            sqlx::query_as(
                "SELECT * FROM reports WHERE status = 'pending' AND next_attempt_at <= $1
                 ORDER BY created_at LIMIT $2",
            )
            .bind(now_millis())
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
        }))
    }

    pub(crate) async fn running(&self, limit: u32) -> Result<Vec<ReportRow>, Error> {
        Ok(on_pool!(&self.pool, pool => {
            sqlx::query_as(
                "SELECT * FROM reports WHERE status IN ('dispatched', 'processing') ORDER BY created_at LIMIT $1",
            )
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
        }))
    }

    pub(crate) async fn mark_dispatched(&self, id: &str, job_id: &str) -> Result<(), Error> {
        on_pool!(&self.pool, pool => {
            sqlx::query(
                "UPDATE reports SET status = 'dispatched', job_id = $2, dispatch_attempts = dispatch_attempts + 1
                 WHERE id = $1 AND status = 'pending'",
            )
            .bind(id)
            .bind(job_id)
            .execute(pool)
            .await
            .map(|_| ())?
        });
        Ok(())
    }

    pub(crate) async fn postpone(
        &self,
        id: &str,
        delay: Duration,
        reason: &str,
    ) -> Result<(), Error> {
        on_pool!(&self.pool, pool => {
            sqlx::query(
                "UPDATE reports SET dispatch_attempts = dispatch_attempts + 1, next_attempt_at = $2, error = $3
                 WHERE id = $1",
            )
            .bind(id)
            .bind(now_millis() + delay.as_millis() as i64)
            .bind(reason)
            .execute(pool)
            .await
            .map(|_| ())?
        });
        Ok(())
    }

    pub(crate) async fn update(
        &self,
        id: &str,
        status: &str,
        result: Option<&str>,
        error: Option<&str>,
    ) -> Result<(), Error> {
        on_pool!(&self.pool, pool => {
            sqlx::query("UPDATE reports SET status = $2, result = $3, error = $4 WHERE id = $1")
                .bind(id)
                .bind(status)
                .bind(result)
                .bind(error)
                .execute(pool)
                .await
                .map(|_| ())?
        });
        Ok(())
    }
}
