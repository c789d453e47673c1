//! What we send to `POST /v2/withdrawal/crypto` and what it answers.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use serde_json::Value;

use super::lenient::Field;
use crate::domain::travel_rule::Redactor;

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

impl TravelRuleFields {
    /// Scrubs every value of `sender_data` and `receiver_data` from provider text.
    pub fn redactor(&self) -> Redactor {
        Redactor::new(
            [&self.sender_data, &self.receiver_data]
                .into_iter()
                .flatten()
                .flat_map(PartyData::values),
        )
    }
}

impl PartyData {
    fn values(&self) -> impl Iterator<Item = &str> {
        [
            &self.first_name,
            &self.last_name,
            &self.date_of_birth,
            &self.legal_name,
            &self.country_of_registration,
            &self.email,
        ]
        .into_iter()
        .flatten()
        .map(String::as_str)
    }
}

impl std::fmt::Debug for PartyData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PartyData(<redacted>)")
    }
}

/// The `data` of a successful `POST /v2/withdrawal/crypto` (201 in the older docs; any 2xx is
/// read), reduced to what payoutd records.
#[derive(Debug, Clone, PartialEq)]
pub struct WithdrawalAccepted {
    pub id: i64,
    pub foreign_id: String,
    pub kind: Option<String>,
    pub status: Option<String>,
    pub sender_amount: Option<Decimal>,
    pub sender_currency: Option<String>,
    pub receiver_amount: Option<Decimal>,
    pub receiver_currency: Option<String>,
}

impl WithdrawalAccepted {
    /// Reads `{"data": {...}}`; `None` unless it names an id and a foreign_id, the least an
    /// answer must say to be taken as "created".
    pub fn from_answer(answer: &Value) -> Option<Self> {
        let data = answer.get("data")?.as_object()?;
        let text = |name: &str| Field::text(data.get(name)).read();
        let decimal = |name: &str| Field::decimal(data.get(name)).read();
        Some(Self {
            id: Field::integer(data.get("id")).read()?,
            foreign_id: text("foreign_id")?,
            kind: text("type"),
            status: text("status"),
            sender_amount: decimal("sender_amount"),
            sender_currency: text("sender_currency"),
            receiver_amount: decimal("receiver_amount"),
            receiver_currency: text("receiver_currency"),
        })
    }
}

/// Every field `POST /v2/withdrawal/crypto` documents (current and older docs). A field error
/// naming one of these is a refusal of the payout itself, even for a field we did not send
/// ("convert_to is required for a fiat balance").
pub const REQUEST_FIELDS: [&str; 12] = [
    "foreign_id",
    "amount",
    "amount_to",
    "currency",
    "convert_to",
    "address",
    "tag",
    "end_user_reference",
    "sender_type",
    "sender_data",
    "receiver_type",
    "receiver_data",
];

/// The `code`s of CoinsPaid's documented 403 answers: our key or signature, never the payout.
pub const AUTH_ERROR_CODES: [&str; 4] = [
    "bad_header_signature",
    "required_header_signature",
    "bad_header_key",
    "required_header_key",
];

/// The `code` of the documented `400 {"error":"Bad content format"}`: our body, not the payout.
pub const FORMAT_ERROR_CODE: &str = "bad_content_format";

/// An error answer: `{"errors": {"<field>": "<message>"}}` for field validation (the only
/// shape that refuses the payout itself), `{"error", "code"}` for authentication and format.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ErrorBody {
    /// `(field, message)` pairs of `errors`, in the order CoinsPaid gave them.
    pub errors: Vec<(String, String)>,
    pub error: Option<String>,
    pub code: Option<String>,
}

impl ErrorBody {
    /// `None` when the body is not a JSON object: a proxy's page, not CoinsPaid's answer.
    pub fn parse(body: &[u8]) -> Option<Self> {
        let value: Value = serde_json::from_slice(body).ok()?;
        let object = value.as_object()?;
        let errors = object
            .get("errors")
            .and_then(Value::as_object)
            .map(|errors| {
                errors
                    .iter()
                    .map(|(field, message)| {
                        let message = match message {
                            Value::String(s) => s.clone(),
                            Value::Array(items) => items
                                .iter()
                                .map(|m| m.as_str().map_or_else(|| m.to_string(), str::to_owned))
                                .collect::<Vec<_>>()
                                .join(", "),
                            other => other.to_string(),
                        };
                        (field.clone(), message)
                    })
                    .collect()
            })
            .unwrap_or_default();
        Some(Self {
            errors,
            error: Field::text(object.get("error")).read(),
            code: Field::text(object.get("code")).read(),
        })
    }

    /// The top-level request fields the `errors` object names (`sender_data.first_name` names
    /// `sender_data`).
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.errors
            .iter()
            .map(|(field, _)| field.split(['.', '[']).next().unwrap_or(field))
    }

    /// A validation error about our `foreign_id` most likely means "already used": the
    /// withdrawal may exist at CoinsPaid, so the answer is not a refusal we may release on.
    pub fn mentions_foreign_id(&self) -> bool {
        self.fields().any(|f| f == "foreign_id")
    }

    /// One of the documented 403 codes, or `bad_content_format`: our configuration or our bug.
    pub fn is_ours_to_fix(&self) -> bool {
        self.code
            .as_deref()
            .is_some_and(|c| c == FORMAT_ERROR_CODE || AUTH_ERROR_CODES.contains(&c))
    }

    /// Whether this error body, answering a look-up, is CoinsPaid saying it has no such record:
    /// a message in its error shape that is not one of its documented answers about the look-up
    /// request itself (credentials, body format, no or too many parameters). Its answer for an
    /// unknown foreign_id is not documented, so this reads the shape, not the words.
    pub fn says_no_record(&self) -> bool {
        const ABOUT_THE_REQUEST: [&str; 2] = ["no parameters present", "more than one param"];
        let has_message = !self.errors.is_empty() || self.error.is_some();
        let about_request = self.error.as_deref().is_some_and(|e| {
            let e = e.to_ascii_lowercase();
            ABOUT_THE_REQUEST.iter().any(|known| e.contains(known))
        });
        has_message && !about_request && !self.is_ours_to_fix()
    }

    /// One line for logs and the withdrawal's `error` field.
    pub fn summary(&self) -> String {
        if !self.errors.is_empty() {
            return self
                .errors
                .iter()
                .map(|(field, message)| format!("{field}: {message}"))
                .collect::<Vec<_>>()
                .join("; ");
        }
        match (&self.error, &self.code) {
            (Some(error), Some(code)) => format!("{error} ({code})"),
            (Some(error), None) => error.clone(),
            (None, Some(code)) => code.clone(),
            (None, None) => "refused without a reason".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            ..WithdrawalRequest::default()
        };
        let json = serde_json::to_string(&req).unwrap();
        assert!(
            !json.contains("convert_to") && !json.contains("tag") && !json.contains("sender"),
            "{json}"
        );
        assert!(json.contains(r#""amount":"1.00""#));
    }

    #[test]
    fn field_errors_name_top_level_fields() {
        let e = ErrorBody::parse(br#"{"errors":{"foreign_id":"already taken"}}"#).unwrap();
        assert!(e.mentions_foreign_id());
        let e = ErrorBody::parse(br#"{"errors":{"address":["bad","worse"]}}"#).unwrap();
        assert!(!e.mentions_foreign_id());
        assert_eq!(e.summary(), "address: bad, worse");
        let e = ErrorBody::parse(br#"{"errors":{"sender_data.first_name":"required"}}"#).unwrap();
        assert_eq!(e.fields().collect::<Vec<_>>(), ["sender_data"]);
        assert!(ErrorBody::parse(b"<html>").is_none());
    }

    #[test]
    fn documented_auth_and_format_errors_are_ours_to_fix() {
        for code in AUTH_ERROR_CODES.iter().chain([&FORMAT_ERROR_CODE]) {
            let body = format!(r#"{{"error":"whatever","code":"{code}"}}"#);
            assert!(ErrorBody::parse(body.as_bytes()).unwrap().is_ours_to_fix());
        }
        let e = ErrorBody::parse(br#"{"error":"Insufficient funds"}"#).unwrap();
        assert!(!e.is_ours_to_fix() && e.errors.is_empty());
    }

    #[test]
    fn accepted_answers_need_an_id_and_a_foreign_id() {
        let answer = serde_json::json!({"data": {"id": "71", "foreign_id": 5, "type": "withdrawal",
            "status": "processing", "amount": "0.01", "sender_amount": 0.01, "receiver_amount": {}}});
        let accepted = WithdrawalAccepted::from_answer(&answer).unwrap();
        assert_eq!((accepted.id, accepted.foreign_id.as_str()), (71, "5"));
        assert_eq!(accepted.receiver_amount, None);
        assert!(WithdrawalAccepted::from_answer(&serde_json::json!({"data": {"id": 1}})).is_none());
        assert!(
            WithdrawalAccepted::from_answer(&serde_json::json!({"id": 1, "foreign_id": "f"}))
                .is_none()
        );
    }
}
