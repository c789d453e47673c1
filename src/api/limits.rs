//! `/v1/users/{user_id}/limits/{currency}`: read and override a user's withdrawal limits.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

use super::error::{ApiError, ErrorCode};
use super::json::ApiJson;
use super::params::LimitsOf;
use super::requests::LimitsRequest;
use super::AppState;
use crate::domain::Amount;
use crate::withdrawals::create::limits::EffectiveLimits;

fn limit(text: Option<String>, name: &str) -> Result<Option<rust_decimal::Decimal>, ApiError> {
    text.map(|text| {
        Amount::parse(&text).map(Amount::value).map_err(|e| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::InvalidAmount,
                format!("{name}: {e}"),
            )
        })
    })
    .transpose()
}

/// Get a user's withdrawal limits
///
/// The limits in force on withdrawals paid from `currency`: the user's own, else the configured
/// default. `null` is unlimited.
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
    LimitsOf(user, currency): LimitsOf,
) -> Result<Json<EffectiveLimits>, ApiError> {
    Ok(Json(state.usecases.limits.get(&user, &currency).await?))
}

/// Set a user's withdrawal limits
///
/// Overrides the configured default for this user and currency: `max_per_withdrawal`, and
/// `max_per_day` over any rolling 24 hours, counting withdrawals not cancelled or rejected. `null`
/// or absent: the configured default. A withdrawal over a limit is refused with `422
/// limit_exceeded`.
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
    LimitsOf(user, currency): LimitsOf,
    ApiJson(request): ApiJson<LimitsRequest>,
) -> Result<Json<EffectiveLimits>, ApiError> {
    let per_withdrawal = limit(request.max_per_withdrawal, "max_per_withdrawal")?;
    let per_day = limit(request.max_per_day, "max_per_day")?;
    let limits = &state.usecases.limits;
    Ok(Json(
        limits
            .set(&user, &currency, per_withdrawal, per_day)
            .await?,
    ))
}
