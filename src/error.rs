//! The money path's one error: what creating, submitting, settling or crediting can fail with,
//! below the refusals a caller branches on (`Refusal`, `CreateError`, `ActionError`).
//!
//! The database refuses what must never happen to money through named constraints and guard
//! triggers (migrations/): `From<sqlx::Error>` maps each to
//! the variant saying what it prevented, so a log line or a test tells "settled twice" from
//! "the database is away". The code never relies on them firing (it claims with `ON CONFLICT`,
//! decides under row locks): one that fires is a broken invariant, its transaction is rolled
//! back and nothing of it stays. Every other database error stays [`Error::Database`], which
//! `db::failover` classifies (unavailable: retry; anything else: a bug).

use rust_decimal::Decimal;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A balance row cannot cover a movement the state machine decided (the settlement's
    /// `held >= amount` guard): a broken invariant, never a client mistake, since only what
    /// was held is ever settled.
    #[error("balance {user_id}/{currency} cannot cover a {kind} of {amount}")]
    Uncovered {
        user_id: String,
        currency: String,
        kind: &'static str,
        amount: Decimal,
    },
    /// A statement did less than the locks it ran under guarantee (a row of a batch not
    /// written, a hold that found no balance): nothing of it may stay.
    #[error("{0}")]
    Inconsistent(String),
    /// `ledger_entries_withdrawal_settlement_key`: a second debit or release of a withdrawal.
    #[error("a second settlement of a withdrawal was refused (ledger_entries_withdrawal_settlement_key)")]
    SettledTwice,
    /// `ledger_entries_withdrawal_hold_key`: a second hold for a withdrawal.
    #[error("a second hold for a withdrawal was refused (ledger_entries_withdrawal_hold_key)")]
    HeldTwice,
    /// `ledger_entries_credit_reference_key`: a user's credit reference used twice.
    #[error(
        "a second credit with one reference was refused (ledger_entries_credit_reference_key)"
    )]
    CreditedTwice,
    /// `withdrawals_foreign_id_key`: a foreign_id given to a second withdrawal.
    #[error("a foreign_id given to a second withdrawal was refused (withdrawals_foreign_id_key)")]
    ForeignIdReused,
    /// `idempotency_keys_pkey`: an Idempotency-Key claimed a second time.
    #[error("an idempotency key claimed twice was refused (idempotency_keys_pkey)")]
    KeyClaimedTwice,
    /// `withdrawal_references_pkey` or `withdrawals_reference_key`: a website's reference
    /// claimed by, or stored on, a second withdrawal.
    #[error("a reference claimed twice was refused ({constraint})")]
    ReferenceClaimedTwice { constraint: &'static str },
    /// `balances_available_not_negative` or `balances_held_not_negative`.
    #[error("a balance going negative was refused ({constraint})")]
    Overdrawn { constraint: &'static str },
    /// `withdrawals_amount_positive` or `ledger_entries_amount_positive`.
    #[error("an amount that is not positive was refused ({constraint})")]
    AmountNotPositive { constraint: &'static str },
    /// The append-only trigger of `ledger_entries` or `audit_log`: money history, or the
    /// record of who decided what, was to be changed or deleted.
    #[error("{table} is append-only: a change or deletion was refused")]
    AppendOnly { table: &'static str },
    /// `withdrawals_outcome_unknown_one_way`: "CoinsPaid may have it" was to be forgotten.
    #[error(
        "clearing a withdrawal's outcome_unknown was refused (withdrawals_outcome_unknown_one_way)"
    )]
    OutcomeUnknownCleared,
    #[error(transparent)]
    Database(sqlx::Error),
}

/// SQLSTATE of the append-only triggers (`insufficient_privilege`) and of the one-way
/// `outcome_unknown` trigger (`check_violation`).
const INSUFFICIENT_PRIVILEGE: &str = "42501";
const CHECK_VIOLATION: &str = "23514";

impl From<sqlx::Error> for Error {
    fn from(err: sqlx::Error) -> Self {
        guard_of(&err).unwrap_or(Self::Database(err))
    }
}

/// What a violation of a named guard means, given the guard's name.
type Meaning = fn(&'static str) -> Error;

/// The named constraints that guard money, each with what its violation means.
const GUARDS: &[(&str, Meaning)] = &[
    ("ledger_entries_withdrawal_settlement_key", |_| {
        Error::SettledTwice
    }),
    ("ledger_entries_withdrawal_hold_key", |_| Error::HeldTwice),
    ("ledger_entries_credit_reference_key", |_| {
        Error::CreditedTwice
    }),
    ("withdrawals_foreign_id_key", |_| Error::ForeignIdReused),
    ("idempotency_keys_pkey", |_| Error::KeyClaimedTwice),
    ("withdrawal_references_pkey", |constraint| {
        Error::ReferenceClaimedTwice { constraint }
    }),
    ("withdrawals_reference_key", |constraint| {
        Error::ReferenceClaimedTwice { constraint }
    }),
    ("balances_available_not_negative", |constraint| {
        Error::Overdrawn { constraint }
    }),
    ("balances_held_not_negative", |constraint| {
        Error::Overdrawn { constraint }
    }),
    ("withdrawals_amount_positive", |constraint| {
        Error::AmountNotPositive { constraint }
    }),
    ("ledger_entries_amount_positive", |constraint| {
        Error::AmountNotPositive { constraint }
    }),
];

/// The money guard `err` is a violation of, if it is one: by constraint name, or for the
/// triggers (which name no constraint) by SQLSTATE and their own message.
fn guard_of(err: &sqlx::Error) -> Option<Error> {
    let db = err.as_database_error()?;
    if let Some(constraint) = db.constraint() {
        let (name, guard) = GUARDS.iter().find(|(name, _)| *name == constraint)?;
        return Some(guard(name));
    }
    let message = db.message();
    match db.code().as_deref()? {
        INSUFFICIENT_PRIVILEGE if message == "ledger_entries is append-only" => {
            Some(Error::AppendOnly {
                table: "ledger_entries",
            })
        }
        INSUFFICIENT_PRIVILEGE if message == "audit_log is append-only" => {
            Some(Error::AppendOnly { table: "audit_log" })
        }
        CHECK_VIOLATION if message.starts_with("withdrawals.outcome_unknown cannot be cleared") => {
            Some(Error::OutcomeUnknownCleared)
        }
        _ => None,
    }
}

impl crate::db::failover::MaybeUnavailable for Error {
    fn database_unavailable(&self) -> bool {
        matches!(self, Error::Database(e) if crate::db::failover::is_unavailable(e))
    }
}
