//! The request body extractor: every JSON body of `/v1` and `/admin/v1` is read here, once,
//! into its request type (`requests.rs`, the admin views), with the contract's refusals as
//! `ApiError` (axum's `examples/error-handling` `AppJson`, with our own rejection):
//! over 64 KiB is `413 payload_too_large`, not JSON or an object key twice is
//! `400 invalid_json`, an unknown or ill-typed field is `422 validation_failed` naming it
//! (`body::parse` has the rules). The content type is not looked at: the contract asks for
//! none, clients send JSON without one, and the body alone decides.
//!
//! CoinsPaid's callback is not read here: its HMAC covers the raw bytes, verified first.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;

use super::body;
use super::error::ApiError;

/// A JSON object body as `T`.
pub struct ApiJson<T>(pub T);

/// A JSON object body as `T`, where leaving the body out (empty or only whitespace) means `{}`:
/// the operators' notes and reasons, which may all be optional.
pub struct ApiJsonOrEmpty<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = body::bytes(Bytes::from_request(request, state).await)?;
        body::parse(&bytes).map(Self)
    }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJsonOrEmpty<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = body::bytes(Bytes::from_request(request, state).await)?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return body::parse(b"{}").map(Self);
        }
        body::parse(&bytes).map(Self)
    }
}

#[cfg(test)]
mod tests {
    use axum::extract::DefaultBodyLimit;
    use axum::http::{header, StatusCode};
    use axum::response::IntoResponse;
    use axum::routing::post;
    use axum::{Json, Router};
    use serde::Deserialize;
    use tower::ServiceExt;

    use super::*;
    use crate::api::BODY_LIMIT;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Note {
        #[serde(default, deserialize_with = "body::field::opt_string")]
        reason: Option<String>,
    }

    /// Status, `code` and `detail` of a POST with `body` and `content_type`, through the same
    /// body limit the API applies.
    async fn answer(
        body: Vec<u8>,
        content_type: Option<&str>,
        empty_is_object: bool,
    ) -> (StatusCode, String, String) {
        async fn strict(ApiJson(note): ApiJson<Note>) -> Json<Option<String>> {
            Json(note.reason)
        }
        async fn lenient(ApiJsonOrEmpty(note): ApiJsonOrEmpty<Note>) -> Json<Option<String>> {
            Json(note.reason)
        }
        let app = if empty_is_object {
            Router::new().route("/", post(lenient))
        } else {
            Router::new().route("/", post(strict))
        }
        .layer(DefaultBodyLimit::max(BODY_LIMIT));
        let mut request = Request::post("/");
        if let Some(content_type) = content_type {
            request = request.header(header::CONTENT_TYPE, content_type);
        }
        let response = app
            .oneshot(request.body(axum::body::Body::from(body)).unwrap())
            .await
            .unwrap()
            .into_response();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let answer: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        if status.is_success() {
            return (status, String::new(), answer.to_string());
        }
        (
            status,
            answer["code"].as_str().unwrap().to_owned(),
            answer["detail"].as_str().unwrap().to_owned(),
        )
    }

    fn json(text: &str) -> Vec<u8> {
        text.as_bytes().to_vec()
    }

    #[tokio::test]
    async fn a_key_twice_is_invalid_json_naming_the_key() {
        let answer = answer(json(r#"{"reason":"a","reason":"b"}"#), None, false).await;
        assert_eq!(
            answer,
            (
                StatusCode::BAD_REQUEST,
                "invalid_json".into(),
                "the body has the key reason more than once".into()
            )
        );
    }

    #[tokio::test]
    async fn an_unknown_field_is_refused_by_name_without_its_value() {
        let answer = answer(json(r#"{"reason":"a","amount":"secret"}"#), None, false).await;
        assert_eq!(
            answer,
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed".into(),
                "amount: is not a known field".into()
            )
        );
    }

    #[tokio::test]
    async fn the_body_decides_whatever_the_content_type_says() {
        for content_type in [None, Some("text/plain"), Some("application/json")] {
            assert_eq!(
                answer(json(r#"{"reason":"a"}"#), content_type, false).await,
                (StatusCode::OK, String::new(), r#""a""#.into()),
                "{content_type:?}"
            );
            let (status, code, _) = answer(json("reason=a"), content_type, false).await;
            assert_eq!(
                (status, code.as_str()),
                (StatusCode::BAD_REQUEST, "invalid_json")
            );
        }
    }

    #[tokio::test]
    async fn a_body_over_64_kib_is_413() {
        let big = format!(r#"{{"reason":"{}"}}"#, "x".repeat(BODY_LIMIT));
        let (status, code, _) = answer(big.into_bytes(), Some("application/json"), false).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
        );
        let (status, _, _) = answer(
            json(&format!(r#"{{"reason":"{}"}}"#, "x".repeat(500))),
            None,
            false,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
    }

    #[tokio::test]
    async fn only_the_lenient_extractor_reads_an_empty_body_as_an_empty_object() {
        assert_eq!(
            answer(json(" \n"), None, true).await,
            (StatusCode::OK, String::new(), "null".into())
        );
        let (status, code, _) = answer(Vec::new(), None, false).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::BAD_REQUEST, "invalid_json")
        );
        let (status, code, _) = answer(json(r#"{"x":1}"#), None, true).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")
        );
    }
}
