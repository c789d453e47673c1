//! The OpenAPI document as a client generator reads it: every operation under its own name,
//! every error a route answers described as problem+json, enums and constraints stated, and
//! examples the server accepts. (CI also runs openapi-spec-validator, Spectral, schemathesis
//! and a generated client over it: `.ci/contract-check`.)

use std::collections::HashMap;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{spawn_app_with, with_operator, ADMIN_TOKEN, TOKEN};

fn document() -> Value {
    serde_json::to_value(payoutd::api::openapi_document()).unwrap()
}

fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if ["get", "post", "put", "delete", "patch"].contains(&method.as_str()) {
                out.push((method.clone(), path.clone(), op.clone()));
            }
        }
    }
    out
}

#[test]
fn every_operation_has_a_distinct_operation_id() {
    let doc = document();
    let mut seen: HashMap<String, String> = HashMap::new();
    let ops = operations(&doc);
    assert!(ops.len() >= 14, "{} operations", ops.len());
    for (method, path, op) in ops {
        let id = op["operationId"]
            .as_str()
            .unwrap_or_else(|| panic!("{method} {path} has no operationId"))
            .to_owned();
        // A generated client names its functions after these; a clash drops one silently.
        if let Some(other) = seen.insert(id.clone(), format!("{method} {path}")) {
            panic!("operationId {id} is used by {other} and {method} {path}");
        }
    }
}

#[test]
fn every_error_status_is_problem_json_and_public_routes_say_so() {
    let doc = document();
    assert_eq!(doc["servers"][0]["url"], "/");
    for (method, path, op) in operations(&doc) {
        let responses = op["responses"].as_object().unwrap();
        for status in ["500", "503"] {
            assert!(
                responses.contains_key(status),
                "{method} {path}: no {status}"
            );
        }
        if op.get("requestBody").is_some() {
            for status in ["400", "413"] {
                assert!(
                    responses.contains_key(status),
                    "{method} {path}: no {status}"
                );
            }
        }
        for (status, response) in responses {
            // /readyz answers its own JSON when not ready.
            if status.as_str() < "400" || (path == "/readyz" && status == "503") {
                continue;
            }
            assert!(
                response["content"]["application/problem+json"].is_object(),
                "{method} {path} {status} is not problem+json"
            );
        }
        let security = op["security"].as_array().unwrap_or_else(|| {
            panic!("{method} {path}: security not stated");
        });
        let public = ["/healthz", "/readyz", "/metrics", "/v1/callbacks/coinspaid"];
        assert_eq!(
            security.is_empty(),
            public.contains(&path.as_str()),
            "{method} {path}: security {security:?}"
        );
        if !security.is_empty() {
            assert!(responses.contains_key("401"), "{method} {path}: no 401");
        }
    }
}

#[test]
fn codes_statuses_kinds_and_constraints_are_enumerated() {
    let doc = document();
    let schemas = &doc["components"]["schemas"];
    let codes = schemas["ErrorCode"]["enum"].as_array().unwrap();
    for code in [
        "invalid_json",
        "payload_too_large",
        "limit_exceeded",
        "timeout",
        "not_cancellable",
        "lookup_disagrees",
        "rate_limited",
        "forbidden",
    ] {
        assert!(codes.iter().any(|c| c == code), "{code}");
    }
    // Every code the service can send: the enum is listed from the one Rust enum of codes.
    let all: Vec<&str> = payoutd::api::error::ErrorCode::ALL
        .iter()
        .map(|c| c.as_str())
        .collect();
    assert_eq!(codes, &all);
    assert_eq!(
        schemas["WithdrawalStatus"]["enum"]
            .as_array()
            .unwrap()
            .len(),
        6
    );
    assert_eq!(schemas["EntryKind"]["enum"].as_array().unwrap().len(), 4);
    // The answers name the enums but let a value a later version adds through.
    for (schema, property, enum_name) in [
        ("Problem", "code", "ErrorCode"),
        ("WithdrawalView", "status", "WithdrawalStatus"),
        ("LedgerEntryView", "kind", "EntryKind"),
    ] {
        assert_eq!(
            schemas[schema]["properties"][property]["anyOf"],
            json!([{"$ref": format!("#/components/schemas/{enum_name}")}, {"type": "string"}]),
            "{schema}.{property}"
        );
    }
    let create = &doc["paths"]["/v1/withdrawals"]["post"];
    let key = create["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "Idempotency-Key")
        .unwrap();
    assert_eq!(key["schema"]["maxLength"], 255);
    let list = &doc["paths"]["/v1/withdrawals"]["get"];
    let limit = list["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "limit")
        .unwrap();
    assert_eq!(limit["schema"]["anyOf"][0]["maximum"], 200);
}

#[test]
fn every_operation_may_be_rate_limited_and_says_when_to_retry() {
    let doc = document();
    for (method, path, op) in operations(&doc) {
        let responses = &op["responses"];
        for status in ["429", "503"] {
            if path == "/readyz" && status == "503" {
                continue;
            }
            let header = &responses[status]["headers"]["Retry-After"];
            assert_eq!(header["required"], true, "{method} {path} {status}");
            assert_eq!(
                header["schema"]["type"], "integer",
                "{method} {path} {status}"
            );
        }
        // Whatever can refuse the request is stated where it applies.
        let names = |location: &str| -> Vec<String> {
            op["parameters"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .filter(|p| p["in"] == location)
                        .map(|p| p["name"].as_str().unwrap().to_owned())
                        .collect()
                })
                .unwrap_or_default()
        };
        if names("path").iter().any(|n| n == "id") {
            assert!(responses["404"].is_object(), "{method} {path}: no 404");
        }
        let json_body =
            op["requestBody"]["content"]["application/json"]["schema"]["$ref"].is_string();
        if json_body || !names("query").is_empty() || names("path").iter().any(|n| n == "user_id") {
            assert!(responses["422"].is_object(), "{method} {path}: no 422");
        }
    }
}

#[test]
fn summaries_are_sentences_and_every_operation_explains_itself() {
    let doc = document();
    for (method, path, op) in operations(&doc) {
        let summary = op["summary"].as_str().unwrap_or_default();
        let description = op["description"].as_str().unwrap_or_default();
        assert!(
            !summary.is_empty() && !summary.contains('`') && !summary.contains('/'),
            "{method} {path}: summary {summary:?}"
        );
        assert!(
            !summary.starts_with(&format!("{} ", method.to_uppercase())),
            "{method} {path}: summary {summary:?} repeats the method"
        );
        assert!(
            description.len() > summary.len(),
            "{method} {path}: no description"
        );
    }
}

#[test]
fn the_notifications_are_described_under_webhooks() {
    let doc = document();
    for event_type in ["withdrawal.status_changed", "webhook.test"] {
        let post = &doc["webhooks"][event_type]["post"];
        assert_eq!(
            post["requestBody"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/Event",
            "{event_type}"
        );
        let headers: Vec<&str> = post["parameters"]
            .as_array()
            .unwrap_or_else(|| panic!("{event_type}: no headers"))
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            headers,
            ["webhook-id", "webhook-timestamp", "webhook-signature"]
        );
    }
    // A status in a notification is a withdrawal's status, open to ones a later version adds.
    let change = &doc["components"]["schemas"]["StatusChange"]["properties"];
    for property in ["status", "previous_status"] {
        assert_eq!(
            change[property]["anyOf"][0]["$ref"], "#/components/schemas/WithdrawalStatus",
            "{property}"
        );
    }
}

/// Properties, inline or in `allOf` parts, of a schema.
fn properties(schema: &Value) -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = schema["properties"]
        .as_object()
        .map(|p| p.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    for part in schema["allOf"].as_array().into_iter().flatten() {
        out.extend(properties(part));
    }
    out
}

#[test]
fn times_are_date_times_and_answers_list_every_field_they_send() {
    let doc = document();
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let mut times = 0;
    for (name, schema) in schemas {
        for (property, value) in properties(schema) {
            if property.ends_with("_at") || property.ends_with("_since") {
                assert_eq!(value["format"], "date-time", "{name}.{property}");
                times += 1;
            }
        }
    }
    assert!(times >= 9, "{times} timestamps");
    // serde writes every field of a response, `null` when empty: required, and nullable
    // where the type says so.
    for name in [
        "WithdrawalView",
        "LedgerEntryView",
        "StuckView",
        "CurrenciesResponse",
        "QuoteResponse",
        "LookupView",
        "Problem",
    ] {
        let schema = &schemas[name];
        let mut required: Vec<&str> = schema["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap())
            .collect();
        required.sort();
        let mut all: Vec<&str> = schema["properties"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        all.sort();
        assert_eq!(required, all, "{name}");
    }
    let withdrawal = &schemas["WithdrawalView"]["properties"];
    for nullable in ["anomaly", "convert_to", "error", "provider_id", "tag"] {
        let types = withdrawal[nullable]["type"].as_array().unwrap();
        assert!(types.iter().any(|t| t == "null"), "{nullable}");
    }
    for nullable in ["sent", "received"] {
        assert_eq!(
            withdrawal[nullable]["oneOf"][0]["type"], "null",
            "{nullable}"
        );
    }
}

#[test]
fn a_travel_rule_party_is_a_natural_person_or_a_legal_entity() {
    let doc = document();
    let schemas = &doc["components"]["schemas"];
    assert_eq!(
        schemas["TravelRuleParty"]["oneOf"],
        json!([
            {"$ref": "#/components/schemas/NaturalPerson"},
            {"$ref": "#/components/schemas/LegalEntity"}
        ])
    );
    assert_eq!(
        schemas["NaturalPerson"]["required"],
        json!(["first_name", "last_name", "date_of_birth"])
    );
    assert_eq!(
        schemas["LegalEntity"]["required"],
        json!(["legal_name", "country_of_registration"])
    );
    for party in ["NaturalPerson", "LegalEntity"] {
        assert_eq!(schemas[party]["additionalProperties"], false, "{party}");
        assert!(schemas[party]["properties"]["email"].is_object(), "{party}");
    }
}

/// The request example of every operation with a JSON body is a body the server accepts:
/// the website's are carried out (credit first, so the withdrawal is covered); an operator's
/// is refused, if at all, for the withdrawal's state, never for the body.
#[tokio::test]
async fn every_request_example_is_accepted() {
    let app = spawn_app_with(with_operator).await;
    let doc: Value = app.get_json("/openapi.json").await.1;
    let mut examples: Vec<(String, String, Value)> = Vec::new();
    for (method, path, op) in operations(&doc) {
        let media = &op["requestBody"]["content"]["application/json"];
        if !media["schema"]["$ref"].is_string() {
            continue;
        }
        let example = media["example"].clone();
        assert!(example.is_object(), "{method} {path}: no example");
        examples.push((method, path, example));
    }
    assert_eq!(examples.len(), 13, "the operations with a JSON body");
    // The credit first, the withdrawal (which it pays for) next.
    examples.sort_by_key(|(_, path, _)| (!path.ends_with("/credits"), path != "/v1/withdrawals"));
    let withdrawal = uuid::Uuid::now_v7().to_string();
    for (method, path, example) in examples {
        let concrete = path
            .replace("{user_id}", "u1")
            .replace("{currency}", "EUR")
            .replace("{scope}", "EUR")
            .replace("{id}", &withdrawal);
        let token = if path.starts_with("/admin/") {
            ADMIN_TOKEN
        } else {
            TOKEN
        };
        let response = app
            .http
            .request(method.to_uppercase().parse().unwrap(), app.url(&concrete))
            .bearer_auth(token)
            .header("Idempotency-Key", "example")
            .json(&example)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if path.starts_with("/v1/withdrawals/") || path.starts_with("/admin/v1/withdrawals/") {
            // No such withdrawal: the body was read and found good first.
            assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {body}");
        } else {
            assert!(status.is_success(), "{method} {path}: {status} {body}");
        }
    }
    let (_, page) = app.get_json("/v1/withdrawals?user_id=u1").await;
    assert_eq!(page["data"].as_array().unwrap().len(), 1, "{page}");
}

/// What the document calls invalid the server refuses: a user id of 129 characters in any
/// place it is read.
#[tokio::test]
async fn the_server_refuses_what_the_document_calls_invalid() {
    let app = spawn_app_with(with_operator).await;
    let long = "u".repeat(129);
    for (method, path, token) in [
        ("DELETE", format!("/v1/users/{long}/review-flag"), TOKEN),
        (
            "DELETE",
            format!("/admin/v1/users/{long}/review-flag"),
            ADMIN_TOKEN,
        ),
        ("GET", format!("/v1/withdrawals?user_id={long}"), TOKEN),
        ("GET", format!("/v1/users/{long}/balances"), TOKEN),
    ] {
        let response = app
            .http
            .request(method.parse().unwrap(), app.url(&path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("validation_failed")),
            "{method} {path}"
        );
    }
    // The longest valid one is accepted.
    let valid = "u".repeat(128);
    let response = app
        .http
        .delete(app.url(&format!("/v1/users/{valid}/review-flag")))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
}
