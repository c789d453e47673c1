//! CoinsPaid's JSON shapes, exactly as they travel. Shared by the client, the callback
//! handler and the simulator, so both ends of every test speak the same format.
//!
//! Amounts travel as decimal strings. Incoming provider data is read leniently (a number
//! where a string was documented is still read), outgoing data strictly.

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize};

/// `POST /v2/withdrawal/crypto` request body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WithdrawalRequest {
    pub foreign_id: String,
    pub amount: String,
    pub currency: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub convert_to: Option<String>,
    pub address: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_user_reference: Option<String>,
}

/// `{"data": ...}` envelope used by every successful answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope<T> {
    pub data: T,
}

/// The `data` of a successful `POST /v2/withdrawal/crypto`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WithdrawalAccepted {
    pub id: i64,
    pub foreign_id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub status: String,
    #[serde(
        default,
        deserialize_with = "lenient_decimal_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub amount: Option<Decimal>,
    #[serde(
        default,
        deserialize_with = "lenient_decimal_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub sender_amount: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender_currency: Option<String>,
    #[serde(
        default,
        deserialize_with = "lenient_decimal_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub receiver_amount: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receiver_currency: Option<String>,
}

/// A 4xx body. Validation failures carry `errors`, authorization failures `error` + `code`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ErrorBody {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<serde_json::Value>,
}

impl ErrorBody {
    /// A validation error about our `foreign_id` most likely means "already used": the
    /// withdrawal may exist at CoinsPaid, so the answer is not a refusal we may release on.
    pub fn mentions_foreign_id(&self) -> bool {
        self.errors
            .as_ref()
            .is_some_and(|e| e.contains_key("foreign_id"))
    }

    /// One line for logs and the withdrawal's `error` field.
    pub fn summary(&self) -> String {
        if let Some(errors) = &self.errors {
            let parts: Vec<String> = errors
                .iter()
                .map(|(field, msg)| match msg {
                    serde_json::Value::String(s) => format!("{field}: {s}"),
                    other => format!("{field}: {other}"),
                })
                .collect();
            if !parts.is_empty() {
                return parts.join("; ");
            }
        }
        self.error
            .clone()
            .unwrap_or_else(|| "refused without a reason".into())
    }
}

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

#[derive(Deserialize)]
#[serde(untagged)]
enum StringOrNumber {
    String(String),
    Number(serde_json::Number),
}

fn lenient_decimal<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
    let text = match StringOrNumber::deserialize(d)? {
        StringOrNumber::String(s) => s,
        StringOrNumber::Number(n) => n.to_string(),
    };
    text.trim()
        .parse::<Decimal>()
        .or_else(|_| Decimal::from_scientific(text.trim()))
        .map_err(serde::de::Error::custom)
}

fn lenient_decimal_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
    #[derive(Deserialize)]
    struct Wrap(#[serde(deserialize_with = "lenient_decimal")] Decimal);
    Ok(Option::<Wrap>::deserialize(d)?.map(|Wrap(v)| v))
}

fn decimal_as_string<S: serde::Serializer>(v: &Decimal, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_withdrawal_callback() {
        let body = r#"{"id": 1, "foreign_id": "our-foreign-id", "end_user_reference": "12345",
 "type": "withdrawal",
 "crypto_address": {"id": 1, "currency": "BTC", "address": "115Mn1", "tag": null},
 "currency_sent": {"currency": "BTC", "amount": "0.02000000"},
 "currency_received": {"currency": "BTC", "amount": "0.02000000"},
 "transactions": [{"id": 1, "currency": "BTC", "transaction_type": "blockchain",
   "type": "withdrawal", "address": "115Mn1", "tag": null, "amount": "0.02",
   "txid": "bb04", "confirmations": 3}],
 "fees": [{"type": "mining", "currency": "BTC", "amount": "0.00007402"},
          {"type": "withdrawal", "currency": "BTC", "amount": 0.00002}],
 "error": "", "status": "confirmed"}"#;
        let cb: Callback = serde_json::from_str(body).unwrap();
        assert!(cb.is_withdrawal());
        assert_eq!(cb.foreign_id.as_deref(), Some("our-foreign-id"));
        assert_eq!(cb.fees[1].amount.to_string(), "0.00002");
        assert_eq!(cb.transactions[0].txid.as_deref(), Some("bb04"));
    }

    #[test]
    fn optional_request_fields_are_omitted_not_null() {
        let req = WithdrawalRequest {
            foreign_id: "f".into(),
            amount: "1.00".into(),
            currency: "BTC".into(),
            convert_to: None,
            address: "a".into(),
            tag: None,
            end_user_reference: Some("u1".into()),
        };
        let json = serde_json::to_string(&req).unwrap();
        assert!(
            !json.contains("convert_to") && !json.contains("tag"),
            "{json}"
        );
        assert!(json.contains(r#""amount":"1.00""#));
    }

    #[test]
    fn foreign_id_refusals_are_recognised() {
        let e: ErrorBody =
            serde_json::from_str(r#"{"errors":{"foreign_id":"already taken"}}"#).unwrap();
        assert!(e.mentions_foreign_id());
        let e: ErrorBody = serde_json::from_str(r#"{"errors":{"address":"bad"}}"#).unwrap();
        assert!(!e.mentions_foreign_id());
        assert_eq!(e.summary(), "address: bad");
    }
}
