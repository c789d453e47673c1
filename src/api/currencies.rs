//! `GET /v1/currencies` and `POST /v1/quotes`: what can be paid out, and what a user would
//! receive, so the website can show it before the user confirms.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{SecondsFormat, TimeZone, Utc};
use serde::Serialize;

use super::body::{self, JsonObject};
use super::error::ApiError;
use super::AppState;
use crate::coinspaid::wire::ExchangeCalculateRequest;
use crate::coinspaid::ProviderError;
use crate::currencies::Source;
use crate::domain::currency::CurrencyKind;
use crate::domain::money::format_amount;
use crate::withdrawals::request::validate_conversion;

#[derive(Serialize, utoipa::ToSchema)]
pub struct CurrencyView {
    #[schema(example = "BTC")]
    currency: String,
    /// `crypto` or `fiat`.
    #[serde(rename = "type")]
    #[schema(example = "crypto")]
    kind: &'static str,
    /// Decimals an amount may carry.
    #[schema(example = 8)]
    precision: u32,
    /// The smallest withdrawal paid from this currency.
    #[schema(example = "0.0001")]
    minimum_withdrawal: String,
    tag_required: bool,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CurrenciesResponse {
    data: Vec<CurrencyView>,
    /// `coinspaid` (loaded from /v2/currencies/list) or `builtin` (CoinsPaid not reached yet).
    source: &'static str,
    refreshed_at: Option<String>,
}

/// `GET /v1/currencies`
#[utoipa::path(
    get, path = "/v1/currencies", tag = "withdrawals",
    responses(
        (status = 200, description = "Currencies that can pay or be received, with precision and minimums", body = CurrenciesResponse),
        (status = 401, description = "Missing or unknown bearer token", body = super::openapi::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn list(State(state): State<AppState>) -> Json<CurrenciesResponse> {
    let catalog = state.currencies.catalog();
    let (source, refreshed_at) = state.currencies.source();
    let mut data: Vec<CurrencyView> = catalog
        .all()
        .map(|c| CurrencyView {
            currency: c.currency.to_string(),
            kind: if c.kind == CurrencyKind::Fiat {
                "fiat"
            } else {
                "crypto"
            },
            precision: c.precision,
            minimum_withdrawal: c.minimum_withdrawal.normalize().to_string(),
            tag_required: c.tag_required,
        })
        .collect();
    data.sort_by(|a, b| a.currency.cmp(&b.currency));
    Json(CurrenciesResponse {
        data,
        source: match source {
            Source::CoinsPaid => "coinspaid",
            Source::Builtin => "builtin",
        },
        refreshed_at: refreshed_at.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true)),
    })
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct QuoteResponse {
    #[schema(example = "100.00")]
    amount: String,
    #[schema(example = "EUR")]
    currency: String,
    #[schema(example = "BTC")]
    convert_to: String,
    /// What the user would receive, after CoinsPaid's fee. An estimate, not a promise.
    #[schema(example = "0.00165833")]
    receive_amount: String,
    fee_amount: Option<String>,
    fee_currency: Option<String>,
    /// Price of one `convert_to` in `currency`.
    price: Option<String>,
    quoted_at: String,
}

/// `POST /v1/quotes`
#[utoipa::path(
    post, path = "/v1/quotes", tag = "withdrawals",
    request_body = super::openapi::QuoteRequest,
    responses(
        (status = 200, description = "CoinsPaid's estimate of what the user receives", body = QuoteResponse),
        (status = 422, description = "invalid_amount, unsupported_currency, unsupported_pair, below_minimum or validation_failed", body = super::openapi::Problem, content_type = "application/problem+json"),
        (status = 502, description = "provider_unavailable: CoinsPaid did not give an estimate", body = super::openapi::Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown bearer token", body = super::openapi::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn quote(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<QuoteResponse>, ApiError> {
    let mut fields = JsonObject::parse(&body::bytes(body)?)?;
    let amount = fields.amount("amount")?;
    let currency = fields.string("currency")?;
    let convert_to = fields.string("convert_to")?;
    fields.finish()?;
    let conversion = validate_conversion(
        &amount,
        &currency,
        Some(&convert_to),
        &state.currencies.catalog(),
    )?;
    let request = ExchangeCalculateRequest {
        sender_currency: conversion.paying.currency.to_string(),
        receiver_currency: conversion.receiving.currency.to_string(),
        sender_amount: conversion.amount.to_string(),
    };
    let estimate = state
        .provider
        .exchange_calculate(&request)
        .await
        .map_err(|err| match err {
            ProviderError::Http { status, .. }
                if (400..500).contains(&status)
                    && status != 401
                    && status != 403
                    && status != 429 =>
            {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "unsupported_pair",
                    "CoinsPaid does not quote this pair",
                )
            }
            other => {
                tracing::warn!(error = %other, "quote: CoinsPaid gave no estimate");
                ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    "provider_unavailable",
                    "CoinsPaid did not give an estimate; retry later",
                )
            }
        })?;
    let receiving = conversion.receiving.precision;
    let quoted_at = estimate
        .ts
        .and_then(|ts| Utc.timestamp_opt(ts, 0).single())
        .unwrap_or_else(Utc::now)
        .to_rfc3339_opts(SecondsFormat::Secs, true);
    Ok(Json(QuoteResponse {
        amount: conversion.amount.to_string(),
        currency: request.sender_currency,
        convert_to: request.receiver_currency,
        receive_amount: format_amount(estimate.receiver_amount.round_dp(receiving), receiving),
        fee_amount: estimate.fee_amount.map(|f| f.normalize().to_string()),
        fee_currency: estimate.fee_currency,
        price: estimate.price.map(|p| p.normalize().to_string()),
        quoted_at,
    }))
}
