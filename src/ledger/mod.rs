//! Balances and their ledger. A balance changes only together with entries of four kinds:
//! credit (+available), hold (available -> held), release (held -> available), debit (held leaves).
//!
//! Each movement is written by one SQL statement that changes the balance row and writes the
//! entry together, guarded by a condition (`available >= amount`, `held >= amount`) and by
//! unique indexes (one hold and one settlement per withdrawal, one credit per reference), so a
//! second hold or debit is impossible rather than merely checked. A write one of them refuses
//! fails with the [`crate::error::Error`] variant naming it (`HeldTwice`, `SettledTwice`, ...).
//!
//! This module writes credits ([`credit`]). Holds and settlements are written in the
//! statements that write their withdrawal, so a hold and its withdrawal, or a settlement and its
//! status, commit as one: holds by the create statement (`withdrawals::create`, for one create
//! or many), debits and releases by `withdrawals::settle::write` (for one withdrawal or many,
//! balances aggregated per user and currency). They keep the guards and indexes above; a write that moves several balances locks them first through
//! [`lock_balances`], in one order.

mod entries;

pub use entries::{list_entries, EntryKind, LedgerEntry};

use rust_decimal::Decimal;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::domain::{Amount, Currency, UserId};

/// One currency of one user's balance.
#[derive(Debug, Clone, PartialEq)]
pub struct Balance {
    pub currency: String,
    pub available: Decimal,
    pub held: Decimal,
}

impl Balance {
    pub fn total(&self) -> Decimal {
        self.available + self.held
    }
}

/// The result of a credit request.
#[derive(Debug)]
pub enum CreditOutcome {
    Created(LedgerEntry),
    /// The same reference, currency and amount was credited before: nothing new happened.
    Replayed(LedgerEntry),
    /// The reference was used before with another currency or amount.
    Conflict,
}

/// Credits a user's balance. One transaction; idempotent on (user_id, reference).
pub async fn credit(
    pool: &PgPool,
    user_id: &UserId,
    currency: &Currency,
    amount: Amount,
    reference: &str,
) -> Result<(CreditOutcome, Balance), crate::error::Error> {
    let mut tx = pool.begin().await?;
    let inserted = sqlx::query_as!(
        LedgerEntry,
        r#"INSERT INTO ledger_entries (id, user_id, currency, kind, amount, reference)
           VALUES ($1, $2, $3, 'credit', $4, $5)
           ON CONFLICT (user_id, reference) WHERE kind = 'credit' DO NOTHING
           RETURNING id, user_id, currency, kind AS "kind: EntryKind", amount, withdrawal_id,
                     reference, created_at"#,
        Uuid::now_v7(),
        user_id.as_str(),
        currency.as_str(),
        amount.value(),
        reference
    )
    .fetch_optional(&mut *tx)
    .await?;

    let outcome = match inserted {
        Some(entry) => {
            sqlx::query!(
                "INSERT INTO balances (user_id, currency, available) VALUES ($1, $2, $3)
                 ON CONFLICT (user_id, currency)
                 DO UPDATE SET available = balances.available + EXCLUDED.available, updated_at = now()",
                user_id.as_str(),
                currency.as_str(),
                amount.value()
            )
            .execute(&mut *tx)
            .await?;
            CreditOutcome::Created(entry)
        }
        None => {
            let existing = sqlx::query_as!(
                LedgerEntry,
                r#"SELECT id, user_id, currency, kind AS "kind: EntryKind", amount, withdrawal_id,
                          reference, created_at
                   FROM ledger_entries WHERE user_id = $1 AND reference = $2 AND kind = 'credit'"#,
                user_id.as_str(),
                reference
            )
            .fetch_one(&mut *tx)
            .await?;
            if existing.currency == currency.as_str() && existing.amount == amount.value() {
                CreditOutcome::Replayed(existing)
            } else {
                CreditOutcome::Conflict
            }
        }
    };
    let balance = balance_of(&mut tx, user_id.as_str(), currency.as_str())
        .await?
        .unwrap_or_else(|| Balance {
            currency: currency.to_string(),
            available: Decimal::ZERO,
            held: Decimal::ZERO,
        });
    tx.commit().await?;
    Ok((outcome, balance))
}

async fn balance_of(
    conn: &mut PgConnection,
    user_id: &str,
    currency: &str,
) -> Result<Option<Balance>, sqlx::Error> {
    sqlx::query_as!(
        Balance,
        "SELECT currency, available, held FROM balances WHERE user_id = $1 AND currency = $2",
        user_id,
        currency
    )
    .fetch_optional(conn)
    .await
}

/// Every balance of a user, by currency code.
pub async fn balances(pool: &PgPool, user_id: &UserId) -> Result<Vec<Balance>, sqlx::Error> {
    sqlx::query_as!(
        Balance,
        "SELECT currency, available, held FROM balances WHERE user_id = $1 ORDER BY currency",
        user_id.as_str()
    )
    .fetch_all(pool)
    .await
}

/// Locks the balance rows of `pairs` (user, currency) for the caller's transaction, in
/// (user, currency) order, and returns each row's `available`. Every batch that touches
/// several balances takes them this way, so two batches cannot deadlock on them. A pair
/// without a row is simply absent from the answer.
pub async fn lock_balances(
    conn: &mut PgConnection,
    users: &[&str],
    currencies: &[&str],
) -> Result<Vec<(String, String, Decimal)>, sqlx::Error> {
    let rows = sqlx::query!(
        "SELECT user_id, currency, available FROM balances
         WHERE (user_id, currency) IN (SELECT * FROM unnest($1::text[], $2::text[]))
         ORDER BY user_id, currency
         FOR UPDATE",
        users as &[&str],
        currencies as &[&str]
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.user_id, r.currency, r.available))
        .collect())
}
