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

/// Receive a CoinsPaid callback
///
/// CoinsPaid's report on a withdrawal, authenticated by `X-Processing-Key` and
/// `X-Processing-Signature` (hex HMAC-SHA512 of the raw body with the shared secret) instead of a
/// bearer token, and verified before anything is read.
///
/// A verified callback is stored, checked against its withdrawal and applied at most once:
/// `confirmed` debits the hold, `cancelled` or `declined` releases it. Once verified it is answered
/// `200` whatever it says (a duplicate, a deposit, an unknown id, an anomaly), so that CoinsPaid
/// stops retrying.
#[utoipa::path(
    post, path = "/v1/callbacks/coinspaid", operation_id = "receiveCoinsPaidCallback", tag = "callbacks",
    params(
        ("X-Processing-Key" = String, Header, description = "The merchant's public key"),
        ("X-Processing-Signature" = String, Header, description = "Hex HMAC-SHA512 of the raw body"),
    ),
    request_body(content = Object, description = "CoinsPaid's callback: a JSON object as CoinsPaid documents it (`id`, `foreign_id`, `type`, `status`, `crypto_address`, `currency_sent`, `currency_received`, `transactions`, `fees`, `error`), verified as raw bytes before it is read", content_type = "application/json",
        example = json!({
            "id": 1, "foreign_id": "pd-0193a1b2c3d47e5f8a9b0c1d2e3f4a5b", "end_user_reference": "u1", "type": "withdrawal",
            "crypto_address": {"id": 1, "currency": "BTC", "address": "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq", "tag": null},
            "currency_sent": {"currency": "BTC", "amount": "0.02000000"},
            "currency_received": {"currency": "BTC", "amount": "0.02000000"},
            "transactions": [{"id": 1, "currency": "BTC", "transaction_type": "blockchain", "type": "withdrawal",
                "address": "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq", "tag": null, "amount": "0.02",
                "txid": "bb040d895ef7141ea0b06b04227d8f5dd4ee12d5b890e6e5633f6439393a666b", "confirmations": 3}],
            "fees": [{"type": "mining", "currency": "BTC", "amount": "0.00007402"}],
            "error": "", "status": "confirmed"
        })),
    responses(
        (status = 200, description = "Acknowledged: applied, duplicate, ignored (not a withdrawal, unknown foreign_id), an anomaly (does not match its withdrawal, contradicts a final status, has an object key twice), an undocumented status word, or verified JSON that cannot be interpreted (stored and flagged): anything else makes CoinsPaid retry for a day"),
        (status = 400, description = "invalid_json: verified but not JSON", body = super::openapi::Problem, content_type = "application/problem+json"),
        (status = 401, description = "unauthorized: key or signature missing or wrong", body = super::openapi::Problem, content_type = "application/problem+json"),
        (status = 403, description = "forbidden: the source address is not in `abuse.callback_allow`", body = super::openapi::Problem, content_type = "application/problem+json"),
        (status = 413, description = "payload_too_large", body = super::openapi::Problem, content_type = "application/problem+json"),
        (status = 429, description = "rate_limited: too many callbacks from this address failed verification", body = super::openapi::Problem, content_type = "application/problem+json"),
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
