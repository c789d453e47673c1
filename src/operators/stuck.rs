//! Everything that needs a person, in one list: withdrawals awaiting approval, submissions
//! parked (attempts exhausted, or a refusal no look-up explains), withdrawals CoinsPaid's
//! look-up no longer knows (`missing`), and every withdrawal, finished or not, with an
//! anomaly no operator has acknowledged yet (a mismatched or contradicting report, an
//! undocumented status, an unreadable callback).

use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::{FromRow, PgPool, Row};
use uuid::Uuid;

use crate::withdrawals::store::{Withdrawal, COLUMNS};

/// A withdrawal's submission job, as operators see it.
#[derive(Debug, Clone)]
pub struct JobState {
    pub attempts: i32,
    pub parked: bool,
    pub park_reason: Option<String>,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone)]
pub struct StuckItem {
    /// `awaiting_approval`, `attempts_exhausted`, `needs_operator`, `missing` or `anomaly`.
    pub kind: String,
    pub withdrawal: Withdrawal,
    pub review_reason: Option<String>,
    pub missing_since: Option<DateTime<Utc>>,
    pub job: Option<JobState>,
    /// An anomaly is recorded that no operator has acknowledged since.
    pub anomaly_unacknowledged: bool,
    pub anomaly_acknowledged_at: Option<DateTime<Utc>>,
    pub anomaly_acknowledged_by: Option<String>,
}

impl<'r> FromRow<'r, PgRow> for StuckItem {
    fn from_row(row: &'r PgRow) -> Result<Self, sqlx::Error> {
        let attempts: Option<i32> = row.try_get("job_attempts")?;
        Ok(Self {
            kind: row.try_get("kind")?,
            withdrawal: Withdrawal::from_row(row)?,
            review_reason: row.try_get("review_reason")?,
            missing_since: row.try_get("missing_since")?,
            job: match attempts {
                Some(attempts) => Some(JobState {
                    attempts,
                    parked: row.try_get("job_parked")?,
                    park_reason: row.try_get("job_park_reason")?,
                    last_error: row.try_get("job_last_error")?,
                }),
                None => None,
            },
            anomaly_unacknowledged: row.try_get("anomaly_unacknowledged")?,
            anomaly_acknowledged_at: row.try_get("anomaly_acknowledged_at")?,
            anomaly_acknowledged_by: row.try_get("anomaly_acknowledged_by")?,
        })
    }
}

/// An anomaly no operator has acknowledged (see the migration that counts them).
const UNACKNOWLEDGED: &str = "w.anomaly_seq > w.anomaly_acknowledged_seq";
/// Not finished: a parked job or a missing record still needs a person.
const OPEN: &str = "w.status IN ('pending', 'processing')";

fn query(filter: &str) -> String {
    let columns = COLUMNS
        .split(", ")
        .map(|c| format!("w.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "SELECT {columns}, w.review_reason, w.missing_since,
             j.attempts AS job_attempts, j.parked AS job_parked,
             j.park_reason AS job_park_reason, j.last_error AS job_last_error,
             {UNACKNOWLEDGED} AS anomaly_unacknowledged,
             w.anomaly_acknowledged_at, w.anomaly_acknowledged_by,
             CASE WHEN w.status = 'awaiting_approval' THEN 'awaiting_approval'
                  WHEN {OPEN} AND j.parked THEN COALESCE(j.park_reason, 'attempts_exhausted')
                  WHEN {OPEN} AND w.missing_since IS NOT NULL THEN 'missing'
                  WHEN {UNACKNOWLEDGED} THEN 'anomaly'
                  ELSE 'none' END AS kind
         FROM withdrawals w LEFT JOIN submission_jobs j ON j.withdrawal_id = w.id
         WHERE {filter}"
    )
}

/// The queue, oldest first (the one waiting longest is the first to look at), from after the
/// id `after` (keyset pagination: the previous page's last id). Exactly the rows whose kind
/// is not `none`.
pub async fn list(
    pool: &PgPool,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<StuckItem>, sqlx::Error> {
    sqlx::query_as(&format!(
        "{} ORDER BY w.id LIMIT $2",
        query(&format!(
            "($1::uuid IS NULL OR w.id > $1) AND {}",
            needs_person()
        ))
    ))
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await
}

fn needs_person() -> String {
    format!(
        "(w.status = 'awaiting_approval'
          OR ({OPEN} AND (j.parked OR w.missing_since IS NOT NULL))
          OR {UNACKNOWLEDGED})"
    )
}

/// How many of each kind the whole queue holds (a page shows only some of them).
pub async fn counts(pool: &PgPool) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT kind, count(*) FROM ({}) q GROUP BY kind",
        query(&needs_person())
    ))
    .fetch_all(pool)
    .await
}

/// One withdrawal with what operators see about it (kind `none` when nothing is wrong).
pub async fn get(pool: &PgPool, id: Uuid) -> Result<Option<StuckItem>, sqlx::Error> {
    sqlx::query_as(&query("w.id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await
}

/// A callback as operators see it: the raw body stays in the database (it may carry
/// addresses), the verdict is shown.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CallbackRow {
    pub received_at: DateTime<Utc>,
    pub verified: bool,
    pub provider_status: Option<String>,
    pub outcome: String,
    pub detail: Option<String>,
}

pub async fn callbacks(pool: &PgPool, foreign_id: &str) -> Result<Vec<CallbackRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT received_at, verified, provider_status, outcome, detail FROM callbacks
         WHERE foreign_id = $1 ORDER BY received_at LIMIT 200",
    )
    .bind(foreign_id)
    .fetch_all(pool)
    .await
}

pub async fn ledger(
    pool: &PgPool,
    id: Uuid,
) -> Result<Vec<crate::ledger::LedgerEntry>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, user_id, currency, kind, amount, withdrawal_id, reference, created_at
         FROM ledger_entries WHERE withdrawal_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(pool)
    .await
}
