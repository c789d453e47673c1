//! `/v1/users/{user_id}/...`: credits, balances, ledger.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;

use super::body;
use super::error::ApiError;
use super::requests::CreditRequest;
use super::views::{BalanceView, LedgerEntryView, LedgerPage};
use super::{pagination, AppState};
use crate::domain::{Amount, Currency, UserId};
use crate::ledger::{self, CreditOutcome};

fn user_id(raw: &str) -> Result<UserId, ApiError> {
    UserId::parse(raw)
        .ok_or_else(|| ApiError::validation("user_id", "1 to 128 visible ASCII characters"))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CreditResponse {
    entry: LedgerEntryView,
    balance: BalanceView,
}

/// `POST /v1/users/{user_id}/credits`: idempotent on the reference.
#[utoipa::path(
    post, path = "/v1/users/{user_id}/credits", operation_id = "creditUser", tag = "balances",
    params(("user_id" = String, Path, description = "The merchant's user id")),
    request_body = super::requests::CreditRequest,
    responses(
        (status = 201, description = "Credited", body = CreditResponse),
        (status = 200, description = "The same reference, currency and amount again: nothing new", body = CreditResponse),
        (status = 409, description = "reference_conflict: the reference was used with another currency or amount", body = super::openapi::Problem, content_type = "application/problem+json"),
        (status = 422, description = "invalid_amount, unsupported_currency or validation_failed", body = super::openapi::Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown bearer token", body = super::openapi::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn credit(
    State(state): State<AppState>,
    Path(raw_user): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<CreditResponse>), ApiError> {
    let user = user_id(&raw_user)?;
    let CreditRequest {
        currency: currency_code,
        amount: amount_text,
        reference,
    } = body::parse(&body::bytes(body)?)?;

    let info = Currency::parse(&currency_code)
        .and_then(|c| state.currencies.catalog().get(&c).cloned())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unsupported_currency",
                format!("{currency_code:?} is not a supported currency"),
            )
        })?;
    let amount = Amount::parse(&amount_text)
        .and_then(|a| a.check_precision(info.currency.as_str(), info.precision))
        .map_err(|e| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_amount",
                e.to_string(),
            )
        })?;
    if !(1..=128).contains(&reference.len()) || !reference.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::validation(
            "reference",
            "1 to 128 visible ASCII characters",
        ));
    }

    let (outcome, balance) =
        ledger::credit(&state.pool, &user, &info.currency, amount, &reference).await?;
    let (status, entry) = match outcome {
        CreditOutcome::Created(entry) => {
            tracing::info!(user_id = %user, currency = %info.currency, %amount, %reference, "balance credited");
            (StatusCode::CREATED, entry)
        }
        CreditOutcome::Replayed(entry) => (StatusCode::OK, entry),
        CreditOutcome::Conflict => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "reference_conflict",
                "this reference was already credited with another currency or amount",
            ))
        }
    };
    Ok((
        status,
        Json(CreditResponse {
            entry: LedgerEntryView::new(&state.currencies.catalog(), &entry),
            balance: BalanceView::new(&state.currencies.catalog(), &balance),
        }),
    ))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct BalancesResponse {
    user_id: String,
    balances: Vec<BalanceView>,
}

/// `GET /v1/users/{user_id}/balances`: an unknown user has an empty list.
#[utoipa::path(
    get, path = "/v1/users/{user_id}/balances", operation_id = "getUserBalances", tag = "balances",
    params(("user_id" = String, Path, description = "The merchant's user id")),
    responses((status = 200, description = "Balances by currency", body = BalancesResponse), (status = 422, description = "validation_failed: user_id is not 1 to 128 visible ASCII characters", body = super::openapi::Problem, content_type = "application/problem+json"), (status = 401, description = "Missing or unknown bearer token", body = super::openapi::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub async fn balances(
    State(state): State<AppState>,
    Path(raw_user): Path<String>,
) -> Result<Json<BalancesResponse>, ApiError> {
    let user = user_id(&raw_user)?;
    let rows = ledger::balances(&state.pool, &user).await?;
    Ok(Json(BalancesResponse {
        user_id: user.to_string(),
        balances: rows
            .iter()
            .map(|b| BalanceView::new(&state.currencies.catalog(), b))
            .collect(),
    }))
}

/// `GET /v1/users/{user_id}/ledger?currency=&limit=&cursor=`: newest first.
#[utoipa::path(
    get, path = "/v1/users/{user_id}/ledger", operation_id = "listUserLedgerEntries", tag = "balances",
    params(
        ("user_id" = String, Path, description = "The merchant's user id"),
        ("currency" = Option<String>, Query, description = "Only this currency"),
        ("limit" = Option<i64>, Query, description = "1 to 200, default 50"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
    ),
    responses((status = 200, description = "Entries, newest first", body = super::views::LedgerPage), (status = 422, description = "validation_failed", body = super::openapi::Problem, content_type = "application/problem+json"), (status = 401, description = "Missing or unknown bearer token", body = super::openapi::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub async fn ledger_entries(
    State(state): State<AppState>,
    Path(raw_user): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<LedgerPage>, ApiError> {
    let user = user_id(&raw_user)?;
    let (limit, cursor) = pagination::parse(
        params.get("limit").map(String::as_str),
        params.get("cursor").map(String::as_str),
    )?;
    let currency = params.get("currency").filter(|c| !c.is_empty());
    if let Some(code) = currency {
        Currency::parse(code)
            .ok_or_else(|| ApiError::validation("currency", "is not a currency code"))?;
    }
    let rows = ledger::list_entries(
        &state.pool,
        user.as_str(),
        currency.map(String::as_str),
        cursor,
        limit + 1,
    )
    .await?;
    let (rows, next_cursor) = pagination::finish(rows, limit, |e| e.id);
    Ok(Json(LedgerPage {
        data: rows
            .iter()
            .map(|e| LedgerEntryView::new(&state.currencies.catalog(), e))
            .collect(),
        next_cursor,
    }))
}
