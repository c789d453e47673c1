//! The OpenAPI document as a client generator reads it: every operation under its own name,
//! every error a route answers described as problem+json, enums and constraints stated.
//! (CI also runs openapi-spec-validator over `payoutd openapi`.)

use std::collections::HashMap;

use serde_json::Value;

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
    let codes = schemas["Problem"]["properties"]["code"]["enum"]
        .as_array()
        .unwrap();
    for code in [
        "invalid_json",
        "payload_too_large",
        "limit_exceeded",
        "timeout",
        "not_cancellable",
        "lookup_disagrees",
    ] {
        assert!(codes.iter().any(|c| c == code), "{code}");
    }
    assert_eq!(
        schemas["WithdrawalView"]["properties"]["status"]["enum"]
            .as_array()
            .unwrap()
            .len(),
        6
    );
    assert_eq!(
        schemas["LedgerEntryView"]["properties"]["kind"]["enum"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
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
    assert_eq!(limit["schema"]["maximum"], 200);
}
