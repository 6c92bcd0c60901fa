//! Reports and their outbox, on SQLite or PostgreSQL (the same SQL on both).

use std::time::Duration;

use database::{Location, Pool, SchemaPolicy, on_pool};
use sqlx::FromRow;
use time::OffsetDateTime;
use wire::{ProjectionParameters, ProjectionResult, Report};

use crate::Error;
use crate::report::ReportStatus;

mod sessions;

#[derive(Clone)]
pub struct ReportStore {
    pool: Pool,
}

#[derive(FromRow)]
pub(crate) struct ReportRow {
    pub id: String,
    /// The tenant: the keyed hash of the API key that asked for the report.
    pub owner: String,
    #[sqlx(try_from = "String")]
    pub status: ReportStatus,
    pub parameters: String,
    pub created_at: i64,
    pub job_id: Option<String>,
    pub result: Option<String>,
    pub error: Option<String>,
    pub dispatch_attempts: i64,
    pub customer_id: String,
    pub finished_at: Option<i64>,
}

impl ReportRow {
    pub fn to_wire(&self) -> Report {
        Report {
            id: self.id.clone(),
            status: self.status.to_string(),
            parameters: serde_json::from_str::<ProjectionParameters>(&self.parameters).ok(),
            created_at: wire::rfc3339(self.created_at),
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

/// What a list of reports is narrowed to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListFilter {
    pub status: Option<String>,
    pub customer_id: Option<String>,
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

    /// Whether the store answers now.
    pub async fn ping(&self) -> Result<(), Error> {
        Ok(self.pool.ping().await?)
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Records `owner`'s report and its outbox entry (one row, one commit).
    pub async fn create(
        &self,
        owner: &str,
        parameters: &ProjectionParameters,
    ) -> Result<Report, Error> {
        let id = uuid::Uuid::new_v4().to_string();
        let now = now_millis();
        let customer_id = parameters.customer_id.clone();
        let parameters = serde_json::to_string(parameters).expect("wire messages serialise");
        let row: ReportRow = on_pool!(&self.pool, pool => {
            sqlx::query_as(
                "INSERT INTO reports (id, owner, status, parameters, created_at, next_attempt_at, customer_id)
                 VALUES ($1, $2, 'pending', $3, $4, $4, $5) RETURNING *",
            )
            .bind(&id)
            .bind(owner)
            .bind(&parameters)
            .bind(now)
            .bind(&customer_id)
            .fetch_one(pool)
            .await?
        });
        Ok(row.to_wire())
    }

    /// `owner`'s report `id`; another tenant's is not found.
    pub async fn get(&self, owner: &str, id: &str) -> Result<Option<Report>, Error> {
        Ok(self.row(owner, id).await?.map(|row| row.to_wire()))
    }

    pub(crate) async fn row(&self, owner: &str, id: &str) -> Result<Option<ReportRow>, Error> {
        Ok(on_pool!(&self.pool, pool => {
            sqlx::query_as("SELECT * FROM reports WHERE id = $1 AND owner = $2")
                .bind(id)
                .bind(owner)
                .fetch_optional(pool)
                .await?
        }))
    }

    /// A page of `owner`'s reports, newest first, that pass `filter`, from
    /// just after `before` (the last of the previous page) on.
    pub(crate) async fn page(
        &self,
        owner: &str,
        filter: &ListFilter,
        before: Option<&(i64, String)>,
        limit: u32,
    ) -> Result<Vec<ReportRow>, Error> {
        let (before_at, before_id) = before.map_or((None, None), |(at, id)| (Some(*at), Some(id)));
        Ok(on_pool!(&self.pool, pool => {
            sqlx::query_as(
                "SELECT * FROM reports WHERE owner = $1
                   AND (CAST($2 AS TEXT) IS NULL OR status = $2)
                   AND (CAST($3 AS TEXT) IS NULL OR customer_id = $3)
                   AND (CAST($4 AS BIGINT) IS NULL OR (created_at, id) < ($4, $5))
                 ORDER BY created_at DESC, id DESC LIMIT $6",
            )
            .bind(owner)
            .bind(filter.status.as_deref())
            .bind(filter.customer_id.as_deref())
            .bind(before_at)
            .bind(before_id)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
        }))
    }

    /// Cancels `owner`'s report `id` unless it has ended: the report as it is
    /// after, `None` when there is no such report.
    pub(crate) async fn cancel(&self, owner: &str, id: &str) -> Result<Option<ReportRow>, Error> {
        let cancelled: Option<ReportRow> = on_pool!(&self.pool, pool => {
            sqlx::query_as(
                "UPDATE reports SET status = 'cancelled', finished_at = $3,
                     error = 'cancelled by the person who asked for it'
                 WHERE id = $1 AND owner = $2 AND status IN ('pending', 'dispatched', 'processing')
                 RETURNING *",
            )
            .bind(id)
            .bind(owner)
            .bind(now_millis())
            .fetch_optional(pool)
            .await?
        });
        match cancelled {
            Some(row) => Ok(Some(row)),
            None => self.row(owner, id).await,
        }
    }

    /// `owner`'s newest reports first.
    pub async fn list(&self, owner: &str, limit: u32) -> Result<Vec<Report>, Error> {
        let rows: Vec<ReportRow> = on_pool!(&self.pool, pool => {
            sqlx::query_as(
                "SELECT * FROM reports WHERE owner = $1 ORDER BY created_at DESC, id LIMIT $2",
            )
            .bind(owner)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
        });
        Ok(rows.iter().map(ReportRow::to_wire).collect())
    }

    /// Gives the reports of earlier releases, which have no owner, to `owner`.
    pub async fn adopt_unowned(&self, owner: &str) -> Result<u64, Error> {
        Ok(on_pool!(&self.pool, pool => {
            sqlx::query("UPDATE reports SET owner = $1 WHERE owner = ''")
                .bind(owner)
                .execute(pool)
                .await?
                .rows_affected()
        }))
    }

    /// Deletes up to `batch` reports that ended more than `age` ago.
    pub async fn prune_finished(&self, age: Duration, batch: u32) -> Result<u64, Error> {
        let before = now_millis() - i64::try_from(age.as_millis()).unwrap_or(i64::MAX / 2);
        Ok(on_pool!(&self.pool, pool => {
            sqlx::query(
                "DELETE FROM reports WHERE id IN
                     (SELECT id FROM reports WHERE finished_at <= $1 LIMIT $2)",
            )
            .bind(before)
            .bind(i64::from(batch))
            .execute(pool)
            .await?
            .rows_affected()
        }))
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

    /// Running reports after `after` in (created_at, id) order: a page of
    /// them, so that every one is followed however many there are.
    pub(crate) async fn running_after(
        &self,
        after: &(i64, String),
        limit: u32,
    ) -> Result<Vec<ReportRow>, Error> {
        Ok(on_pool!(&self.pool, pool => {
            sqlx::query_as(
                "SELECT * FROM reports WHERE status IN ('dispatched', 'processing')
                   AND (created_at, id) > ($1, $2)
                 ORDER BY created_at, id LIMIT $3",
            )
            .bind(after.0)
            .bind(&after.1)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
        }))
    }

    /// Records the report's job; false when the report is no longer pending
    /// (it was cancelled while its job was being submitted).
    pub(crate) async fn mark_dispatched(&self, id: &str, job_id: &str) -> Result<bool, Error> {
        Ok(on_pool!(&self.pool, pool => {
            sqlx::query(
                "UPDATE reports SET status = 'dispatched', job_id = $2, dispatch_attempts = dispatch_attempts + 1
                 WHERE id = $1 AND status = 'pending'",
            )
            .bind(id)
            .bind(job_id)
            .execute(pool)
            .await?
            .rows_affected()
                == 1
        }))
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

    pub async fn update(
        &self,
        id: &str,
        status: ReportStatus,
        result: Option<&str>,
        error: Option<&str>,
    ) -> Result<(), Error> {
        on_pool!(&self.pool, pool => {
            sqlx::query(
                "UPDATE reports SET status = $2, result = $3, error = $4,
                     finished_at = CASE WHEN $2 IN ('completed', 'failed', 'cancelled') THEN $5 END
                 WHERE id = $1 AND status NOT IN ('completed', 'failed', 'cancelled')",
            )
            .bind(id)
            .bind(status.as_str())
            .bind(result)
            .bind(error)
            .bind(now_millis())
            .execute(pool)
            .await
            .map(|_| ())?
        });
        Ok(())
    }
}
