//! Reading the ledger: entries, newest first, with keyset pagination on the UUIDv7 id.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    Credit,
    Hold,
    Release,
    Debit,
}

impl EntryKind {
    pub const ALL: [EntryKind; 4] = [Self::Credit, Self::Hold, Self::Release, Self::Debit];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Credit => "credit",
            Self::Hold => "hold",
            Self::Release => "release",
            Self::Debit => "debit",
        }
    }
}

impl TryFrom<String> for EntryKind {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str() == value)
            .ok_or_else(|| format!("unknown ledger entry kind {value:?}"))
    }
}

crate::db::text_column!(EntryKind);

#[derive(Debug, Clone, PartialEq)]
pub struct LedgerEntry {
    pub id: Uuid,
    pub user_id: String,
    pub currency: String,
    pub kind: EntryKind,
    pub amount: Decimal,
    pub withdrawal_id: Option<Uuid>,
    pub reference: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// Up to `limit` entries of a user (optionally one currency), older than `before` if given.
pub async fn list_entries(
    pool: &PgPool,
    user_id: &str,
    currency: Option<&str>,
    before: Option<Uuid>,
    limit: i64,
) -> Result<Vec<LedgerEntry>, sqlx::Error> {
    sqlx::query_as!(
        LedgerEntry,
        r#"SELECT id, user_id, currency, kind AS "kind: EntryKind", amount, withdrawal_id,
                  reference, created_at
           FROM ledger_entries
           WHERE user_id = $1
             AND ($2::text IS NULL OR currency = $2)
             AND ($3::uuid IS NULL OR id < $3)
           ORDER BY id DESC
           LIMIT $4"#,
        user_id,
        currency,
        before,
        limit
    )
    .fetch_all(pool)
    .await
}
