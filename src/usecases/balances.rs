//! Users' balances: credit one (a deposit the website received), read them, list the ledger.

use std::sync::Arc;

use sqlx::PgPool;
use uuid::Uuid;

use super::Page;
use crate::currencies::Currencies;
use crate::domain::{Amount, Currency, UserId};
use crate::error::Error;
use crate::ledger::{self, Balance, CreditOutcome, LedgerEntry};
use crate::withdrawals::create::request::Refusal;

#[derive(Clone)]
pub struct Balances {
    pool: PgPool,
    currencies: Arc<Currencies>,
}

/// A credit as the website asks for it: the text is checked here, against the catalogue.
pub struct Credit {
    pub currency: String,
    pub amount: String,
    /// Unique per user: the same credit again changes nothing.
    pub reference: String,
}

/// A credit applied now, or found applied before with the same reference, currency and amount.
#[derive(Debug)]
pub struct Credited {
    pub entry: LedgerEntry,
    pub balance: Balance,
    pub replayed: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum CreditError {
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error("this reference was already credited with another currency or amount")]
    ReferenceConflict,
    /// The database is away, or one of its money guards refused the write (`crate::error`).
    #[error(transparent)]
    Failed(#[from] Error),
}

impl Balances {
    pub fn new(pool: PgPool, currencies: Arc<Currencies>) -> Self {
        Self { pool, currencies }
    }

    /// Credits `user`'s available balance. One transaction; idempotent on (user, reference).
    pub async fn credit(&self, user: &UserId, credit: Credit) -> Result<Credited, CreditError> {
        let Credit {
            currency: code,
            amount,
            reference,
        } = credit;
        let info = Currency::parse(&code)
            .and_then(|c| self.currencies.catalog().get(&c).cloned())
            .ok_or_else(|| {
                Refusal::UnsupportedCurrency(format!("{code:?} is not a supported currency"))
            })?;
        let amount = Amount::parse(&amount)
            .and_then(|a| a.check_precision(info.currency.as_str(), info.precision))
            .map_err(|e| Refusal::InvalidAmount(e.to_string()))?;
        if !(1..=128).contains(&reference.len()) || !reference.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(Refusal::ValidationFailed {
                field: "reference".into(),
                message: "1 to 128 visible ASCII characters".into(),
            }
            .into());
        }
        let (outcome, balance) =
            ledger::credit(&self.pool, user, &info.currency, amount, &reference).await?;
        let (entry, replayed) = match outcome {
            CreditOutcome::Created(entry) => {
                tracing::info!(user_id = %user, currency = %info.currency, %amount, %reference, "balance credited");
                (entry, false)
            }
            CreditOutcome::Replayed(entry) => (entry, true),
            CreditOutcome::Conflict => return Err(CreditError::ReferenceConflict),
        };
        Ok(Credited {
            entry,
            balance,
            replayed,
        })
    }

    /// By currency; an unknown user has none.
    pub async fn of(&self, user: &UserId) -> Result<Vec<Balance>, sqlx::Error> {
        ledger::balances(&self.pool, user).await
    }

    /// Newest first: up to `limit` entries after `before`, of `currency` if given.
    pub async fn ledger(
        &self,
        user: &UserId,
        currency: Option<&Currency>,
        before: Option<Uuid>,
        limit: i64,
    ) -> Result<Page<LedgerEntry>, sqlx::Error> {
        let currency = currency.map(Currency::as_str);
        let rows =
            ledger::list_entries(&self.pool, user.as_str(), currency, before, limit + 1).await?;
        Ok(Page::of(rows, limit, |e| e.id))
    }
}
