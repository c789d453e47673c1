//! MiCA travel-rule data: who sends and who receives a withdrawal, in CoinsPaid's shapes
//! (docs.cryptoprocessing.com, "User data collection" and `POST /v2/withdrawal/crypto`):
//! `sender_type` `natural` | `legal` with `sender_data`, and `receiver_type` `natural` |
//! `legal` | `self` with `receiver_data`. A natural person is `first_name`, `last_name`,
//! `date_of_birth` (`1995-08-17`); a legal entity is `legal_name` and
//! `country_of_registration` (`DEU`); both may carry an `email`. `self` is the customer's
//! own wallet, for which CoinsPaid asks no receiver data.
//!
//! This is personal data: `Debug` never prints it, and no refusal repeats a value, only the
//! field (`sender_data.date_of_birth`), because refusals end up in logs and API answers.

use std::fmt;

use chrono::NaiveDate;
use serde::Serialize;
use serde_json::{Map, Value};

use data::{party, stated, Role};

pub mod data;
pub mod redact;

pub use redact::Redactor;

/// A refusal naming the field, e.g. `sender_data.date_of_birth`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct NaturalPerson {
    first_name: String,
    last_name: String,
    date_of_birth: NaiveDate,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<String>,
}

#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct LegalEntity {
    legal_name: String,
    /// ISO 3166-1 alpha-3, e.g. `DEU`.
    country_of_registration: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<String>,
}

/// A sender, or a receiver other than the customer's own wallet. Serializes as its `*_data`.
#[derive(Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Party {
    Natural(NaturalPerson),
    Legal(LegalEntity),
}

impl Party {
    /// The `*_type` word CoinsPaid expects.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Natural(_) => "natural",
            Self::Legal(_) => "legal",
        }
    }
}

#[derive(Clone, PartialEq, Eq)]
pub enum Receiver {
    Party(Party),
    /// `receiver_type: self`: the customer withdraws to a wallet of their own.
    OwnWallet,
}

impl Receiver {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Party(party) => party.kind(),
            Self::OwnWallet => "self",
        }
    }
}

impl fmt::Debug for Party {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Party::{}(<redacted>)", self.kind())
    }
}

impl fmt::Debug for NaturalPerson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NaturalPerson(<redacted>)")
    }
}

impl fmt::Debug for LegalEntity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LegalEntity(<redacted>)")
    }
}

impl fmt::Debug for Receiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Party(party) => write!(f, "Receiver::{party:?}"),
            Self::OwnWallet => f.write_str("Receiver::OwnWallet"),
        }
    }
}

/// The four fields as a request (or the configuration) stated them, not yet parsed.
#[derive(Clone, Default, PartialEq)]
pub struct TravelRuleInput {
    pub sender_type: Option<String>,
    pub sender_data: Option<Map<String, Value>>,
    pub receiver_type: Option<String>,
    pub receiver_data: Option<Map<String, Value>>,
}

impl fmt::Debug for TravelRuleInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let given = |data: &Option<Map<String, Value>>| data.as_ref().map(|_| "<redacted>");
        f.debug_struct("TravelRuleInput")
            .field("sender_type", &self.sender_type)
            .field("sender_data", &given(&self.sender_data))
            .field("receiver_type", &self.receiver_type)
            .field("receiver_data", &given(&self.receiver_data))
            .finish()
    }
}

/// Parsed travel-rule data; either party may be absent (not given and not defaulted).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TravelRule {
    pub sender: Option<Party>,
    pub receiver: Option<Receiver>,
}

/// The stored and sent shape: CoinsPaid's four fields, absent ones omitted.
#[derive(Serialize)]
struct Fields<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    sender_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sender_data: Option<&'a Party>,
    #[serde(skip_serializing_if = "Option::is_none")]
    receiver_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    receiver_data: Option<&'a Party>,
}

impl TravelRule {
    /// Parses the stated fields. `today` bounds a date of birth (it must be in the past).
    pub fn parse(input: &TravelRuleInput, today: NaiveDate) -> Result<Self, FieldError> {
        let sender = match stated(Role::Sender, &input.sender_type, &input.sender_data)? {
            None => None,
            Some(("natural" | "legal", None)) => {
                return Err(FieldError::new(
                    "sender_data",
                    "is required when sender_type is given",
                ))
            }
            Some((kind @ ("natural" | "legal"), Some(data))) => {
                Some(party(Role::Sender, kind, data, today)?)
            }
            Some(_) => {
                return Err(FieldError::new("sender_type", "must be natural or legal"));
            }
        };
        let receiver = match stated(Role::Receiver, &input.receiver_type, &input.receiver_data)? {
            None => None,
            Some(("self", None)) => Some(Receiver::OwnWallet),
            Some(("self", Some(_))) => {
                return Err(FieldError::new(
                    "receiver_data",
                    "must be absent when receiver_type is self",
                ))
            }
            Some(("natural" | "legal", None)) => {
                return Err(FieldError::new(
                    "receiver_data",
                    "is required when receiver_type is natural or legal",
                ))
            }
            Some((kind @ ("natural" | "legal"), Some(data))) => {
                Some(Receiver::Party(party(Role::Receiver, kind, data, today)?))
            }
            Some(_) => {
                return Err(FieldError::new(
                    "receiver_type",
                    "must be natural, legal or self",
                ))
            }
        };
        Ok(Self { sender, receiver })
    }

    pub fn is_empty(&self) -> bool {
        self.sender.is_none() && self.receiver.is_none()
    }

    /// CoinsPaid's four fields as one JSON object, or `None` when there is nothing to send.
    /// Always the same bytes for the same data: fields in a fixed order.
    pub fn to_json(&self) -> Option<Value> {
        if self.is_empty() {
            return None;
        }
        let fields = Fields {
            sender_type: self.sender.as_ref().map(Party::kind),
            sender_data: self.sender.as_ref(),
            receiver_type: self.receiver.as_ref().map(Receiver::kind),
            receiver_data: match &self.receiver {
                Some(Receiver::Party(party)) => Some(party),
                _ => None,
            },
        };
        Some(serde_json::to_value(fields).expect("plain strings always serialize"))
    }
}

/// The merchant's defaults and whether the data is required, from configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TravelRulePolicy {
    pub required: bool,
    /// Stands in for a request that names no sender at all.
    pub default_sender: Option<Party>,
    /// Stands in for a request that names no receiver at all.
    pub default_receiver: Option<Receiver>,
}

impl TravelRulePolicy {
    /// What is sent: the stated parties, defaults for absent ones; refused when required and
    /// still missing.
    pub fn apply(&self, stated: &TravelRule) -> Result<TravelRule, FieldError> {
        let sender = stated
            .sender
            .clone()
            .or_else(|| self.default_sender.clone());
        let receiver = stated
            .receiver
            .clone()
            .or_else(|| self.default_receiver.clone());
        if self.required {
            let missing = "is required (with its *_data) and no default is configured";
            if sender.is_none() {
                return Err(FieldError::new("sender_type", missing));
            }
            if receiver.is_none() {
                return Err(FieldError::new("receiver_type", missing));
            }
        }
        Ok(TravelRule { sender, receiver })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NATURAL: &str =
        r#"{"first_name":"Friedrich","last_name":"Müller","date_of_birth":"1995-08-17"}"#;
    const LEGAL: &str = r#"{"legal_name":"Example GmbH","country_of_registration":"DEU"}"#;

    /// The four fields as one JSON object, e.g. `{"sender_type":"natural","sender_data":{..}}`.
    fn input(text: &str) -> TravelRuleInput {
        let v: Value = serde_json::from_str(text).unwrap();
        let word = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        let data = |k: &str| v.get(k).and_then(Value::as_object).cloned();
        TravelRuleInput {
            sender_type: word("sender_type"),
            sender_data: data("sender_data"),
            receiver_type: word("receiver_type"),
            receiver_data: data("receiver_data"),
        }
    }

    fn parse(text: &str) -> Result<TravelRule, FieldError> {
        TravelRule::parse(&input(text), NaiveDate::from_ymd_opt(2026, 11, 25).unwrap())
    }

    fn natural_with(key: &str, value: &str) -> String {
        let mut data: Value = serde_json::from_str(NATURAL).unwrap();
        data[key] = serde_json::from_str(value).unwrap();
        format!(r#"{{"sender_type":"natural","sender_data":{data}}}"#)
    }

    #[test]
    fn the_documented_example_parses_and_serializes_unchanged() {
        let text = format!(
            r#"{{"sender_type":"legal","sender_data":{LEGAL},"receiver_type":"natural","receiver_data":{NATURAL}}}"#
        );
        let expected: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(parse(&text).unwrap().to_json().unwrap(), expected);
    }

    #[test]
    fn self_needs_no_receiver_data_and_refuses_some() {
        let rule = parse(&format!(
            r#"{{"sender_type":"natural","sender_data":{NATURAL},"receiver_type":"self"}}"#
        ))
        .unwrap();
        assert_eq!(rule.receiver, Some(Receiver::OwnWallet));
        let sent = rule.to_json().unwrap();
        assert_eq!(sent["receiver_type"], "self");
        assert!(sent.get("receiver_data").is_none());
        let with_data = parse(&format!(
            r#"{{"receiver_type":"self","receiver_data":{NATURAL}}}"#
        ));
        assert_eq!(with_data.unwrap_err().field, "receiver_data");
    }

    #[test]
    fn nothing_stated_is_nothing_sent() {
        let rule = parse("{}").unwrap();
        assert!(rule.is_empty());
        assert_eq!(rule.to_json(), None);
    }

    #[test]
    fn every_refusal_names_its_field() {
        let legal_receiver =
            |data: &str| format!(r#"{{"receiver_type":"legal","receiver_data":{data}}}"#);
        let cases = [
            (
                format!(r#"{{"sender_type":"robot","sender_data":{NATURAL}}}"#),
                "sender_type",
            ),
            (
                format!(r#"{{"receiver_type":"alien","receiver_data":{NATURAL}}}"#),
                "receiver_type",
            ),
            (r#"{"receiver_type":"natural"}"#.to_owned(), "receiver_data"),
            (r#"{"sender_type":"natural"}"#.to_owned(), "sender_data"),
            (format!(r#"{{"sender_data":{NATURAL}}}"#), "sender_type"),
            (format!(r#"{{"receiver_data":{LEGAL}}}"#), "receiver_type"),
            (natural_with("first_name", "null"), "sender_data.first_name"),
            (
                natural_with("last_name", r#""  ""#),
                "sender_data.last_name",
            ),
            (
                natural_with("last_name", r#""a\u0007b""#),
                "sender_data.last_name",
            ),
            (
                natural_with("first_name", &format!("{:?}", "x".repeat(101))),
                "sender_data.first_name",
            ),
            (natural_with("first_name", "7"), "sender_data.first_name"),
            (
                natural_with("date_of_birth", r#""17.08.1995""#),
                "sender_data.date_of_birth",
            ),
            (
                natural_with("date_of_birth", r#""1995-8-17""#),
                "sender_data.date_of_birth",
            ),
            (
                natural_with("date_of_birth", r#""1995-02-30""#),
                "sender_data.date_of_birth",
            ),
            (
                natural_with("date_of_birth", r#""2026-11-25""#),
                "sender_data.date_of_birth",
            ),
            (
                natural_with("date_of_birth", r#""1850-01-01""#),
                "sender_data.date_of_birth",
            ),
            (
                natural_with("email", r#""not-an-email""#),
                "sender_data.email",
            ),
            (
                natural_with("nickname", r#""Fritz""#),
                "sender_data.nickname",
            ),
            (
                format!(r#"{{"sender_type":"natural","sender_data":{LEGAL}}}"#),
                "sender_data.country_of_registration",
            ),
            (
                legal_receiver(r#"{"legal_name":"X","country_of_registration":"DE"}"#),
                "receiver_data.country_of_registration",
            ),
            (
                legal_receiver(r#"{"legal_name":"X","country_of_registration":"deu"}"#),
                "receiver_data.country_of_registration",
            ),
            (
                legal_receiver(r#"{"country_of_registration":"DEU"}"#),
                "receiver_data.legal_name",
            ),
        ];
        for (text, field) in cases {
            assert_eq!(parse(&text).unwrap_err().field, field, "{text}");
        }
    }

    #[test]
    fn refusals_never_repeat_the_value() {
        let error = parse(&natural_with("date_of_birth", r#""2999-01-01""#)).unwrap_err();
        let message = error.to_string();
        assert!(
            !message.contains("2999") && !message.contains("Müller"),
            "{message}"
        );
    }

    #[test]
    fn optional_email_is_kept_and_null_is_absent() {
        let rule = parse(&natural_with("email", r#""ops@example.com""#)).unwrap();
        assert_eq!(
            rule.to_json().unwrap()["sender_data"]["email"],
            "ops@example.com"
        );
        let rule = parse(&natural_with("email", "null")).unwrap();
        let natural: Value = serde_json::from_str(NATURAL).unwrap();
        assert_eq!(rule.to_json().unwrap()["sender_data"], natural);
    }

    #[test]
    fn debug_never_prints_personal_data() {
        let text = format!(
            r#"{{"sender_type":"natural","sender_data":{NATURAL},"receiver_type":"legal","receiver_data":{LEGAL}}}"#
        );
        let rule = parse(&text).unwrap();
        for shown in [format!("{:?}", input(&text)), format!("{rule:?}")] {
            for secret in ["Friedrich", "Müller", "1995", "Example GmbH", "DEU"] {
                assert!(!shown.contains(secret), "{shown}");
            }
        }
        assert!(format!("{rule:?}").contains("natural"));
    }

    #[test]
    fn defaults_stand_in_and_required_refuses_what_is_still_missing() {
        let stated = parse(&format!(
            r#"{{"sender_type":"natural","sender_data":{NATURAL}}}"#
        ))
        .unwrap();
        let company = parse(&format!(
            r#"{{"sender_type":"legal","sender_data":{LEGAL}}}"#
        ))
        .unwrap();
        let policy = TravelRulePolicy {
            required: true,
            default_sender: company.sender.clone(),
            default_receiver: Some(Receiver::OwnWallet),
        };
        let applied = policy.apply(&stated).unwrap();
        assert_eq!(
            applied.sender, stated.sender,
            "a stated sender wins over the default"
        );
        assert_eq!(applied.receiver, Some(Receiver::OwnWallet));
        assert_eq!(
            policy.apply(&TravelRule::default()).unwrap().sender,
            company.sender
        );

        let strict = TravelRulePolicy {
            required: true,
            ..Default::default()
        };
        assert_eq!(
            strict.apply(&TravelRule::default()).unwrap_err().field,
            "sender_type"
        );
        assert_eq!(strict.apply(&stated).unwrap_err().field, "receiver_type");
        assert!(TravelRulePolicy::default()
            .apply(&TravelRule::default())
            .unwrap()
            .is_empty());
    }
}
