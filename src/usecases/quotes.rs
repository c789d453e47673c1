//! Quotes: what a user would receive for a conversion, asked of CoinsPaid before the user
//! confirms a withdrawal, within CoinsPaid's limit on `/v2/exchange/calculate` (30 calls a
//! minute per IP address).
//!
//! Replicas usually leave through one address, so the budget is kept in PostgreSQL and
//! shared ([`take_call`]). Each estimate is kept per pair and amount band ([`band`]): a quote
//! is answered from one made in the last `reuse_secs` without asking again; otherwise from a
//! fresh estimate while the budget allows; otherwise from one up to `max_age_secs` old. Such
//! a recent estimate is scaled to the amount asked and marked as recent. With none, the
//! answer is `429` with the time until the budget frees a call: never a `502` because of it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::Deserialize;
use sqlx::PgPool;

use crate::coinspaid::wire::{ExchangeCalculateRequest, ExchangeEstimate};
use crate::coinspaid::{CoinsPaidClient, ProviderError};
use crate::currencies::Currencies;
use crate::domain::Amount;
use crate::withdrawals::create::request::{validate_conversion, Refusal};

const CALCULATE: &str = "/v2/exchange/calculate";

/// `[quotes]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuoteSettings {
    /// Calls to `/v2/exchange/calculate` in any minute, all replicas together.
    pub calculate_per_minute: u32,
    /// An estimate this young answers its pair and band without a call.
    pub reuse_secs: u64,
    /// When the budget is spent (or CoinsPaid gives no estimate), an estimate up to this old
    /// still answers, marked as recent.
    pub max_age_secs: u64,
}

impl QuoteSettings {
    /// Problems with these settings, for the configuration check.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !(1..=30).contains(&self.calculate_per_minute) {
            problems.push(
                "quotes.calculate_per_minute must be 1 to 30 (CoinsPaid allows 30 a minute per IP)"
                    .to_owned(),
            );
        }
        if self.reuse_secs > self.max_age_secs || self.max_age_secs > 3600 {
            problems.push(
                "quotes: reuse_secs must not exceed max_age_secs, which must not exceed 3600"
                    .to_owned(),
            );
        }
        problems
    }
}

#[derive(Clone)]
pub struct Quotes {
    currencies: Arc<Currencies>,
    provider: CoinsPaidClient,
    pool: PgPool,
    settings: QuoteSettings,
    /// One estimate at a time per pair and band in this process: concurrent quotes of one
    /// pair wait for the first one's estimate instead of each spending the budget.
    turns: Arc<Mutex<HashMap<EstimateKey, Arc<tokio::sync::Mutex<()>>>>>,
}

/// Where a quote's numbers come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuoteSource {
    /// Asked of CoinsPaid for this quote.
    Fresh,
    /// An estimate CoinsPaid gave at `quoted_at` for an amount of the same band, scaled to this
    /// amount.
    Recent,
}

impl QuoteSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fresh => "fresh",
            Self::Recent => "recent",
        }
    }
}

/// CoinsPaid's estimate, checked to be about the pair asked for.
#[derive(Debug)]
pub struct Quote {
    pub amount: Amount,
    pub currency: String,
    pub convert_to: String,
    /// Cut (never rounded up) to `receive_precision` decimals.
    pub receive_amount: Decimal,
    pub receive_precision: u32,
    pub fee_amount: Option<Decimal>,
    pub fee_currency: Option<String>,
    pub price: Option<Decimal>,
    pub ts_fixed: Option<i64>,
    pub ts_release: Option<i64>,
    pub fix_period: Option<i64>,
    /// `ts_fixed`, or when the answer came if CoinsPaid gives none.
    pub quoted_at: DateTime<Utc>,
    pub source: QuoteSource,
}

#[derive(Debug, thiserror::Error)]
pub enum QuoteError {
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// CoinsPaid gave no usable estimate (down, refusing us, or about another pair), and no
    /// recent one exists.
    #[error("CoinsPaid did not give an estimate; retry later")]
    Unavailable,
    /// The budget of calls is spent and no recent estimate of this pair and band exists.
    #[error("quotes for this pair are rate limited by CoinsPaid; retry in {} s", retry_after.as_secs())]
    Busy { retry_after: Duration },
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// An estimate's place in the cache: the pair and the amount's band.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct EstimateKey {
    currency: String,
    convert_to: String,
    band: i32,
}

/// The band of a positive amount: `k` with `2^k <= amount < 2^(k+1)`. An estimate is reused
/// only within its band, so scaling it changes the amount by less than a factor of two.
pub fn band(amount: Decimal) -> i32 {
    let mut k = 0;
    let mut low = Decimal::ONE;
    if amount >= Decimal::ONE {
        while low * Decimal::TWO <= amount {
            low *= Decimal::TWO;
            k += 1;
        }
    } else {
        while low > amount && !low.is_zero() {
            low /= Decimal::TWO;
            k -= 1;
        }
    }
    k
}

/// A stored estimate, as `quote_estimates` keeps it.
#[derive(Debug, Clone)]
struct Stored {
    sender_amount: Decimal,
    receiver_amount: Decimal,
    fee_amount: Option<Decimal>,
    fee_currency: Option<String>,
    price: Option<Decimal>,
    ts_fixed: Option<i64>,
    ts_release: Option<i64>,
    fix_period: Option<i64>,
    estimated_at: DateTime<Utc>,
}

/// Whether a call was taken from the budget, or how long until one frees.
enum Budget {
    Taken,
    Spent { retry_after: Duration },
}

/// Takes one call of `endpoint`'s budget (`per_minute` calls in any 60 seconds, all replicas
/// together) if one is free. One statement: a replica that took a call first holds the row
/// lock, and this one's condition is then checked against the row as that one left it.
async fn take_call(pool: &PgPool, endpoint: &str, per_minute: u32) -> Result<Budget, sqlx::Error> {
    let budget = sqlx::query!(
        r#"WITH taken AS (
             INSERT INTO provider_call_budgets AS b (endpoint, calls) VALUES ($1, ARRAY[now()])
             ON CONFLICT (endpoint) DO UPDATE
             SET calls = array_append(ARRAY(SELECT c FROM unnest(b.calls) c
                                            WHERE c > now() - interval '1 minute'), now())
             WHERE (SELECT count(*) FROM unnest(b.calls) c
                    WHERE c > now() - interval '1 minute') < $2
             RETURNING 1)
         SELECT EXISTS (SELECT 1 FROM taken) AS "taken!",
                (SELECT ceil(extract(epoch FROM min(c) + interval '1 minute' - now()))::bigint
                 FROM provider_call_budgets b, unnest(b.calls) c
                 WHERE b.endpoint = $1 AND c > now() - interval '1 minute') AS wait_secs"#,
        endpoint,
        i64::from(per_minute)
    )
    .fetch_one(pool)
    .await?;
    let (taken, wait_secs) = (budget.taken, budget.wait_secs);
    Ok(if taken {
        Budget::Taken
    } else {
        let secs = wait_secs.unwrap_or(60).clamp(1, 60);
        Budget::Spent {
            retry_after: Duration::from_secs(secs as u64),
        }
    })
}

impl Quotes {
    pub fn new(
        currencies: Arc<Currencies>,
        provider: CoinsPaidClient,
        pool: PgPool,
        settings: QuoteSettings,
    ) -> Self {
        Self {
            currencies,
            provider,
            pool,
            settings,
            turns: Arc::default(),
        }
    }

    fn turn(&self, key: &EstimateKey) -> Arc<tokio::sync::Mutex<()>> {
        let mut turns = self.turns.lock().expect("the turns map is never poisoned");
        turns.entry(key.clone()).or_default().clone()
    }

    /// Checks the conversion against the catalogue, then answers from CoinsPaid's estimate.
    /// Writes no withdrawal; keeps the estimate and the call in the budget.
    pub async fn quote(
        &self,
        amount: &str,
        currency: &str,
        convert_to: &str,
    ) -> Result<Quote, QuoteError> {
        let conversion = validate_conversion(
            amount,
            currency,
            Some(convert_to),
            &self.currencies.catalog(),
        )?;
        let request = ExchangeCalculateRequest {
            sender_currency: conversion.paying.currency.to_string(),
            receiver_currency: conversion.receiving.currency.to_string(),
            sender_amount: conversion.amount.to_string(),
        };
        let key = EstimateKey {
            currency: request.sender_currency.clone(),
            convert_to: request.receiver_currency.clone(),
            band: band(conversion.amount.value()),
        };
        let quote = |stored: Stored, source| {
            stored.scaled_to(
                &conversion.amount,
                &key,
                conversion.receiving.precision,
                source,
            )
        };
        let turn = self.turn(&key);
        let _turn = turn.lock().await;
        if let Some(stored) = self.recent(&key, self.settings.reuse_secs).await? {
            return Ok(quote(stored, QuoteSource::Recent));
        }
        let retry_after = match take_call(&self.pool, CALCULATE, self.settings.calculate_per_minute)
            .await?
        {
            Budget::Taken => match self.ask(&request).await {
                Ok(stored) => {
                    self.keep(&key, &stored).await?;
                    return Ok(quote(stored, QuoteSource::Fresh));
                }
                Err(Asked::Refused(refusal)) => return Err(refusal.into()),
                Err(Asked::NoEstimate) => None,
            },
            Budget::Spent { retry_after } => {
                tracing::info!(pair = %format!("{}/{}", key.currency, key.convert_to), "quote: the budget of CoinsPaid calls is spent");
                Some(retry_after)
            }
        };
        match self.recent(&key, self.settings.max_age_secs).await? {
            Some(stored) => Ok(quote(stored, QuoteSource::Recent)),
            None => Err(match retry_after {
                Some(retry_after) => QuoteError::Busy { retry_after },
                None => QuoteError::Unavailable,
            }),
        }
    }

    /// Asks CoinsPaid for an estimate of exactly `request`.
    async fn ask(&self, request: &ExchangeCalculateRequest) -> Result<Stored, Asked> {
        let no_estimate = |why: &dyn std::fmt::Display| {
            tracing::warn!(error = %why, "quote: CoinsPaid gave no estimate");
            Asked::NoEstimate
        };
        let estimate: ExchangeEstimate =
            self.provider
                .exchange_calculate(request)
                .await
                .map_err(|err| match err {
                    ProviderError::Http { status, .. }
                        if (400..500).contains(&status)
                            && status != 401
                            && status != 403
                            && status != 429 =>
                    {
                        Asked::Refused(Refusal::UnsupportedPair(
                            "CoinsPaid does not quote this pair".into(),
                        ))
                    }
                    other => no_estimate(&other),
                })?;
        // A price read in the wrong direction would be off by a factor of the price squared:
        // an answer about another pair is no answer.
        let names = |answered: &Option<String>, asked: &str| {
            answered
                .as_deref()
                .is_none_or(|a| a.eq_ignore_ascii_case(asked))
        };
        if !names(&estimate.sender_currency, &request.sender_currency)
            || !names(&estimate.receiver_currency, &request.receiver_currency)
        {
            return Err(no_estimate(&"the estimate is for another pair"));
        }
        let sender_amount: Decimal = request
            .sender_amount
            .parse()
            .map_err(|_| no_estimate(&"the amount asked is not a decimal"))?;
        Ok(Stored {
            sender_amount,
            receiver_amount: estimate.receiver_amount,
            fee_amount: estimate.fee_amount,
            fee_currency: estimate.fee_currency,
            price: estimate.price,
            ts_fixed: estimate.ts_fixed,
            ts_release: estimate.ts_release,
            fix_period: estimate.fix_period,
            estimated_at: Utc::now(),
        })
    }

    /// The latest estimate of `key` made within `max_age_secs`, if any.
    async fn recent(
        &self,
        key: &EstimateKey,
        max_age_secs: u64,
    ) -> Result<Option<Stored>, sqlx::Error> {
        if max_age_secs == 0 {
            return Ok(None);
        }
        sqlx::query_as!(
            Stored,
            "SELECT sender_amount, receiver_amount, fee_amount, fee_currency, price, ts_fixed,
                    ts_release, fix_period, estimated_at
             FROM quote_estimates
             WHERE currency = $1 AND convert_to = $2 AND band = $3
               AND estimated_at > now() - make_interval(secs => $4)",
            key.currency,
            key.convert_to,
            key.band,
            max_age_secs as f64
        )
        .fetch_optional(&self.pool)
        .await
    }

    /// Keeps `stored` as `key`'s latest estimate, for every replica.
    async fn keep(&self, key: &EstimateKey, stored: &Stored) -> Result<(), sqlx::Error> {
        sqlx::query!(
            "INSERT INTO quote_estimates
                 (currency, convert_to, band, sender_amount, receiver_amount, fee_amount,
                  fee_currency, price, ts_fixed, ts_release, fix_period, estimated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, now())
             ON CONFLICT (currency, convert_to, band) DO UPDATE
             SET sender_amount = EXCLUDED.sender_amount,
                 receiver_amount = EXCLUDED.receiver_amount,
                 fee_amount = EXCLUDED.fee_amount, fee_currency = EXCLUDED.fee_currency,
                 price = EXCLUDED.price, ts_fixed = EXCLUDED.ts_fixed,
                 ts_release = EXCLUDED.ts_release, fix_period = EXCLUDED.fix_period,
                 estimated_at = EXCLUDED.estimated_at",
            key.currency,
            key.convert_to,
            key.band,
            stored.sender_amount,
            stored.receiver_amount,
            stored.fee_amount,
            stored.fee_currency.as_deref(),
            stored.price,
            stored.ts_fixed,
            stored.ts_release,
            stored.fix_period
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

/// Why CoinsPaid's answer gave no estimate.
enum Asked {
    /// It does not quote this pair: the same refusal as a withdrawal's.
    Refused(Refusal),
    NoEstimate,
}

impl Stored {
    /// The quote this estimate gives for `amount` (of its band): the amounts scaled by
    /// `amount / sender_amount` (exactly CoinsPaid's numbers for the amount it was asked),
    /// what the user receives cut to `precision`.
    fn scaled_to(
        self,
        asked: &Amount,
        key: &EstimateKey,
        precision: u32,
        source: QuoteSource,
    ) -> Quote {
        let amount = asked.value();
        let scale = |value: Decimal| {
            if amount == self.sender_amount {
                value
            } else {
                value * amount / self.sender_amount
            }
        };
        Quote {
            amount: *asked,
            currency: key.currency.clone(),
            convert_to: key.convert_to.clone(),
            receive_amount: scale(self.receiver_amount)
                .round_dp_with_strategy(precision, RoundingStrategy::ToZero),
            receive_precision: precision,
            fee_amount: self.fee_amount.map(scale),
            fee_currency: self.fee_currency,
            price: self.price,
            ts_fixed: self.ts_fixed,
            ts_release: self.ts_release,
            fix_period: self.fix_period,
            quoted_at: self
                .ts_fixed
                .and_then(|ts| Utc.timestamp_opt(ts, 0).single())
                .unwrap_or(self.estimated_at),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(text: &str) -> Decimal {
        text.parse().unwrap()
    }

    #[test]
    fn bands_are_powers_of_two() {
        assert_eq!(band(d("1")), 0);
        assert_eq!(band(d("1.99")), 0);
        assert_eq!(band(d("2")), 1);
        assert_eq!(band(d("100.00")), 6);
        assert_eq!(band(d("127.99")), 6);
        assert_eq!(band(d("128")), 7);
        assert_eq!(band(d("0.5")), -1);
        assert_eq!(band(d("0.49")), -2);
        assert_eq!(band(d("0.00000001")), -27);
    }

    #[test]
    fn a_recent_estimate_is_scaled_to_the_amount_and_cut_never_rounded_up() {
        let stored = Stored {
            sender_amount: d("100"),
            receiver_amount: d("0.00166666"),
            fee_amount: Some(d("1.00")),
            fee_currency: Some("EUR".into()),
            price: Some(d("0.0000166666")),
            ts_fixed: None,
            ts_release: None,
            fix_period: None,
            estimated_at: Utc::now(),
        };
        let key = EstimateKey {
            currency: "EUR".into(),
            convert_to: "BTC".into(),
            band: 6,
        };
        let asked = |text: &str| Amount::parse(text).unwrap();
        let same = stored
            .clone()
            .scaled_to(&asked("100"), &key, 8, QuoteSource::Recent);
        assert_eq!(same.receive_amount, d("0.00166666"));
        let more = stored.scaled_to(&asked("150"), &key, 8, QuoteSource::Recent);
        // 0.00166666 * 1.5 = 0.00249999
        assert_eq!(more.receive_amount, d("0.00249999"));
        assert_eq!(more.fee_amount, Some(d("1.50")));
        assert_eq!(more.price, Some(d("0.0000166666")));
    }
}
