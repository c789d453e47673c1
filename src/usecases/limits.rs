//! A user's withdrawal limits per currency: the configured defaults, overridden per user.

use std::collections::HashMap;
use std::sync::Arc;

use rust_decimal::Decimal;
use sqlx::PgPool;

use crate::config::CurrencyLimits;
use crate::domain::{Currency, UserId};
use crate::withdrawals::create::limits::{self, EffectiveLimits};

#[derive(Clone)]
pub struct Limits {
    pool: PgPool,
    /// The configured defaults per currency code.
    defaults: Arc<HashMap<String, CurrencyLimits>>,
}

impl Limits {
    pub fn new(pool: PgPool, defaults: Arc<HashMap<String, CurrencyLimits>>) -> Self {
        Self { pool, defaults }
    }

    /// The limits in force: the user's own, else the currency's default (`None`: unlimited).
    pub async fn get(
        &self,
        user: &UserId,
        currency: &Currency,
    ) -> Result<EffectiveLimits, sqlx::Error> {
        let defaults = self
            .defaults
            .get(currency.as_str())
            .cloned()
            .unwrap_or_default();
        limits::effective(&self.pool, user.as_str(), currency.as_str(), &defaults).await
    }

    /// Overrides the user's limits (`None`: the default again) and returns those in force.
    pub async fn set(
        &self,
        user: &UserId,
        currency: &Currency,
        per_withdrawal: Option<Decimal>,
        per_day: Option<Decimal>,
    ) -> Result<EffectiveLimits, sqlx::Error> {
        limits::set_user_limits(
            &self.pool,
            user.as_str(),
            currency.as_str(),
            per_withdrawal,
            per_day,
        )
        .await?;
        tracing::info!(user_id = %user, %currency, ?per_withdrawal, ?per_day, "withdrawal limits set");
        self.get(user, currency).await
    }
}
