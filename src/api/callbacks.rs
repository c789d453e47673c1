//! `POST /v1/callbacks/coinspaid`: no bearer token; the HMAC over the raw body is the
//! authentication, checked before anything is parsed.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};

use super::body;
use super::error::ApiError;
use super::AppState;
use crate::coinspaid::{KEY_HEADER, SIGNATURE_HEADER};
use crate::withdrawals::settle::callbacks::CallbackOutcome;

/// CoinsPaid's callback. Authenticated by `X-Processing-Key` and `X-Processing-Signature`
/// (hex HMAC-SHA512 of the raw body), not by a bearer token.
#[utoipa::path(
    post, path = "/v1/callbacks/coinspaid", operation_id = "receiveCoinsPaidCallback", tag = "callbacks",
    params(
        ("X-Processing-Key" = String, Header, description = "The merchant's public key"),
        ("X-Processing-Signature" = String, Header, description = "Hex HMAC-SHA512 of the raw body"),
    ),
    request_body(content = String, description = "CoinsPaid's callback JSON", content_type = "application/json"),
    responses(
        (status = 200, description = "Acknowledged: applied, duplicate, ignored (not a withdrawal, unknown foreign_id), an anomaly (does not match its withdrawal, contradicts a final status, has an object key twice), an undocumented status word, or verified JSON that cannot be interpreted (stored and flagged): anything else makes CoinsPaid retry for a day"),
        (status = 400, description = "invalid_json: verified but not JSON", body = super::openapi::Problem, content_type = "application/problem+json"),
        (status = 401, description = "unauthorized: key or signature missing or wrong", body = super::openapi::Problem, content_type = "application/problem+json"),
        (status = 413, description = "payload_too_large", body = super::openapi::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn coinspaid(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<StatusCode, ApiError> {
    let body = body::bytes(body)?;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let outcome = state
        .usecases
        .callbacks
        .receive(header(KEY_HEADER), header(SIGNATURE_HEADER), &body)
        .await?;
    match outcome {
        CallbackOutcome::Rejected(_) => Err(ApiError::unauthorized(
            "callback signature or key missing or wrong",
        )),
        CallbackOutcome::Invalid => Err(ApiError::invalid_json("the callback body is not JSON")),
        // Everything else is acknowledged so CoinsPaid stops retrying.
        _ => Ok(StatusCode::OK),
    }
}
