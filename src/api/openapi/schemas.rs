//! The document's schemas as the server really behaves: enums listed from the Rust enums and
//! open to values a later version adds, response fields always present (serde writes `null`,
//! never omits one), request bodies with their constraints and a complete example, and links
//! from an answer to the operations that take its ids.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use super::{constraints, travel_rule};
use crate::api::error::ErrorCode;
use crate::ledger::EntryKind;

const ERROR_CODE_INTRO: &str = "The stable `code` of a problem. A later version may add codes; a generated client reads an unknown one as a plain string.";

/// A property that takes one of `enum_name`'s values, or a string a later version adds.
fn open(enum_name: &str, property: &Value) -> Value {
    let mut open = json!({"anyOf": [
        {"$ref": format!("#/components/schemas/{enum_name}")},
        {"type": "string"},
    ]});
    for kept in ["description", "example"] {
        if let Some(value) = property.get(kept) {
            open[kept] = value.clone();
        }
    }
    open
}

/// Enums, the travel-rule parties and the request fields' constraints.
pub(super) fn complete(schemas: &mut Value) {
    let meanings: Vec<String> = ErrorCode::ALL
        .iter()
        .map(|code| format!("- `{code}`: {}", code.meaning()))
        .collect();
    schemas["ErrorCode"] = json!({
        "type": "string",
        "enum": ErrorCode::ALL.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
        "description": format!("{ERROR_CODE_INTRO}\n\n{}", meanings.join("\n")),
    });
    schemas["WithdrawalStatus"] = json!({
        "type": "string",
        "enum": constraints::withdrawal_statuses(),
        "description": "A withdrawal's status: `awaiting_approval` (held, an operator must approve it), `pending` (held, not yet accepted by CoinsPaid), `processing` (accepted by CoinsPaid), and the final `confirmed` (debited), `cancelled` and `rejected` (released). A later version may add statuses.",
    });
    schemas["EntryKind"] = json!({
        "type": "string",
        "enum": EntryKind::ALL.iter().map(|k| k.as_str()).collect::<Vec<_>>(),
        "description": "What a ledger entry did: `credit` (funded), `hold` (a withdrawal requested), `release` (the hold given back), `debit` (paid out). A later version may add kinds.",
    });
    schemas["SenderType"] = json!({
        "type": "string",
        "enum": ["natural", "legal"],
        "description": "MiCA travel rule: who sends, with `sender_data` of that shape.",
    });
    schemas["ReceiverType"] = json!({
        "type": "string",
        "enum": ["natural", "legal", "self"],
        "description": "MiCA travel rule: who receives, with `receiver_data` of that shape; `self` is the user's own wallet and takes no `receiver_data`.",
    });
    for (schema, property, enum_name) in [
        ("Problem", "code", "ErrorCode"),
        ("WithdrawalView", "status", "WithdrawalStatus"),
        ("LedgerEntryView", "kind", "EntryKind"),
        ("StatusChange", "status", "WithdrawalStatus"),
        ("StatusChange", "previous_status", "WithdrawalStatus"),
    ] {
        if let Some(target) = schemas.pointer_mut(&format!("/{schema}/properties/{property}")) {
            *target = open(enum_name, target);
        }
    }
    if schemas.get("WithdrawalRequest").is_some() {
        schemas["WithdrawalRequest"]["allOf"] = travel_rule::type_rules();
    }
}

/// The request bodies: the constraints on their fields, and each one's example (the request
/// type's own) on its operation, where Swagger UI's "Try it out" starts from it.
pub(super) fn request_bodies(doc: &mut Value) {
    let mut requested = BTreeSet::new();
    for_each_operation(doc, |_, _, operation| {
        refs(&operation["requestBody"], &mut requested);
    });
    for name in &requested {
        if let Some(schema) = doc["components"]["schemas"].get_mut(name) {
            constraints::request_fields(name, schema);
        }
    }
    let schemas = doc["components"]["schemas"].clone();
    for_each_operation(doc, |_, _, operation| {
        let Some(media) = operation.pointer_mut("/requestBody/content/application~1json") else {
            return;
        };
        let Some(name) = media["schema"]["$ref"].as_str().and_then(schema_name) else {
            return;
        };
        if let Some(example) = schemas[name].get("example") {
            media["example"] = example.clone();
        }
    });
}

/// From an answer to the operations that take what it names: a generated client and a
/// stateful tester follow them.
pub(super) fn links(doc: &mut Value) {
    let link = |operation_id: &str, parameters: Value, description: &str| json!({"operationId": operation_id, "parameters": parameters, "description": description});
    let withdrawal_links = json!({
        "GetWithdrawal": link("getWithdrawal", json!({"id": "$response.body#/id"}), "The withdrawal, as it progresses"),
        "CancelWithdrawal": link("cancelWithdrawal", json!({"id": "$response.body#/id"}), "Cancel it while it awaits approval"),
        "ListUserWithdrawals": link("listWithdrawals", json!({"user_id": "$response.body#/user_id"}), "The user's withdrawals"),
        "UserBalances": link("getUserBalances", json!({"user_id": "$response.body#/user_id"}), "What is held and available"),
    });
    let credit_links = json!({
        "UserBalances": link("getUserBalances", json!({"user_id": "$request.path.user_id"}), "The balance credited"),
        "UserLedger": link("listUserLedgerEntries", json!({"user_id": "$request.path.user_id"}), "The credit among the user's entries"),
    });
    for_each_operation(doc, |_, _, operation| {
        let links = match operation["operationId"].as_str() {
            Some("createWithdrawal") => &withdrawal_links,
            Some("getWithdrawal") => &withdrawal_links,
            Some("creditUser") => &credit_links,
            _ => return,
        };
        for status in ["200", "201"] {
            if let Some(response) = operation["responses"].get_mut(status) {
                response["links"] = links.clone();
            }
        }
    });
}

/// Every field of every schema an answer uses is required: serde writes each one, `null`
/// when there is nothing (the type says which may be null).
pub(super) fn require_response_fields(doc: &mut Value) {
    let mut answered = BTreeSet::new();
    let mut requested = BTreeSet::new();
    for_each_operation(doc, |_, _, operation| {
        refs(&operation["responses"], &mut answered);
        refs(&operation["requestBody"], &mut requested);
    });
    let schemas = &mut doc["components"]["schemas"];
    let mut pending: Vec<String> = answered.iter().cloned().collect();
    while let Some(name) = pending.pop() {
        let mut inner = BTreeSet::new();
        refs(&schemas[&name], &mut inner);
        for found in inner {
            if answered.insert(found.clone()) {
                pending.push(found);
            }
        }
    }
    for name in answered.difference(&requested) {
        if let Some(schema) = schemas.get_mut(name) {
            require_all(schema);
        }
    }
}

fn require_all(schema: &mut Value) {
    if let Some(keys) = schema["properties"]
        .as_object()
        .map(|p| p.keys().cloned().collect::<Vec<_>>())
    {
        schema["required"] = json!(keys);
    }
    for composed in ["allOf", "oneOf", "anyOf"] {
        if let Some(parts) = schema.get_mut(composed).and_then(Value::as_array_mut) {
            parts.iter_mut().for_each(require_all);
        }
    }
}

fn schema_name(reference: &str) -> Option<&str> {
    reference.strip_prefix("#/components/schemas/")
}

/// The names of the schemas `value` refers to.
fn refs(value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                match (key.as_str(), inner) {
                    ("$ref", Value::String(r)) => {
                        if let Some(name) = schema_name(r) {
                            out.insert(name.to_owned());
                        }
                    }
                    _ => refs(inner, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

pub(super) fn for_each_operation(doc: &mut Value, mut f: impl FnMut(&str, &str, &mut Value)) {
    let Some(paths) = doc["paths"].as_object_mut() else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (method, operation) in item.iter_mut() {
            if matches!(method.as_str(), "get" | "put" | "post" | "delete" | "patch") {
                f(path, method, operation);
            }
        }
    }
}
