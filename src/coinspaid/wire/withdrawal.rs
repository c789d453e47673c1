//! What we send to `POST /v2/withdrawal/crypto` and what it answers.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::lenient::lenient_decimal_opt;

/// `POST /v2/withdrawal/crypto` request body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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
    /// MiCA travel rule: `sender_type`, `sender_data`, `receiver_type`, `receiver_data`
    /// at the top level of the body, each omitted when absent.
    #[serde(flatten)]
    pub travel_rule: TravelRuleFields,
}

/// The travel-rule fields of a withdrawal request, as stored beside the withdrawal
/// (`withdrawal_travel_rules.data`) and copied into every attempt's [`WithdrawalRequest`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TravelRuleFields {
    /// `natural` or `legal`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender_data: Option<PartyData>,
    /// `natural`, `legal`, or `self` (the customer's own wallet, sent without receiver_data).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receiver_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receiver_data: Option<PartyData>,
}

/// `sender_data` / `receiver_data`: a natural person (`first_name`, `last_name`,
/// `date_of_birth`) or a legal entity (`legal_name`, `country_of_registration`), either with
/// an optional `email`. Personal data, so `Debug` prints none of it.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PartyData {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_of_birth: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legal_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country_of_registration: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

impl std::fmt::Debug for PartyData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PartyData(<redacted>)")
    }
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
