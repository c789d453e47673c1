//! The `withdrawals` table: the row type and the queries that read it.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::coinspaid::wire::Fee;
use crate::domain::{Currency, ForeignId, UserId, WithdrawalStatus};

impl TryFrom<String> for WithdrawalStatus {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        WithdrawalStatus::parse(&value).ok_or_else(|| format!("unknown status {value:?}"))
    }
}

crate::db::text_column!(WithdrawalStatus);
// Decoded by parsing: a row holding anything else fails to read rather than passing for one.
crate::db::text_column!(ForeignId);
crate::db::text_column!(UserId);
crate::db::text_column!(Currency);

#[derive(Debug, Clone)]
pub struct Withdrawal {
    pub id: Uuid,
    pub foreign_id: ForeignId,
    pub user_id: UserId,
    pub amount: Decimal,
    pub currency: Currency,
    pub convert_to: Option<Currency>,
    pub address: String,
    pub tag: Option<String>,
    pub end_user_reference: String,
    /// The website's own permanent id for the payout, if it gave one.
    pub reference: Option<String>,
    pub status: WithdrawalStatus,
    pub provider_id: Option<i64>,
    pub provider_status: Option<String>,
    pub sent_amount: Option<Decimal>,
    /// As CoinsPaid reported it (not parsed: its text, whatever it says).
    pub sent_currency: Option<String>,
    pub received_amount: Option<Decimal>,
    pub received_currency: Option<String>,
    pub fees: Json<Vec<Fee>>,
    pub txids: Json<Vec<String>>,
    pub error: Option<String>,
    /// Why the last provider report was not applied; shown to operators.
    pub anomaly: Option<String>,
    /// An earlier submission attempt had no definitive answer: the payout may exist.
    pub outcome_unknown: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A compile-checked statement over every `Withdrawal` column: `sqlx::$macro!` on `$head`,
/// the columns (unqualified, in `Withdrawal`'s order, typed for the macros), `$tail`, then
/// the arguments. `$head` and `$tail` are string literals joined by `+`:
///
/// ```text
/// withdrawal_query!(query_as!(Withdrawal,), ["SELECT "], [" FROM withdrawals WHERE id = $1"], id)
/// ```
///
/// With `query!()` and more columns in `$tail`, the record becomes a `Withdrawal` through
/// [`withdrawal_from_record!`]. With `optional,` first, every column may be NULL (a row of an
/// outer join that found no withdrawal): read it with `withdrawal_from_record!(optional ..)`.
macro_rules! withdrawal_query {
    (optional, $macro:ident!($($pre:tt)*), [$($head:tt)+], [$($tail:tt)+] $($args:tt)*) => {
        sqlx::$macro!(
            $($pre)* $($head)+
                + r#"id AS "id?", foreign_id AS "foreign_id?: crate::domain::ForeignId",
                     user_id AS "user_id?: crate::domain::UserId", amount AS "amount?",
                     currency AS "currency?: crate::domain::Currency",
                     convert_to AS "convert_to: crate::domain::Currency", address AS "address?",
                     tag, end_user_reference AS "end_user_reference?", reference,
                     status AS "status?: crate::domain::WithdrawalStatus",
                     provider_id, provider_status, sent_amount, sent_currency, received_amount,
                     received_currency,
                     fees AS "fees?: sqlx::types::Json<Vec<crate::coinspaid::wire::Fee>>",
                     txids AS "txids?: sqlx::types::Json<Vec<String>>",
                     error, anomaly, outcome_unknown AS "outcome_unknown?",
                     created_at AS "created_at?", updated_at AS "updated_at?""#
                + $($tail)+
            $($args)*
        )
    };
    ($macro:ident!($($pre:tt)*), [$($head:tt)+], [$($tail:tt)+] $($args:tt)*) => {
        sqlx::$macro!(
            $($pre)* $($head)+
                + "id, foreign_id AS \"foreign_id: crate::domain::ForeignId\",
                   user_id AS \"user_id: crate::domain::UserId\", amount,
                   currency AS \"currency: crate::domain::Currency\",
                   convert_to AS \"convert_to: crate::domain::Currency\", address, tag,
                   end_user_reference, reference,
                   status AS \"status: crate::domain::WithdrawalStatus\",
                   provider_id, provider_status, sent_amount, sent_currency, received_amount,
                   received_currency,
                   fees AS \"fees: sqlx::types::Json<Vec<crate::coinspaid::wire::Fee>>\",
                   txids AS \"txids: sqlx::types::Json<Vec<String>>\",
                   error, anomaly, outcome_unknown, created_at, updated_at"
                + $($tail)+
            $($args)*
        )
    };
}
pub(crate) use withdrawal_query;

/// The `Withdrawal` in a record of [`withdrawal_query!`]`(query!() ..)`, moved out field by
/// field (the record's other fields stay usable). `optional` reads a record of
/// `withdrawal_query!(optional, ..)`: `Some` when the row holds a withdrawal, `None` when its
/// columns are NULL.
macro_rules! withdrawal_from_record {
    (optional $record:expr) => {{
        let r = $record;
        match (
            r.id,
            r.foreign_id,
            r.user_id,
            r.amount,
            r.currency,
            r.address,
            r.end_user_reference,
            r.status,
            r.fees,
            r.txids,
            r.outcome_unknown,
            r.created_at,
            r.updated_at,
        ) {
            (
                Some(id),
                Some(foreign_id),
                Some(user_id),
                Some(amount),
                Some(currency),
                Some(address),
                Some(end_user_reference),
                Some(status),
                Some(fees),
                Some(txids),
                Some(outcome_unknown),
                Some(created_at),
                Some(updated_at),
            ) => Some($crate::withdrawals::store::Withdrawal {
                id,
                foreign_id,
                user_id,
                amount,
                currency,
                convert_to: r.convert_to,
                address,
                tag: r.tag,
                end_user_reference,
                reference: r.reference,
                status,
                provider_id: r.provider_id,
                provider_status: r.provider_status,
                sent_amount: r.sent_amount,
                sent_currency: r.sent_currency,
                received_amount: r.received_amount,
                received_currency: r.received_currency,
                fees,
                txids,
                error: r.error,
                anomaly: r.anomaly,
                outcome_unknown,
                created_at,
                updated_at,
            }),
            _ => None,
        }
    }};
    ($record:expr) => {
        $crate::withdrawals::store::Withdrawal {
            id: $record.id,
            foreign_id: $record.foreign_id,
            user_id: $record.user_id,
            amount: $record.amount,
            currency: $record.currency,
            convert_to: $record.convert_to,
            address: $record.address,
            tag: $record.tag,
            end_user_reference: $record.end_user_reference,
            reference: $record.reference,
            status: $record.status,
            provider_id: $record.provider_id,
            provider_status: $record.provider_status,
            sent_amount: $record.sent_amount,
            sent_currency: $record.sent_currency,
            received_amount: $record.received_amount,
            received_currency: $record.received_currency,
            fees: $record.fees,
            txids: $record.txids,
            error: $record.error,
            anomaly: $record.anomaly,
            outcome_unknown: $record.outcome_unknown,
            created_at: $record.created_at,
            updated_at: $record.updated_at,
        }
    };
}
pub(crate) use withdrawal_from_record;

pub async fn get(pool: &PgPool, id: Uuid) -> Result<Option<Withdrawal>, sqlx::Error> {
    withdrawal_query!(
        query_as!(Withdrawal,),
        ["SELECT "],
        [" FROM withdrawals WHERE id = $1"],
        id
    )
    .fetch_optional(pool)
    .await
}

/// Locks the withdrawal's row for the rest of the caller's transaction. Every change of
/// status goes through this lock, so concurrent callbacks and submit answers serialize.
pub async fn lock_by_id(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<Option<Withdrawal>, sqlx::Error> {
    withdrawal_query!(
        query_as!(Withdrawal,),
        ["SELECT "],
        [" FROM withdrawals WHERE id = $1 FOR UPDATE"],
        id
    )
    .fetch_optional(conn)
    .await
}

pub async fn lock_by_foreign_id(
    conn: &mut PgConnection,
    foreign_id: &str,
) -> Result<Option<Withdrawal>, sqlx::Error> {
    withdrawal_query!(
        query_as!(Withdrawal,),
        ["SELECT "],
        [" FROM withdrawals WHERE foreign_id = $1 FOR UPDATE"],
        foreign_id
    )
    .fetch_optional(conn)
    .await
}

/// Filters for listing, all optional and combined; `before` is the keyset cursor (the last id
/// of the previous page).
#[derive(Debug, Default, Clone)]
pub struct ListFilter {
    pub user_id: Option<String>,
    pub status: Option<WithdrawalStatus>,
    pub foreign_id: Option<String>,
    /// The website's permanent `reference`.
    pub reference: Option<String>,
    /// The `Idempotency-Key` it was created with, while the key is kept.
    pub idempotency_key: Option<String>,
    /// Only those whose `updated_at` is later.
    pub updated_after: Option<DateTime<Utc>>,
    pub before: Option<Uuid>,
}

/// Newest first (UUIDv7 ids are time-ordered).
pub async fn list(
    pool: &PgPool,
    filter: &ListFilter,
    limit: i64,
) -> Result<Vec<Withdrawal>, sqlx::Error> {
    withdrawal_query!(
        query_as!(Withdrawal,),
        ["SELECT "],
        [" FROM withdrawals
             WHERE ($1::text IS NULL OR user_id = $1)
               AND ($2::text IS NULL OR status = $2)
               AND ($3::uuid IS NULL OR id < $3)
               AND ($5::text IS NULL OR foreign_id = $5)
               AND ($6::text IS NULL OR reference = $6)
               AND ($7::text IS NULL
                    OR id = (SELECT withdrawal_id FROM idempotency_keys WHERE key = $7))
               AND ($8::timestamptz IS NULL OR updated_at > $8)
             ORDER BY id DESC LIMIT $4"],
        filter.user_id.as_deref(),
        filter.status.map(|s| s.as_str()),
        filter.before,
        limit,
        filter.foreign_id.as_deref(),
        filter.reference.as_deref(),
        filter.idempotency_key.as_deref(),
        filter.updated_after
    )
    .fetch_all(pool)
    .await
}
