//! The answers an operation can give besides its own, stated on every operation they apply
//! to, so that a generated client parses each one and a contract tester accepts it: who
//! refuses the request (authentication, the body's reader, the path's and query's parsers,
//! the rate limiter) decides which, not the handler.

use serde_json::{json, Value};

use crate::api::error::ErrorCode;

/// A problem+json answer whose description names its codes and what they mean.
fn problem(codes: &[ErrorCode]) -> Value {
    let description = codes
        .iter()
        .map(|code| format!("`{code}`: {}", code.meaning()))
        .collect::<Vec<_>>()
        .join(" ");
    json!({
        "description": description,
        "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    })
}

/// `Retry-After` as `ApiError` sends it: whole seconds, at least one.
fn retry_after() -> Value {
    json!({
        "description": "Seconds to wait before trying again",
        "required": true,
        "schema": {"type": "integer", "minimum": 1, "example": 1}
    })
}

/// Whether the operation reads a JSON body into a request type (CoinsPaid's callback is read
/// as bytes and verified instead).
fn reads_json_body(operation: &Value) -> bool {
    operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].is_string()
}

/// Adds the answers the layers around the handler give.
pub(super) fn complete(path: &str, operation: &mut Value) {
    use ErrorCode::*;
    let secured = !operation["security"].as_array().is_some_and(Vec::is_empty);
    let json_body = reads_json_body(operation);
    let parameters = operation["parameters"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let has = |location: &str, names: &[&str]| {
        parameters.iter().any(|p| {
            p["in"] == location && (names.is_empty() || names.iter().any(|n| p["name"] == *n))
        })
    };
    // The path's `{id}` parser answers 404 for what is not a UUID; the others, and the query's
    // and the body's readers, answer 422 naming the parameter or field. Every secured
    // operation refuses a query parameter it does not take (`params::refusing_stray_queries`).
    let names_a_withdrawal = has("path", &["id"]);
    let validated =
        secured || json_body || has("query", &[]) || has("path", &["user_id", "currency", "scope"]);
    let responses = operation["responses"]
        .as_object_mut()
        .expect("every operation has responses");
    let mut add = |status: &str, value: Value| {
        responses.entry(status.to_owned()).or_insert(value);
    };
    if secured {
        add("401", problem(&[Unauthorized]));
    }
    if json_body {
        add("400", problem(&[InvalidJson, InvalidBody]));
        add("413", problem(&[PayloadTooLarge]));
    }
    if names_a_withdrawal {
        add("404", problem(&[NotFound]));
    }
    if validated {
        add("422", problem(&[ValidationFailed]));
    }
    add("429", problem(&[RateLimited]));
    add("500", problem(&[InternalError]));
    add("503", problem(&[Timeout, Unavailable]));
    for (status, response) in responses.iter_mut() {
        // /readyz's own 503 is its report, not a problem.
        let problem_503 = status == "503" && path != "/readyz";
        if status == "429" || problem_503 {
            response["headers"]["Retry-After"] = retry_after();
        }
    }
}
