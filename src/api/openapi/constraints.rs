//! The constraints the handlers check, stated on the parameters and request fields they check
//! them on, and no more: the server refuses (400, 404 or 422) every value the document calls
//! invalid, so a contract tester's invalid data is always refused. Where the server reads an
//! empty query value as "no filter", the document allows it.

use serde_json::{json, Value};

use crate::domain::WithdrawalStatus;

/// Characters `char::is_control` refuses (Unicode Cc), as a regex class body.
pub(super) const CONTROL: &str = r"\x00-\x1f\x7f-\x9f";
/// Characters `str::trim` removes (Unicode White_Space), as a regex class body.
pub(super) const SPACE: &str =
    r"\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";

/// `min` to `max` visible ASCII characters (`UserId`, `IdempotencyKey`, references).
fn visible_ascii(min: u32, max: u32) -> Value {
    json!({"type": "string", "minLength": min, "maxLength": max, "pattern": "^[!-~]*$"})
}

/// A currency code as `Currency::parse` reads it.
fn currency() -> Value {
    json!({"type": "string", "pattern": "^[A-Z0-9]{2,12}$", "example": "EUR"})
}

/// An amount as `Amount::parse` reads it; zero, too many digits or decimals are refused too.
fn amount() -> Value {
    json!({"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?$", "example": "100.00"})
}

/// A reason for the audit trail, as `admin::check_reason` reads it: trimmed, then 1 to 500
/// characters without control characters (optional ones may be blank).
fn reason(required: bool) -> Value {
    let text = format!("[^{SPACE}{CONTROL}][^{CONTROL}]{{0,499}}");
    let pattern = if required {
        format!("^[{SPACE}]*{text}[{SPACE}]*$")
    } else {
        format!("^[{SPACE}]*({text}[{SPACE}]*)?$")
    };
    json!({"type": "string", "pattern": pattern})
}

/// The schema of a parameter (`in`: path, query or header) the handlers check, by name.
fn parameter(location: &str, name: &str) -> Option<Value> {
    Some(match (location, name) {
        ("path", "user_id") => visible_ascii(1, 128),
        // Empty: every user.
        ("query", "user_id") => visible_ascii(0, 128),
        ("path", "currency") => currency(),
        // Empty: every currency.
        ("query", "currency") => {
            json!({"type": "string", "pattern": "^([A-Z0-9]{2,12})?$"})
        }
        ("path", "id") => json!({"type": "string", "format": "uuid"}),
        ("path", "scope") => {
            json!({"type": "string", "pattern": "^(all|[A-Z0-9]{2,12})$", "example": "all"})
        }
        ("header", "Idempotency-Key") => visible_ascii(1, 255),
        // Empty: the default.
        ("query", "limit") => json!({"anyOf": [
            {"type": "integer", "minimum": 1, "maximum": 200, "default": 50},
            {"type": "string", "maxLength": 0},
        ]}),
        // Empty: every status.
        ("query", "status") => json!({"anyOf": [
            {"$ref": "#/components/schemas/WithdrawalStatus"},
            {"type": "string", "maxLength": 0},
        ]}),
        // Empty: every withdrawal.
        ("query", "withdrawal_id") => json!({
            "type": "string",
            "pattern": "^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})?$",
        }),
        // Empty: no filter. Ids and keys are refused beyond 255 visible ASCII characters.
        ("query", "foreign_id" | "reference" | "idempotency_key") => visible_ascii(0, 255),
        // Empty: no filter.
        ("query", "updated_after") => json!({"anyOf": [
            {"type": "string", "format": "date-time"},
            {"type": "string", "maxLength": 0},
        ]}),
        _ => return None,
    })
}

/// States the constraints on an operation's parameters.
pub(super) fn parameters(operation: &mut Value) {
    let Some(parameters) = operation
        .get_mut("parameters")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    for parameter in parameters {
        let (Some(location), Some(name)) = (parameter["in"].as_str(), parameter["name"].as_str())
        else {
            continue;
        };
        if let Some(schema) = self::parameter(location, name) {
            parameter["schema"] = schema;
        }
    }
}

/// The schema of a request body's field the handlers (or the use case they call) check, by
/// the body's schema name and the field's name.
fn field(body: &str, name: &str) -> Option<Value> {
    Some(match (body, name) {
        (_, "user_id") => visible_ascii(1, 128),
        (_, "amount" | "max_per_withdrawal" | "max_per_day") => amount(),
        (_, "currency" | "convert_to") => currency(),
        ("WithdrawalRequest", "address") => visible_ascii(10, 128),
        // Empty: no tag.
        ("WithdrawalRequest", "tag") => visible_ascii(0, 100),
        ("WithdrawalRequest", "end_user_reference") => visible_ascii(1, 128),
        ("WithdrawalRequest", "reference") => visible_ascii(1, 255),
        ("CreditRequest", "reference") => visible_ascii(1, 128),
        ("WithdrawalRequest", "sender_type") => json!({"$ref": "#/components/schemas/SenderType"}),
        ("WithdrawalRequest", "receiver_type") => {
            json!({"$ref": "#/components/schemas/ReceiverType"})
        }
        ("ReasonRequest" | "ResolveRequest", "reason") => reason(true),
        ("NoteRequest", "reason") => reason(false),
        ("ResolveRequest", "outcome") => json!({"type": "string", "enum": ["paid", "not_paid"]}),
        _ => return None,
    })
}

/// States the constraints on the fields of the request bodies, keeping what the type says
/// (description, example, whether `null` is allowed).
pub(super) fn request_fields(body: &str, schema: &mut Value) {
    let Some(properties) = schema.get_mut("properties").and_then(Value::as_object_mut) else {
        return;
    };
    for (name, property) in properties.iter_mut() {
        let Some(mut constrained) = field(body, name) else {
            continue;
        };
        let nullable = property["type"]
            .as_array()
            .is_some_and(|types| types.iter().any(|t| t == "null"));
        if nullable && constrained.get("$ref").is_some() {
            constrained = json!({"anyOf": [constrained, {"type": "null"}]});
        } else if nullable {
            constrained["type"] = json!([constrained["type"], "null"]);
        }
        for kept in ["description", "example"] {
            if let Some(value) = property.get(kept) {
                constrained[kept] = value.clone();
            }
        }
        *property = constrained;
    }
}

/// The status filter's values, for the document's `WithdrawalStatus` enum.
pub(super) fn withdrawal_statuses() -> Vec<&'static str> {
    WithdrawalStatus::ALL.iter().map(|s| s.as_str()).collect()
}

#[cfg(test)]
pub(super) mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::api::admin::check_reason;
    use crate::domain::{Amount, Currency, UserId};

    /// Whether a JSON Schema string schema accepts `text` (pattern, as JSON Schema applies it:
    /// unanchored, here anchored by the pattern itself; lengths in characters).
    pub(crate) fn accepts(schema: &Value, text: &str) -> bool {
        let chars = text.chars().count() as u64;
        let length = schema["minLength"].as_u64().is_none_or(|min| chars >= min)
            && schema["maxLength"].as_u64().is_none_or(|max| chars <= max);
        let pattern = schema["pattern"]
            .as_str()
            .is_none_or(|p| compiled(p).is_match(text));
        length && pattern
    }

    /// Each pattern compiled once per test thread: property tests try hundreds of texts.
    fn compiled(pattern: &str) -> regex::Regex {
        thread_local! {
            static CACHE: std::cell::RefCell<std::collections::HashMap<String, regex::Regex>> =
                Default::default();
        }
        CACHE.with(|cache| {
            cache
                .borrow_mut()
                .entry(pattern.to_owned())
                .or_insert_with(|| {
                    regex::Regex::new(pattern).unwrap_or_else(|e| panic!("{pattern}: {e}"))
                })
                .clone()
        })
    }

    /// Text mixing what the rules care about: visible ASCII, spaces of every kind, control
    /// characters, dots, `@`, digits and letters beyond ASCII.
    pub(crate) fn text() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            4 => proptest::char::range('!', '~'),
            1 => Just(' '),
            1 => Just('\t'),
            1 => Just('\n'),
            1 => Just('\u{85}'),
            1 => Just('\u{a0}'),
            1 => Just('\u{3000}'),
            1 => Just('\u{feff}'),
            1 => Just('\u{7f}'),
            1 => Just('.'),
            1 => Just('@'),
            1 => Just('é'),
            1 => any::<char>(),
        ];
        prop_oneof![
            proptest::collection::vec(piece.clone(), 0..12),
            proptest::collection::vec(piece, 90..520),
        ]
        .prop_map(|chars| chars.into_iter().collect())
    }

    proptest! {
        /// The document calls invalid only what the server refuses (and, for ids and codes,
        /// exactly that).
        #[test]
        fn every_documented_rule_is_one_the_server_applies(text in text()) {
            prop_assert_eq!(accepts(&parameter("path", "user_id").unwrap(), &text), UserId::parse(&text).is_some());
            prop_assert_eq!(accepts(&currency(), &text), Currency::parse(&text).is_some());
            if Amount::parse(&text).is_ok() {
                prop_assert!(accepts(&amount(), &text));
            }
            let required = check_reason("reason", Some(text.clone()), true).is_ok();
            prop_assert_eq!(accepts(&reason(true), &text), required);
            let optional = check_reason("reason", Some(text.clone()), false).is_ok();
            prop_assert_eq!(accepts(&reason(false), &text), optional);
            let address = ["BTC", "ETH", "XRP", "USDTT", "EUR"]
                .iter()
                .any(|c| crate::domain::address::looks_valid(c, &text));
            if address {
                prop_assert!(accepts(&field("WithdrawalRequest", "address").unwrap(), &text));
            }
        }
    }

    #[test]
    fn boundaries_are_where_the_parsers_put_them() {
        let user = parameter("path", "user_id").unwrap();
        assert!(accepts(&user, &"u".repeat(128)));
        assert!(!accepts(&user, &"u".repeat(129)));
        assert!(accepts(&reason(true), &format!("  {}\n", "r".repeat(500))));
        assert!(!accepts(&reason(true), &"r".repeat(501)));
        assert!(!accepts(&reason(true), " \t "));
        assert!(accepts(&reason(false), " \t "));
        assert!(!accepts(&reason(false), "a\tb"));
        assert!(accepts(&amount(), "0.10") && !accepts(&amount(), "1e5"));
    }
}
