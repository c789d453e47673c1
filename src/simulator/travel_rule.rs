//! The simulator's check of the MiCA fields of `POST /v2/withdrawal/crypto`, in the shapes
//! docs.cryptoprocessing.com documents ("User data collection"): a natural person needs
//! `first_name`, `last_name` and `date_of_birth` (`1995-08-17`), a legal entity `legal_name`
//! and `country_of_registration` (`DEU`); `email` is optional for both; `receiver_type: self`
//! carries no `receiver_data`. A malformed shape is a 400 `{"errors": {"sender_data": ...}}`.
//!
//! Absent fields pass: the docs mark `sender_type` required but do not say what CoinsPaid
//! does without it, and payoutd only sends what the merchant requires.

use crate::coinspaid::wire::{PartyData, TravelRuleFields};

type Refusal = (&'static str, String);

pub(super) fn check(fields: &TravelRuleFields) -> Result<(), Refusal> {
    party(
        ("sender_type", "sender_data"),
        fields.sender_type.as_deref(),
        fields.sender_data.as_ref(),
        false,
    )?;
    party(
        ("receiver_type", "receiver_data"),
        fields.receiver_type.as_deref(),
        fields.receiver_data.as_ref(),
        true,
    )
}

fn party(
    (type_field, data_field): (&'static str, &'static str),
    kind: Option<&str>,
    data: Option<&PartyData>,
    self_allowed: bool,
) -> Result<(), Refusal> {
    let refuse = |field, message: &str| Err((field, message.to_owned()));
    match (kind, data) {
        (None, None) => Ok(()),
        (None, Some(_)) => refuse(type_field, "The type field is required with data."),
        (Some("self"), None) if self_allowed => Ok(()),
        (Some("self"), Some(_)) if self_allowed => {
            refuse(data_field, "No data is expected for an internal transfer.")
        }
        (Some("natural" | "legal"), None) => refuse(data_field, "The data field is required."),
        (Some("natural"), Some(d)) => {
            if d.legal_name.is_some() || d.country_of_registration.is_some() {
                return refuse(
                    data_field,
                    "A natural person has no legal_name or country_of_registration.",
                );
            }
            for (name, value) in [("first_name", &d.first_name), ("last_name", &d.last_name)] {
                if value.as_deref().is_none_or(|v| v.trim().is_empty()) {
                    return Err((data_field, format!("The {name} field is required.")));
                }
            }
            if !d.date_of_birth.as_deref().is_some_and(is_date) {
                return refuse(
                    data_field,
                    "The date_of_birth must be a date in the format YYYY-MM-DD.",
                );
            }
            email(data_field, d)
        }
        (Some("legal"), Some(d)) => {
            if d.first_name.is_some() || d.last_name.is_some() || d.date_of_birth.is_some() {
                return refuse(
                    data_field,
                    "A legal entity has no first_name, last_name or date_of_birth.",
                );
            }
            if d.legal_name.as_deref().is_none_or(|v| v.trim().is_empty()) {
                return refuse(data_field, "The legal_name field is required.");
            }
            let alpha3 = |c: &str| c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase());
            if !d.country_of_registration.as_deref().is_some_and(alpha3) {
                return refuse(
                    data_field,
                    "The country_of_registration must be an ISO 3166-1 alpha-3 code.",
                );
            }
            email(data_field, d)
        }
        (Some(_), _) => refuse(type_field, "The selected type is invalid."),
    }
}

fn is_date(text: &str) -> bool {
    text.len() == 10 && chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").is_ok()
}

fn email(data_field: &'static str, d: &PartyData) -> Result<(), Refusal> {
    match d.email.as_deref() {
        Some(e) if !e.contains('@') => Err((
            data_field,
            "The email must be a valid email address.".into(),
        )),
        _ => Ok(()),
    }
}
