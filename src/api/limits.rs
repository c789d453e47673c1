//! `/v1/users/{user_id}/limits/{currency}`: read and override a user's withdrawal limits.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;

use super::body;
use super::error::ApiError;
use super::requests::LimitsRequest;
use super::AppState;
use crate::domain::{Amount, Currency, UserId};
use crate::withdrawals::limits::{self, EffectiveLimits};

fn parse_path(
    user: &str,
    currency: &str,
    state: &AppState,
) -> Result<(UserId, Currency), ApiError> {
    let user = UserId::parse(user)
        .ok_or_else(|| ApiError::validation("user_id", "1 to 128 visible ASCII characters"))?;
    let currency = Currency::parse(currency)
        .filter(|c| state.currencies.catalog().get(c).is_some())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unsupported_currency",
                format!("{currency:?} is not a supported currency"),
            )
        })?;
    Ok((user, currency))
}

fn limit(text: Option<String>, name: &str) -> Result<Option<rust_decimal::Decimal>, ApiError> {
    text.map(|text| {
        Amount::parse(&text).map(Amount::value).map_err(|e| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_amount",
                format!("{name}: {e}"),
            )
        })
    })
    .transpose()
}

/// `GET /v1/users/{user_id}/limits/{currency}`
#[utoipa::path(
    get, path = "/v1/users/{user_id}/limits/{currency}", operation_id = "getUserLimits", tag = "withdrawals",
    params(("user_id" = String, Path, description = "The merchant's user id"), ("currency" = String, Path, description = "The paying currency")),
    responses(
        (status = 200, description = "The limits in force (null: unlimited)", body = super::openapi::LimitsView),
        (status = 422, description = "unsupported_currency or validation_failed", body = super::openapi::Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown bearer token", body = super::openapi::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn get(
    State(state): State<AppState>,
    Path((user, currency)): Path<(String, String)>,
) -> Result<Json<EffectiveLimits>, ApiError> {
    let (user, currency) = parse_path(&user, &currency, &state)?;
    let defaults = state
        .limits
        .get(currency.as_str())
        .cloned()
        .unwrap_or_default();
    Ok(Json(
        limits::effective(&state.pool, user.as_str(), currency.as_str(), &defaults).await?,
    ))
}

/// `PUT /v1/users/{user_id}/limits/{currency}`
#[utoipa::path(
    put, path = "/v1/users/{user_id}/limits/{currency}", operation_id = "setUserLimits", tag = "withdrawals",
    params(("user_id" = String, Path, description = "The merchant's user id"), ("currency" = String, Path, description = "The paying currency")),
    request_body = super::requests::LimitsRequest,
    responses(
        (status = 200, description = "The limits now in force", body = super::openapi::LimitsView),
        (status = 422, description = "invalid_amount, unsupported_currency or validation_failed", body = super::openapi::Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown bearer token", body = super::openapi::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn put(
    State(state): State<AppState>,
    Path((user, currency)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<EffectiveLimits>, ApiError> {
    let (user, currency) = parse_path(&user, &currency, &state)?;
    let request: LimitsRequest = body::parse(&body::bytes(body)?)?;
    let per_withdrawal = limit(request.max_per_withdrawal, "max_per_withdrawal")?;
    let per_day = limit(request.max_per_day, "max_per_day")?;
    limits::set_user_limits(
        &state.pool,
        user.as_str(),
        currency.as_str(),
        per_withdrawal,
        per_day,
    )
    .await?;
    tracing::info!(user_id = %user, %currency, ?per_withdrawal, ?per_day, "withdrawal limits set");
    let defaults = state
        .limits
        .get(currency.as_str())
        .cloned()
        .unwrap_or_default();
    Ok(Json(
        limits::effective(&state.pool, user.as_str(), currency.as_str(), &defaults).await?,
    ))
}
