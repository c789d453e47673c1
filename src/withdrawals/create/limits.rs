//! Withdrawal limits: at most so much per withdrawal and per rolling 24 hours, per user and
//! currency. Configured defaults per currency (`[limits.EUR]`), overridden per user in
//! `user_limits`. Judged by the create's batch (`group.rs`) on figures read under its locks.

use rust_decimal::Decimal;
use serde::Deserialize;
use serde::Serialize;
use sqlx::PgPool;

use crate::withdrawals::create::request::Refusal;

/// Limits for one currency; absent means unlimited.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CurrencyLimits {
    pub max_per_withdrawal: Option<Decimal>,
    /// Over any rolling 24 hours, counting withdrawals that were not cancelled or rejected.
    pub max_per_day: Option<Decimal>,
}

/// The limits in force for one user and currency.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EffectiveLimits {
    pub currency: String,
    #[serde(with = "crate::domain::money::decimal_string_opt")]
    pub max_per_withdrawal: Option<Decimal>,
    #[serde(with = "crate::domain::money::decimal_string_opt")]
    pub max_per_day: Option<Decimal>,
}

/// The user's limits applied to one withdrawal of `amount`, with `used_before` already
/// requested in the last 24 hours (not counting this one). Pure: the create paths read the
/// numbers under the balance lock and call this.
pub fn judge(
    amount: Decimal,
    currency: &str,
    max_per_withdrawal: Option<Decimal>,
    max_per_day: Option<Decimal>,
    used_before: Decimal,
) -> Result<(), Refusal> {
    if let Some(max) = max_per_withdrawal.filter(|max| amount > *max) {
        return Err(Refusal::LimitExceeded(format!(
            "at most {max} {currency} per withdrawal"
        )));
    }
    if let Some(max) = max_per_day.filter(|max| used_before + amount > *max) {
        return Err(Refusal::LimitExceeded(format!(
            "at most {max} {currency} per 24 hours; {used_before} already requested"
        )));
    }
    Ok(())
}

/// The merchant-wide cap applied to one withdrawal of `amount`, with `used_before` requested
/// across all users in the last 24 hours (not counting this one). Pure.
pub fn judge_merchant_cap(
    amount: Decimal,
    currency: &str,
    cap: Decimal,
    used_before: Decimal,
) -> Result<(), Refusal> {
    if used_before + amount > cap {
        return Err(Refusal::LimitExceeded(format!(
            "the merchant-wide cap of {cap} {currency} per 24 hours is reached; try later"
        )));
    }
    Ok(())
}

/// Sets (or, with both `None`, removes) a user's override for one currency. One statement.
pub async fn set_user_limits(
    pool: &PgPool,
    user_id: &str,
    currency: &str,
    max_per_withdrawal: Option<Decimal>,
    max_per_day: Option<Decimal>,
) -> Result<(), sqlx::Error> {
    if max_per_withdrawal.is_none() && max_per_day.is_none() {
        sqlx::query!(
            "DELETE FROM user_limits WHERE user_id = $1 AND currency = $2",
            user_id,
            currency
        )
        .execute(pool)
        .await?;
        return Ok(());
    }
    sqlx::query!(
        "INSERT INTO user_limits (user_id, currency, max_per_withdrawal, max_per_day) VALUES ($1, $2, $3, $4)
         ON CONFLICT (user_id, currency) DO UPDATE
         SET max_per_withdrawal = EXCLUDED.max_per_withdrawal, max_per_day = EXCLUDED.max_per_day, updated_at = now()",
        user_id,
        currency,
        max_per_withdrawal,
        max_per_day
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// The limits in force for `user_id` in `currency`: the override where set, else the default.
pub async fn effective(
    pool: &PgPool,
    user_id: &str,
    currency: &str,
    defaults: &CurrencyLimits,
) -> Result<EffectiveLimits, sqlx::Error> {
    sqlx::query_as!(
        EffectiveLimits,
        r#"SELECT $2::text AS "currency!",
                  COALESCE(l.max_per_withdrawal, $3) AS max_per_withdrawal,
                  COALESCE(l.max_per_day, $4) AS max_per_day
           FROM (SELECT 1) AS one
           LEFT JOIN user_limits l ON l.user_id = $1 AND l.currency = $2"#,
        user_id,
        currency,
        defaults.max_per_withdrawal,
        defaults.max_per_day
    )
    .fetch_one(pool)
    .await
}
