//! The pause switch: submissions stop for every currency (`*`) or one currency. Stored in the
//! database, so it holds across restarts and for every replica; the submission queue skips
//! paused work (see `queue::claim_due`). Withdrawals are still accepted, held and queued.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use super::audit;

/// The scope that pauses every currency.
pub const ALL: &str = "*";

#[derive(Debug, Clone)]
pub struct Pause {
    pub scope: String,
    pub reason: String,
    pub paused_by: String,
    pub paused_at: DateTime<Utc>,
}

pub async fn list(pool: &PgPool) -> Result<Vec<Pause>, sqlx::Error> {
    sqlx::query_as!(
        Pause,
        "SELECT scope, reason, paused_by, paused_at FROM submission_pauses ORDER BY scope"
    )
    .fetch_all(pool)
    .await
}

/// Pauses `scope`, recorded in the audit trail. One transaction; pausing twice keeps the
/// first pause (and records the second attempt).
pub async fn pause(pool: &PgPool, scope: &str, reason: &str, by: &str) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    let inserted = sqlx::query!(
        "INSERT INTO submission_pauses (scope, reason, paused_by) VALUES ($1, $2, $3)
         ON CONFLICT (scope) DO NOTHING",
        scope,
        reason,
        by
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    audit::record(
        &mut tx,
        by,
        "pause",
        None,
        Some(reason),
        Some(serde_json::json!({"scope": scope, "paused": inserted == 0})),
        Some(serde_json::json!({"scope": scope, "paused": true})),
    )
    .await?;
    tx.commit().await?;
    tracing::warn!(scope, operator = by, "submissions paused");
    Ok(())
}

/// Resumes `scope`; the worker picks up the queued withdrawals on its next tick. One transaction.
pub async fn resume(
    pool: &PgPool,
    scope: &str,
    reason: Option<&str>,
    by: &str,
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    let removed = sqlx::query!("DELETE FROM submission_pauses WHERE scope = $1", scope)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    audit::record(
        &mut tx,
        by,
        "resume",
        None,
        reason,
        Some(serde_json::json!({"scope": scope, "paused": removed == 1})),
        Some(serde_json::json!({"scope": scope, "paused": false})),
    )
    .await?;
    tx.commit().await?;
    tracing::warn!(scope, operator = by, "submissions resumed");
    Ok(())
}

/// Whether a withdrawal in `currency` may be sent now.
pub async fn is_paused(pool: &PgPool, currency: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM submission_pauses WHERE scope IN ('*', $1)) AS "paused!""#,
        currency
    )
    .fetch_one(pool)
    .await
}
