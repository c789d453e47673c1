//! `/v1/withdrawals`: request, read, list.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use uuid::Uuid;

use super::body;
use super::error::ApiError;
use super::requests::WithdrawalRequest;
use super::views::{WithdrawalPage, WithdrawalView};
use super::{pagination, AppState};
use crate::domain::travel_rule::TravelRuleInput;
use crate::domain::{IdempotencyKey, WithdrawalStatus};
use crate::withdrawals::request::{self, CreateOutcome, WithdrawalInput};
use crate::withdrawals::store::{self, ListFilter};

fn idempotency_key(headers: &HeaderMap) -> Result<IdempotencyKey, ApiError> {
    headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .and_then(IdempotencyKey::parse)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "idempotency_key_required",
                "an Idempotency-Key header of 1 to 255 visible ASCII characters is required",
            )
        })
}

fn input_of(body: &[u8]) -> Result<WithdrawalInput, ApiError> {
    let request: WithdrawalRequest = body::parse(body)?;
    Ok(WithdrawalInput {
        user_id: request.user_id,
        amount: request.amount,
        currency: request.currency,
        convert_to: request.convert_to,
        address: request.address,
        tag: request.tag,
        end_user_reference: request.end_user_reference,
        travel_rule: TravelRuleInput {
            sender_type: request.sender_type,
            sender_data: request.sender_data.map(|party| party.into_map()),
            receiver_type: request.receiver_type,
            receiver_data: request.receiver_data.map(|party| party.into_map()),
        },
    })
}

#[utoipa::path(
    post, path = "/v1/withdrawals", operation_id = "createWithdrawal", tag = "withdrawals",
    params(("Idempotency-Key" = String, Header, description = "1 to 255 visible ASCII characters; the same key and body replays")),
    request_body = super::requests::WithdrawalRequest,
    responses(
        (status = 201, description = "Held, and submitted or being submitted: status pending (answered before CoinsPaid did), processing or rejected; awaiting_approval when the approval policy holds it", body = WithdrawalView),
        (status = 200, description = "The same key and body again: the same withdrawal, nothing new", body = WithdrawalView),
        (status = 400, description = "invalid_json or idempotency_key_required", body = super::openapi::Problem, content_type = "application/problem+json"),
        (status = 409, description = "idempotency_key_reused", body = super::openapi::Problem, content_type = "application/problem+json"),
        (status = 422, description = "invalid_amount, unsupported_currency, unsupported_pair, invalid_address, below_minimum, insufficient_funds, limit_exceeded or validation_failed", body = super::openapi::Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown bearer token", body = super::openapi::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
/// `POST /v1/withdrawals`: holds and stores in one transaction, then starts the first
/// submission attempt and waits for it up to `worker.first_attempt_wait_ms`, so by default
/// the answer usually says `processing` already.
pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<WithdrawalView>), ApiError> {
    let key = idempotency_key(&headers)?;
    let input = input_of(&body::bytes(body)?)?;
    let valid = request::validate(&input, &state.currencies.catalog(), &state.travel_rule)?;
    let has_travel_rule = !valid.travel_rule.is_empty();
    let outcome = state.creates.create(key, valid).await?;
    let (status, withdrawal) = match outcome {
        CreateOutcome::Replayed(withdrawal) => (StatusCode::OK, withdrawal),
        // Awaiting approval, or its currency is paused: held and queued, nothing sent.
        CreateOutcome::Held(withdrawal) => (StatusCode::CREATED, withdrawal),
        CreateOutcome::Created { withdrawal, lease } => (
            StatusCode::CREATED,
            state
                .first_attempts
                .run(lease, withdrawal, has_travel_rule)
                .await?,
        ),
    };
    Ok((
        status,
        Json(WithdrawalView::new(
            &state.currencies.catalog(),
            &withdrawal,
        )),
    ))
}

/// `GET /v1/withdrawals/{id}`
#[utoipa::path(
    get, path = "/v1/withdrawals/{id}", operation_id = "getWithdrawal", tag = "withdrawals",
    params(("id" = String, Path, description = "The withdrawal's id (UUID)")),
    responses((status = 200, description = "The withdrawal", body = WithdrawalView), (status = 404, description = "not_found", body = super::openapi::Problem, content_type = "application/problem+json"), (status = 401, description = "Missing or unknown bearer token", body = super::openapi::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub async fn get(
    State(state): State<AppState>,
    Path(raw_id): Path<String>,
) -> Result<Json<WithdrawalView>, ApiError> {
    let id = Uuid::parse_str(&raw_id).map_err(|_| ApiError::not_found("withdrawal"))?;
    let withdrawal = store::get(&state.pool, id)
        .await?
        .ok_or_else(|| ApiError::not_found("withdrawal"))?;
    Ok(Json(WithdrawalView::new(
        &state.currencies.catalog(),
        &withdrawal,
    )))
}

/// `GET /v1/withdrawals?user_id=&status=&limit=&cursor=`: newest first.
#[utoipa::path(
    get, path = "/v1/withdrawals", operation_id = "listWithdrawals", tag = "withdrawals",
    params(
        ("user_id" = Option<String>, Query, description = "Only this user's"),
        ("status" = Option<String>, Query, description = "awaiting_approval, pending, processing, confirmed, cancelled or rejected"),
        ("limit" = Option<i64>, Query, description = "1 to 200, default 50"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
    ),
    responses((status = 200, description = "Withdrawals, newest first", body = super::views::WithdrawalPage), (status = 422, description = "validation_failed", body = super::openapi::Problem, content_type = "application/problem+json"), (status = 401, description = "Missing or unknown bearer token", body = super::openapi::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<WithdrawalPage>, ApiError> {
    let (limit, before) = pagination::parse(
        params.get("limit").map(String::as_str),
        params.get("cursor").map(String::as_str),
    )?;
    let status = params
        .get("status")
        .filter(|s| !s.is_empty())
        .map(|s| {
            WithdrawalStatus::parse(s).ok_or_else(|| {
                ApiError::validation(
                    "status",
                    "must be awaiting_approval, pending, processing, confirmed, cancelled or rejected",
                )
            })
        })
        .transpose()?;
    let filter = ListFilter {
        user_id: params.get("user_id").filter(|u| !u.is_empty()).cloned(),
        status,
        before,
    };
    let rows = store::list(&state.pool, &filter, limit + 1).await?;
    let (rows, next_cursor) = pagination::finish(rows, limit, |w| w.id);
    Ok(Json(WithdrawalPage {
        data: rows
            .iter()
            .map(|w| WithdrawalView::new(&state.currencies.catalog(), w))
            .collect(),
        next_cursor,
    }))
}
