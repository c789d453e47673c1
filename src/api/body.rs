//! Reading request bodies into the request types (`requests.rs`, the admin views), which are
//! also what the OpenAPI document describes, so the two cannot drift. serde does the work;
//! serde_path_to_error names the field, and every failure gets the contract's code:
//! `invalid_json` for an unparsable or non-object body or one with an object key twice,
//! `invalid_amount` for an amount that is
//! not a decimal string, `validation_failed` naming the field (`sender_data.email: ...`) for
//! everything else. A refusal never repeats the value (it may be personal data).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::{ApiError, ErrorCode};

/// The raw body, or the right problem when it could not be read (over 64 KiB: 413).
pub fn bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        let status = rejection.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                status,
                ErrorCode::PayloadTooLarge,
                "request bodies are limited to 64 KiB",
            )
        } else {
            ApiError::new(status, ErrorCode::InvalidBody, rejection.body_text())
        }
    })
}

/// A JSON object body as `T`.
pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    // Parsed as a value first: a syntax error is `invalid_json`, a shape error names a field.
    let value = match serde_json::from_slice::<Value>(body) {
        Ok(value @ Value::Object(_)) => value,
        Ok(_) => return Err(ApiError::invalid_json("the body must be a JSON object")),
        Err(e) => {
            return Err(ApiError::invalid_json(format!(
                "the body is not valid JSON: {e}"
            )))
        }
    };
    // Readers disagree about which of two equal keys counts; the body means nothing certain.
    if let Some(key) = crate::strict_json::duplicate_key(body) {
        return Err(ApiError::invalid_json(format!(
            "the body has the key {key} more than once"
        )));
    }
    serde_path_to_error::deserialize(value).map_err(|e| refusal(&e))
}

/// The problem for a body of the wrong shape. Messages of our own (`field`) pass through;
/// serde's own (missing or unknown field, a non-object where an object belongs) are reworded,
/// as they would quote the value.
fn refusal(error: &serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = error.path().to_string();
    let message = error.inner().to_string();
    let child = |name: &str| match path.as_str() {
        "." => name.to_owned(),
        parent => format!("{parent}.{name}"),
    };
    if let Some(name) = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next())
    {
        return ApiError::validation(&child(name), "is required");
    }
    if message.starts_with("unknown field `") {
        return ApiError::validation(&path, "is not a known field");
    }
    if message == field::NOT_A_DECIMAL_STRING {
        return ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::InvalidAmount,
            format!("{path} must be a decimal string such as \"100.50\", not a JSON number"),
        );
    }
    if message.starts_with("invalid type:") {
        // Only the nested objects are left to serde's own type checks.
        return ApiError::validation(&path, "must be an object");
    }
    ApiError::validation(&path, message)
}

/// Field deserializers with the contract's wording. Absent optional fields need
/// `#[serde(default)]` beside them.
pub mod field {
    use serde::de::Error;
    use serde::{Deserialize, Deserializer};
    use serde_json::Value;

    /// The marker `refusal` turns into `invalid_amount`.
    pub(super) const NOT_A_DECIMAL_STRING: &str = "is not a decimal string";

    /// A required string; `null` counts as missing.
    pub fn string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        opt_string(d)?.ok_or_else(|| D::Error::custom("is required"))
    }

    /// An optional string; absent and `null` are both "not given".
    pub fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        match Value::deserialize(d)? {
            Value::Null => Ok(None),
            Value::String(s) => Ok(Some(s)),
            _ => Err(D::Error::custom("must be a string")),
        }
    }

    /// An amount: a decimal *string*. A JSON number is refused, because a float cannot carry
    /// money exactly and "100.10" must arrive as written.
    pub fn amount<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        match Value::deserialize(d)? {
            Value::Null => Err(D::Error::custom("is required")),
            Value::String(s) => Ok(s),
            _ => Err(D::Error::custom(NOT_A_DECIMAL_STRING)),
        }
    }

    /// An optional boolean; absent and `null` are both "not given".
    pub fn opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
        match Value::deserialize(d)? {
            Value::Null => Ok(None),
            Value::Bool(b) => Ok(Some(b)),
            _ => Err(D::Error::custom("must be true or false")),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Sample {
        #[serde(deserialize_with = "field::amount")]
        amount: String,
        #[serde(deserialize_with = "field::string")]
        a: String,
        #[serde(default, deserialize_with = "field::opt_string")]
        b: Option<String>,
        #[serde(default, deserialize_with = "field::opt_bool")]
        flag: Option<bool>,
        #[serde(default)]
        o: Option<Inner>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        #[serde(default, deserialize_with = "field::opt_string")]
        k: Option<String>,
    }

    fn refused(body: &str) -> ApiError {
        parse::<Sample>(body.as_bytes()).unwrap_err()
    }

    #[test]
    fn each_mistake_gets_its_code_and_names_its_field() {
        assert_eq!(refused("{").code, "invalid_json");
        assert_eq!(refused("[]").code, "invalid_json");
        let twice = refused(r#"{"amount":"1","a":"x","o":{"k":"a","k":"b"}}"#);
        assert_eq!(
            (twice.code, twice.detail.as_str()),
            (
                ErrorCode::InvalidJson,
                "the body has the key o.k more than once"
            )
        );
        let number = refused(r#"{"amount":1.5,"a":"x"}"#);
        assert_eq!(
            (number.code, number.detail.starts_with("amount ")),
            (ErrorCode::InvalidAmount, true)
        );
        for (body, detail) in [
            (r#"{"amount":"1"}"#, "a: is required"),
            (r#"{"amount":"1","a":null}"#, "a: is required"),
            (r#"{"amount":null,"a":"x"}"#, "amount: is required"),
            (r#"{"amount":"1","a":7}"#, "a: must be a string"),
            (r#"{"amount":"1","a":"x","b":[]}"#, "b: must be a string"),
            (
                r#"{"amount":"1","a":"x","flag":"yes"}"#,
                "flag: must be true or false",
            ),
            (
                r#"{"amount":"1","a":"x","x":"secret"}"#,
                "x: is not a known field",
            ),
            (
                r#"{"amount":"1","a":"x","o":"secret"}"#,
                "o: must be an object",
            ),
            (
                r#"{"amount":"1","a":"x","o":{"k":1}}"#,
                "o.k: must be a string",
            ),
            (
                r#"{"amount":"1","a":"x","o":{"z":"secret"}}"#,
                "o.z: is not a known field",
            ),
        ] {
            let problem = refused(body);
            assert_eq!(
                (problem.code, problem.detail.as_str()),
                (ErrorCode::ValidationFailed, detail),
                "{body}"
            );
            assert!(!problem.detail.contains("secret"));
        }
        let ok = parse::<Sample>(br#"{"amount":"1","a":"x","b":null,"o":null}"#).unwrap();
        assert_eq!((ok.b, ok.flag, ok.o.is_none()), (None, None, true));
    }
}
