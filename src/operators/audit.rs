//! The audit trail: one row per operator action and per approval decision (who, when, what,
//! why, before and after). The table refuses UPDATE, DELETE and TRUNCATE (see the migration).

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::withdrawals::Withdrawal;

#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub id: Uuid,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub withdrawal_id: Option<Uuid>,
    pub reason: Option<String>,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

/// What an audit row keeps of a withdrawal: what an operator decides on, no personal data.
pub fn snapshot(w: &Withdrawal) -> Value {
    json!({
        "status": w.status,
        "provider_status": w.provider_status,
        "anomaly": w.anomaly,
        "error": w.error,
    })
}

/// One row, inside the caller's transaction: the action and its record commit together.
pub async fn record(
    conn: &mut PgConnection,
    actor: &str,
    action: &str,
    withdrawal_id: Option<Uuid>,
    reason: Option<&str>,
    before: Option<Value>,
    after: Option<Value>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO audit_log (id, actor, action, withdrawal_id, reason, before, after)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        Uuid::now_v7(),
        actor,
        action,
        withdrawal_id,
        reason,
        before,
        after
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Newest first; one withdrawal's rows when `withdrawal_id` is given; `before` is the cursor.
pub async fn list(
    pool: &PgPool,
    withdrawal_id: Option<Uuid>,
    before: Option<Uuid>,
    limit: i64,
) -> Result<Vec<AuditEntry>, sqlx::Error> {
    sqlx::query_as!(
        AuditEntry,
        "SELECT id, at, actor, action, withdrawal_id, reason, before, after FROM audit_log
         WHERE ($1::uuid IS NULL OR withdrawal_id = $1) AND ($2::uuid IS NULL OR id < $2)
         ORDER BY id DESC LIMIT $3",
        withdrawal_id,
        before,
        limit
    )
    .fetch_all(pool)
    .await
}
