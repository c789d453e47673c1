//! Currencies, pairs and exchange estimates.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::lenient::{lenient_decimal, lenient_decimal_opt};

/// One entry of `POST /v2/currencies/list`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CurrencyListEntry {
    #[serde(default)]
    pub id: Option<i64>,
    /// `crypto` or `fiat`.
    #[serde(rename = "type")]
    pub kind: String,
    pub currency: String,
    #[serde(
        default,
        deserialize_with = "lenient_decimal_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub minimum_amount: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision: Option<u32>,
}

/// `POST /v2/exchange/calculate` request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExchangeCalculateRequest {
    pub sender_currency: String,
    pub receiver_currency: String,
    pub sender_amount: String,
}

/// `data` of `POST /v2/exchange/calculate`: an estimate, not a binding price.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExchangeEstimate {
    pub sender_currency: String,
    #[serde(deserialize_with = "lenient_decimal")]
    pub sender_amount: Decimal,
    pub receiver_currency: String,
    #[serde(deserialize_with = "lenient_decimal")]
    pub receiver_amount: Decimal,
    #[serde(default)]
    pub fee_currency: Option<String>,
    #[serde(default, deserialize_with = "lenient_decimal_opt")]
    pub fee_amount: Option<Decimal>,
    #[serde(default, deserialize_with = "lenient_decimal_opt")]
    pub price: Option<Decimal>,
    #[serde(default)]
    pub ts: Option<i64>,
}
