//! Reading request bodies field by field, so every mistake gets its precise code:
//! `invalid_json` for unparsable bodies, `invalid_amount` for an amount that is not a decimal
//! string, `validation_failed` naming the field for everything else.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use serde_json::{Map, Value};

use super::error::ApiError;

/// The raw body, or the right problem when it could not be read (over 64 KiB: 413).
pub fn bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        let status = rejection.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                status,
                "payload_too_large",
                "request bodies are limited to 64 KiB",
            )
        } else {
            ApiError::new(status, "invalid_body", rejection.body_text())
        }
    })
}

/// A JSON object body, consumed field by field.
pub struct JsonObject(Map<String, Value>);

impl JsonObject {
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => Ok(Self(map)),
            Ok(_) => Err(ApiError::invalid_json("the body must be a JSON object")),
            Err(e) => Err(ApiError::invalid_json(format!(
                "the body is not valid JSON: {e}"
            ))),
        }
    }

    /// A required string field.
    pub fn string(&mut self, field: &str) -> Result<String, ApiError> {
        self.opt_string(field)?
            .ok_or_else(|| ApiError::validation(field, "is required"))
    }

    /// An optional string field; absent and `null` are both "not given".
    pub fn opt_string(&mut self, field: &str) -> Result<Option<String>, ApiError> {
        match self.0.remove(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(ApiError::validation(field, "must be a string")),
        }
    }

    /// An optional JSON object field; absent and `null` are both "not given".
    pub fn opt_object(&mut self, field: &str) -> Result<Option<Map<String, Value>>, ApiError> {
        match self.0.remove(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(map)) => Ok(Some(map)),
            Some(_) => Err(ApiError::validation(field, "must be an object")),
        }
    }

    /// An amount: a decimal *string*. A JSON number is refused, because a float cannot carry
    /// money exactly and "100.10" must arrive as written.
    pub fn amount(&mut self, field: &str) -> Result<String, ApiError> {
        match self.0.remove(field) {
            None | Some(Value::Null) => Err(ApiError::validation(field, "is required")),
            Some(Value::String(s)) => Ok(s),
            Some(_) => Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_amount",
                format!("{field} must be a decimal string such as \"100.50\", not a JSON number"),
            )),
        }
    }

    /// An optional boolean field; absent and `null` are both "not given".
    pub fn opt_bool(&mut self, field: &str) -> Result<Option<bool>, ApiError> {
        match self.0.remove(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(_) => Err(ApiError::validation(field, "must be true or false")),
        }
    }

    /// Refuses fields we do not know: a misspelt optional field must not be silently dropped
    /// from a payout.
    pub fn finish(self) -> Result<(), ApiError> {
        match self.0.keys().next() {
            Some(unknown) => Err(ApiError::validation(unknown, "is not a known field")),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_mistake_gets_its_code() {
        assert_eq!(JsonObject::parse(b"{").err().unwrap().code, "invalid_json");
        assert_eq!(JsonObject::parse(b"[]").err().unwrap().code, "invalid_json");
        let mut o =
            JsonObject::parse(br#"{"amount":1.5,"a":1,"b":null,"x":"y","o":"s","p":{"k":1}}"#)
                .unwrap();
        assert_eq!(
            o.opt_object("o").unwrap_err().detail,
            "o: must be an object"
        );
        assert_eq!(o.opt_object("p").unwrap().unwrap()["k"], 1);
        assert_eq!(o.opt_object("b").unwrap(), None);
        assert_eq!(o.amount("amount").unwrap_err().code, "invalid_amount");
        assert_eq!(o.string("a").unwrap_err().code, "validation_failed");
        assert_eq!(o.opt_string("b").unwrap(), None);
        assert_eq!(
            o.string("missing").unwrap_err().detail,
            "missing: is required"
        );
        assert!(o.finish().unwrap_err().detail.starts_with("x:"));
    }
}
