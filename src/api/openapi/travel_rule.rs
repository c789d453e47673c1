//! `sender_data` / `receiver_data` in the document: `oneOf` a natural person and a legal
//! entity, each with exactly the keys and the limits the travel-rule parser
//! (`crate::domain::travel_rule::data`) applies, and, on the withdrawal request, which of the
//! two each `*_type` takes.

use serde_json::{json, Value};
use utoipa::openapi::{RefOr, Schema};

use super::constraints::{CONTROL, SPACE};
use crate::domain::travel_rule::data::{
    EMAIL_MAX, LEGAL_KEYS, LEGAL_NAME_MAX, NAME_MAX, NATURAL_KEYS, OLDEST_BIRTH_YEAR,
};

/// A name as the parser reads it: not blank, no control characters, at most `max` characters.
fn name(max: usize, example: &str) -> Value {
    json!({
        "type": "string",
        "maxLength": max,
        "pattern": format!("^[^{CONTROL}]*[^{SPACE}{CONTROL}][^{CONTROL}]*$"),
        "example": example,
    })
}

/// The schema of one key of a party's data.
fn key(name_of_key: &str) -> Value {
    let visible = format!("[^@{SPACE}{CONTROL}]");
    let dotless = format!("[^@.{SPACE}{CONTROL}]");
    match name_of_key {
        "first_name" => name(NAME_MAX, "Friedrich"),
        "last_name" => name(NAME_MAX, "Müller"),
        "legal_name" => name(LEGAL_NAME_MAX, "Example GmbH"),
        "date_of_birth" => json!({
            "type": "string",
            "format": "date",
            "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$",
            "description": format!("A past date, {OLDEST_BIRTH_YEAR} or later."),
            "example": "1995-08-17",
        }),
        "country_of_registration" => json!({
            "type": "string",
            "pattern": "^[A-Z]{3}$",
            "description": "ISO 3166-1 alpha-3.",
            "example": "DEU",
        }),
        // One `@`, a dotted domain that neither starts nor ends with a dot, no spaces.
        "email" => json!({
            "type": ["string", "null"],
            "maxLength": EMAIL_MAX,
            "pattern": format!("^{visible}+@{dotless}{visible}*\\.{visible}*{dotless}$"),
            "example": "friedrich@example.com",
        }),
        other => panic!("the travel-rule key {other} has no schema"),
    }
}

fn party(keys: &[&str], description: &str) -> Value {
    let properties: serde_json::Map<String, Value> =
        keys.iter().map(|k| ((*k).to_owned(), key(k))).collect();
    let required: Vec<&str> = keys.iter().copied().filter(|k| *k != "email").collect();
    json!({
        "type": "object",
        "description": description,
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
}

/// `NaturalPerson` and `LegalEntity`, as components.
pub fn parties() -> Vec<(String, RefOr<Schema>)> {
    let schema = |value: Value| serde_json::from_value(value).expect("a valid schema");
    vec![
        (
            "NaturalPerson".to_owned(),
            schema(party(
                NATURAL_KEYS,
                "A natural person (`*_type` `natural`). Personal data: passed to CoinsPaid and never shown back.",
            )),
        ),
        (
            "LegalEntity".to_owned(),
            schema(party(
                LEGAL_KEYS,
                "A legal entity (`*_type` `legal`). Passed to CoinsPaid and never shown back.",
            )),
        ),
    ]
}

/// `TravelRuleParty`: one of the two.
pub fn party_schema() -> RefOr<Schema> {
    serde_json::from_value(json!({
        "description": "`sender_data` / `receiver_data`: a natural person or a legal entity, matching its `*_type`.",
        "oneOf": [
            {"$ref": "#/components/schemas/NaturalPerson"},
            {"$ref": "#/components/schemas/LegalEntity"},
        ],
    }))
    .expect("a valid schema")
}

/// The rules joining each `*_type` to its `*_data` (JSON Schema `if`/`then`), as the parser
/// applies them: `natural` and `legal` need their data of that shape, `self` takes none, and
/// data needs its type. `null` counts as absent.
pub(super) fn type_rules() -> Value {
    let mut rules = Vec::new();
    for (kind, data) in [
        ("sender_type", "sender_data"),
        ("receiver_type", "receiver_data"),
    ] {
        for (word, shape) in [("natural", "NaturalPerson"), ("legal", "LegalEntity")] {
            rules.push(json!({
                "if": {"required": [kind], "properties": {kind: {"const": word}}},
                "then": {
                    "required": [data],
                    "properties": {data: {"$ref": format!("#/components/schemas/{shape}")}},
                },
            }));
        }
        rules.push(json!({
            "if": {"required": [data], "properties": {data: {"type": "object"}}},
            "then": {"required": [kind], "properties": {kind: {"type": "string"}}},
        }));
    }
    rules.push(json!({
        "if": {"required": ["receiver_type"], "properties": {"receiver_type": {"const": "self"}}},
        "then": {"properties": {"receiver_data": {"type": "null"}}},
    }));
    Value::Array(rules)
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;
    use proptest::prelude::*;
    use serde_json::Map;

    use super::*;
    use crate::api::openapi::constraints::tests::{accepts, text};
    use crate::domain::travel_rule::{TravelRule, TravelRuleInput};

    /// Whether the parser accepts `value` under `key` in an otherwise valid party.
    fn parses(kind: &str, key_name: &str, value: &str) -> bool {
        let mut data: Map<String, Value> = match kind {
            "natural" => serde_json::from_value(
                json!({"first_name": "A", "last_name": "B", "date_of_birth": "1990-01-01"}),
            ),
            _ => {
                serde_json::from_value(json!({"legal_name": "C", "country_of_registration": "DEU"}))
            }
        }
        .unwrap();
        data.insert(key_name.to_owned(), Value::String(value.to_owned()));
        let input = TravelRuleInput {
            sender_type: Some(kind.to_owned()),
            sender_data: Some(data),
            ..TravelRuleInput::default()
        };
        TravelRule::parse(&input, NaiveDate::from_ymd_opt(2026, 1, 1).unwrap()).is_ok()
    }

    proptest! {
        /// Names and emails: the document's rule is the parser's.
        #[test]
        fn documented_names_and_emails_are_what_the_parser_accepts(text in text()) {
            for (kind, key_name) in [("natural", "first_name"), ("legal", "legal_name"), ("natural", "email"), ("legal", "country_of_registration")] {
                prop_assert_eq!(accepts(&key(key_name), &text), parses(kind, key_name, &text), "{} {:?}", key_name, text);
            }
        }
    }

    #[test]
    fn every_key_the_parser_knows_is_described() {
        for keys in [NATURAL_KEYS, LEGAL_KEYS] {
            for k in keys {
                assert!(key(k).is_object());
            }
        }
        assert!(accepts(&key("email"), "a@b.c"));
        assert!(!accepts(&key("email"), "a@.b") && !accepts(&key("email"), "a@b"));
    }
}
