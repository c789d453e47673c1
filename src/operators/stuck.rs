//! Everything that needs a person, in one list: withdrawals awaiting approval, submissions
//! parked (attempts exhausted, or a refusal no look-up explains), withdrawals CoinsPaid's
//! look-up no longer knows (`missing`), and every withdrawal, finished or not, with an
//! anomaly no operator has acknowledged yet (a mismatched or contradicting report, an
//! undocumented status, an unreadable callback).

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::withdrawals::store::{withdrawal_from_record, withdrawal_query, Withdrawal};

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

/// A compile-checked statement over what operators see of withdrawals: every `Withdrawal`
/// column (see `withdrawal_query!`), then the stuck list's own: the review reason, the
/// submission job (`job_*`, NULL without one), the anomaly's acknowledgement, and `kind` (why
/// it needs a person, `none` if nothing does). `$filter` keeps rows (`w` is the withdrawal,
/// `j` its job) and may go on with `ORDER BY`; `needs_person` keeps exactly the rows whose
/// `kind` is not `none` and the tail goes on after it. Read a record with [`stuck_item!`].
macro_rules! stuck_query {
    (needs_person, $macro:ident!($($pre:tt)*), [$($head:tt)+], [$($tail:tt)+] $($args:tt)*) => {
        stuck_query!($macro!($($pre)*), [$($head)+], [
            "(w.status = 'awaiting_approval'
              OR (w.status IN ('pending', 'processing')
                  AND (j.job_parked OR w.missing_since IS NOT NULL))
              OR w.anomaly_seq > w.anomaly_acknowledged_seq)" + $($tail)+
        ] $($args)*)
    };
    ($macro:ident!($($pre:tt)*), [$($head:tt)+], [$($filter:tt)+] $($args:tt)*) => {
        withdrawal_query!($macro!($($pre)*), [$($head)+], [
            r#", w.review_reason, w.missing_since,
                 j.job_attempts AS "job_attempts?", j.job_parked AS "job_parked?",
                 j.job_park_reason, j.job_last_error,
                 w.anomaly_seq > w.anomaly_acknowledged_seq AS "anomaly_unacknowledged!",
                 w.anomaly_acknowledged_at, w.anomaly_acknowledged_by,
                 CASE WHEN w.status = 'awaiting_approval' THEN 'awaiting_approval'
                      WHEN w.status IN ('pending', 'processing') AND j.job_parked
                          THEN COALESCE(j.job_park_reason, 'attempts_exhausted')
                      WHEN w.status IN ('pending', 'processing') AND w.missing_since IS NOT NULL
                          THEN 'missing'
                      WHEN w.anomaly_seq > w.anomaly_acknowledged_seq THEN 'anomaly'
                      ELSE 'none' END AS "kind!"
               FROM withdrawals w
               LEFT JOIN (SELECT withdrawal_id, attempts AS job_attempts, parked AS job_parked,
                                 park_reason AS job_park_reason, last_error AS job_last_error
                          FROM submission_jobs) j ON j.withdrawal_id = w.id
               WHERE "# + $($filter)+
        ] $($args)*)
    };
}

/// The [`StuckItem`] in a record of `stuck_query!(query!() ..)`.
macro_rules! stuck_item {
    ($record:expr) => {{
        let r = $record;
        StuckItem {
            kind: r.kind,
            review_reason: r.review_reason,
            missing_since: r.missing_since,
            job: match (r.job_attempts, r.job_parked) {
                (Some(attempts), Some(parked)) => Some(JobState {
                    attempts,
                    parked,
                    park_reason: r.job_park_reason,
                    last_error: r.job_last_error,
                }),
                _ => None,
            },
            anomaly_unacknowledged: r.anomaly_unacknowledged,
            anomaly_acknowledged_at: r.anomaly_acknowledged_at,
            anomaly_acknowledged_by: r.anomaly_acknowledged_by,
            withdrawal: withdrawal_from_record!(r),
        }
    }};
}

/// The queue, oldest first (the one waiting longest is the first to look at), from after the
/// id `after` (keyset pagination: the previous page's last id). Exactly the rows whose kind
/// is not `none`.
pub async fn list(
    pool: &PgPool,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<StuckItem>, sqlx::Error> {
    let rows = stuck_query!(
        needs_person,
        query!(),
        ["SELECT "],
        [" AND ($1::uuid IS NULL OR w.id > $1) ORDER BY w.id LIMIT $2"],
        after,
        limit
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|r| stuck_item!(r)).collect())
}

/// How many of each kind the whole queue holds (a page shows only some of them).
pub async fn counts(pool: &PgPool) -> Result<Vec<(String, i64)>, sqlx::Error> {
    // The inner statement names its column `kind!`, override included.
    let rows = stuck_query!(
        needs_person,
        query!(),
        [r#"SELECT "kind!", count(*) AS "count!" FROM (SELECT "#],
        [r#") q GROUP BY "kind!""#]
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|r| (r.kind, r.count)).collect())
}

/// One withdrawal with what operators see about it (kind `none` when nothing is wrong).
pub async fn get(pool: &PgPool, id: Uuid) -> Result<Option<StuckItem>, sqlx::Error> {
    let row = stuck_query!(query!(), ["SELECT "], ["w.id = $1"], id)
        .fetch_optional(pool)
        .await?;
    Ok(row.map(|r| stuck_item!(r)))
}

/// A callback as operators see it: the raw body stays in the database (it may carry
/// addresses), the verdict is shown.
#[derive(Debug, Clone)]
pub struct CallbackRow {
    pub received_at: DateTime<Utc>,
    pub verified: bool,
    pub provider_status: Option<String>,
    pub outcome: String,
    pub detail: Option<String>,
}

pub async fn callbacks(pool: &PgPool, foreign_id: &str) -> Result<Vec<CallbackRow>, sqlx::Error> {
    sqlx::query_as!(
        CallbackRow,
        "SELECT received_at, verified, provider_status, outcome, detail FROM callbacks
         WHERE foreign_id = $1 ORDER BY received_at LIMIT 200",
        foreign_id
    )
    .fetch_all(pool)
    .await
}

pub async fn ledger(
    pool: &PgPool,
    id: Uuid,
) -> Result<Vec<crate::ledger::LedgerEntry>, sqlx::Error> {
    sqlx::query_as!(
        crate::ledger::LedgerEntry,
        r#"SELECT id, user_id, currency, kind AS "kind: crate::ledger::EntryKind", amount,
                  withdrawal_id, reference, created_at
           FROM ledger_entries WHERE withdrawal_id = $1 ORDER BY id"#,
        id
    )
    .fetch_all(pool)
    .await
}
