//! Quotes: what a user would receive for a conversion, asked of CoinsPaid before the user
//! confirms a withdrawal.

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use rust_decimal::{Decimal, RoundingStrategy};

use crate::coinspaid::wire::ExchangeCalculateRequest;
use crate::coinspaid::{CoinsPaidClient, ProviderError};
use crate::currencies::Currencies;
use crate::domain::Amount;
use crate::withdrawals::request::{validate_conversion, Refusal};

#[derive(Clone)]
pub struct Quotes {
    currencies: Arc<Currencies>,
    provider: CoinsPaidClient,
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
}

#[derive(Debug, thiserror::Error)]
pub enum QuoteError {
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// CoinsPaid gave no usable estimate (down, refusing us, or about another pair).
    #[error("CoinsPaid did not give an estimate; retry later")]
    Unavailable,
}

impl Quotes {
    pub fn new(currencies: Arc<Currencies>, provider: CoinsPaidClient) -> Self {
        Self {
            currencies,
            provider,
        }
    }

    /// Checks the conversion against the catalogue, then asks CoinsPaid. Writes nothing.
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
        let unavailable = |why: &dyn std::fmt::Display| {
            tracing::warn!(error = %why, "quote: CoinsPaid gave no estimate");
            QuoteError::Unavailable
        };
        let estimate =
            self.provider
                .exchange_calculate(&request)
                .await
                .map_err(|err| match err {
                    ProviderError::Http { status, .. }
                        if (400..500).contains(&status)
                            && status != 401
                            && status != 403
                            && status != 429 =>
                    {
                        Refusal::UnsupportedPair("CoinsPaid does not quote this pair".into()).into()
                    }
                    other => unavailable(&other),
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
            return Err(unavailable(&"the estimate is for another pair"));
        }
        let receive_precision = conversion.receiving.precision;
        Ok(Quote {
            amount: conversion.amount,
            currency: request.sender_currency,
            convert_to: request.receiver_currency,
            receive_amount: estimate
                .receiver_amount
                .round_dp_with_strategy(receive_precision, RoundingStrategy::ToZero),
            receive_precision,
            fee_amount: estimate.fee_amount,
            fee_currency: estimate.fee_currency,
            price: estimate.price,
            ts_fixed: estimate.ts_fixed,
            ts_release: estimate.ts_release,
            fix_period: estimate.fix_period,
            quoted_at: estimate
                .ts_fixed
                .and_then(|ts| Utc.timestamp_opt(ts, 0).single())
                .unwrap_or_else(Utc::now),
        })
    }
}
