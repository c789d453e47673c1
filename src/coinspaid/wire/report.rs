//! What CoinsPaid reports about a transaction: callbacks and `/v2/transactions/info`.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::lenient::{decimal_as_string, lenient_decimal, lenient_decimal_opt};

/// `{"currency","amount"}` pairs in callbacks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CurrencyAmount {
    pub currency: String,
    #[serde(
        deserialize_with = "lenient_decimal",
        serialize_with = "decimal_as_string"
    )]
    pub amount: Decimal,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fee {
    #[serde(rename = "type")]
    pub kind: String,
    pub currency: String,
    #[serde(
        deserialize_with = "lenient_decimal",
        serialize_with = "decimal_as_string"
    )]
    pub amount: Decimal,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CryptoAddress {
    #[serde(default)]
    pub id: Option<i64>,
    pub currency: String,
    pub address: String,
    #[serde(default)]
    pub tag: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transaction {
    #[serde(default)]
    pub id: Option<i64>,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub transaction_type: Option<String>,
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default)]
    pub tag: Option<String>,
    #[serde(default, deserialize_with = "lenient_decimal_opt")]
    pub amount: Option<Decimal>,
    #[serde(default)]
    pub txid: Option<String>,
    #[serde(default)]
    pub confirmations: Option<i64>,
}

/// A callback body. Only `id`, `type` and `status` are always present; a deposit callback
/// carries its `foreign_id` inside `crypto_address`, a withdrawal callback at the top level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Callback {
    pub id: i64,
    #[serde(rename = "type")]
    pub kind: String,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub foreign_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_user_reference: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crypto_address: Option<CryptoAddress>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency_sent: Option<CurrencyAmount>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency_received: Option<CurrencyAmount>,
    #[serde(default)]
    pub transactions: Vec<Transaction>,
    #[serde(default)]
    pub fees: Vec<Fee>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Callback {
    /// Withdrawal callbacks are the only ones this service acts on.
    pub fn is_withdrawal(&self) -> bool {
        matches!(self.kind.as_str(), "withdrawal" | "withdrawal_exchange")
    }
}

/// `POST /v2/transactions/info` request: look a transaction up by our id or theirs.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TransactionInfoRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub foreign_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
}

/// One transaction as `/v2/transactions/info` describes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TransactionInfo {
    pub id: i64,
    #[serde(default)]
    pub foreign_id: Option<String>,
    #[serde(rename = "type")]
    pub kind: String,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency_sent: Option<CurrencyAmount>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency_received: Option<CurrencyAmount>,
    #[serde(default)]
    pub transactions: Vec<Transaction>,
    #[serde(default)]
    pub fees: Vec<Fee>,
}

/// `data` of `/v2/transactions/info` is documented as an object; some integrations see a list.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T> OneOrMany<T> {
    pub fn into_first(self) -> Option<T> {
        match self {
            Self::One(t) => Some(t),
            Self::Many(v) => v.into_iter().next(),
        }
    }
}
