//! `/v1/withdrawals`: request, read, list.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};

use super::error::ApiError;
use super::json::ApiJson;
use super::params::{known_params, Idempotency, QueryParams, WithdrawalId};
use super::requests::WithdrawalRequest;
use super::views::{WithdrawalPage, WithdrawalView};
use super::{pagination, AppState};
use crate::domain::travel_rule::TravelRuleInput;
use crate::domain::{UserId, WithdrawalStatus};
use crate::usecases::Requested;
use crate::withdrawals::create::request::WithdrawalInput;
use crate::withdrawals::store::ListFilter;

fn input_of(request: WithdrawalRequest) -> WithdrawalInput {
    WithdrawalInput {
        user_id: request.user_id,
        amount: request.amount,
        currency: request.currency,
        convert_to: request.convert_to,
        address: request.address,
        tag: request.tag,
        end_user_reference: request.end_user_reference,
        reference: request.reference,
        travel_rule: TravelRuleInput {
            sender_type: request.sender_type,
            sender_data: request.sender_data.map(|party| party.into_map()),
            receiver_type: request.receiver_type,
            receiver_data: request.receiver_data.map(|party| party.into_map()),
        },
    }
}

/// Request a withdrawal
///
/// Holds `amount` of the user's `currency` balance and stores the withdrawal with a fresh
/// `foreign_id`, in one transaction; then sends it to CoinsPaid and waits for the answer up to
/// `worker.first_attempt_wait_ms`, so the answer usually says `processing` already (`pending` when
/// CoinsPaid has not answered yet, `rejected` when it refused the request and the hold was
/// released). A withdrawal the approval policy holds is `awaiting_approval` until an operator
/// decides.
///
/// An `Idempotency-Key` is required: the same key and body again answer `200` with the same
/// withdrawal and `Idempotent-Replayed: true`, nothing new held or sent; the same key with another
/// body is `409 idempotency_key_reused`. `reference`, if given, is your own permanent id for the
/// payout and replays the same way, without expiring.
///
/// A refusal holds and sends nothing: `422` with a `code` saying why. Travel-rule data (MiCA) is
/// passed to CoinsPaid as given and never shown back.
#[utoipa::path(
    post, path = "/v1/withdrawals", operation_id = "createWithdrawal", tag = "withdrawals",
    params(("Idempotency-Key" = String, Header, description = "1 to 255 visible ASCII characters; the same key and body replays")),
    request_body = super::requests::WithdrawalRequest,
    responses(
        (status = 201, description = "Held, and submitted or being submitted: status pending (answered before CoinsPaid did), processing or rejected; awaiting_approval when the approval policy holds it", body = WithdrawalView),
        (status = 200, description = "The same key, or the same reference, with the same body again: the same withdrawal, nothing new; marked `Idempotent-Replayed: true`", body = WithdrawalView,
            headers(("Idempotent-Replayed" = String, description = "`true`: this answer replays an earlier request"))),
        (status = 400, description = "invalid_json or idempotency_key_required", body = super::openapi::Problem, content_type = "application/problem+json"),
        (status = 409, description = "idempotency_key_reused, or reference_conflict (the reference names a withdrawal requested with a different body)", body = super::openapi::Problem, content_type = "application/problem+json"),
        (status = 422, description = "invalid_amount, unsupported_currency, unsupported_pair, invalid_address, below_minimum, insufficient_funds, limit_exceeded or validation_failed", body = super::openapi::Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown bearer token", body = super::openapi::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn create(
    State(state): State<AppState>,
    Idempotency(key): Idempotency,
    ApiJson(request): ApiJson<WithdrawalRequest>,
) -> Result<Response, ApiError> {
    let requested = state
        .usecases
        .withdrawals
        .create(key, input_of(request))
        .await?;
    let (status, replayed, withdrawal) = match requested {
        Requested::New(withdrawal) => (StatusCode::CREATED, false, withdrawal),
        Requested::Replayed(withdrawal) => (StatusCode::OK, true, withdrawal),
    };
    let view = Json(WithdrawalView::new(
        &state.currencies.catalog(),
        &withdrawal,
    ));
    let mut response = (status, view).into_response();
    if replayed {
        response.headers_mut().insert(
            "idempotent-replayed",
            axum::http::HeaderValue::from_static("true"),
        );
    }
    Ok(response)
}

/// Get a withdrawal
///
/// Its status, what CoinsPaid reported (`provider_status`, the amounts `sent` and `received`, fees,
/// transaction ids, `error`) and any `anomaly`. An id that is not a UUID names no withdrawal:
/// `404`.
#[utoipa::path(
    get, path = "/v1/withdrawals/{id}", operation_id = "getWithdrawal", tag = "withdrawals",
    params(("id" = String, Path, description = "The withdrawal's id (UUID)")),
    responses((status = 200, description = "The withdrawal", body = WithdrawalView), (status = 404, description = "not_found", body = super::openapi::Problem, content_type = "application/problem+json"), (status = 401, description = "Missing or unknown bearer token", body = super::openapi::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub async fn get(
    State(state): State<AppState>,
    WithdrawalId(id): WithdrawalId,
) -> Result<Json<WithdrawalView>, ApiError> {
    let withdrawal = state
        .usecases
        .withdrawals
        .get(id)
        .await?
        .ok_or_else(|| ApiError::not_found("withdrawal"))?;
    Ok(Json(WithdrawalView::new(
        &state.currencies.catalog(),
        &withdrawal,
    )))
}

known_params!(ListParams: "user_id", "status", "foreign_id", "reference", "idempotency_key", "updated_after", "limit", "cursor");

/// `text` if it is 1 to `max` visible ASCII characters (what every id and key is made of).
fn visible(name: &str, text: &str, max: usize) -> Result<String, ApiError> {
    let ok = text.len() <= max && text.bytes().all(|b| b.is_ascii_graphic());
    ok.then(|| text.to_owned())
        .ok_or_else(|| ApiError::validation(name, format!("1 to {max} visible ASCII characters")))
}

/// List withdrawals
///
/// Newest first. The filters combine: one user's, one status, the one with a `foreign_id`,
/// `reference` or `Idempotency-Key`, or those changed after a time. Keyset pages: pass
/// `next_cursor` as `cursor`.
#[utoipa::path(
    get, path = "/v1/withdrawals", operation_id = "listWithdrawals", tag = "withdrawals",
    params(
        ("user_id" = Option<String>, Query, description = "Only this user's"),
        ("status" = Option<String>, Query, description = "awaiting_approval, pending, processing, confirmed, cancelled or rejected"),
        ("foreign_id" = Option<String>, Query, description = "Only the one with this foreign_id (the id CoinsPaid knows it by)"),
        ("reference" = Option<String>, Query, description = "Only the one requested with this reference"),
        ("idempotency_key" = Option<String>, Query, description = "Only the one created with this Idempotency-Key, while the key is kept (retention.idempotency_key_hours)"),
        ("updated_after" = Option<String>, Query, description = "RFC 3339 (a + in an offset sent as %2B): only those whose updated_at is later. updated_at is when the changing transaction began, so a change can become visible after a later one: re-read with an overlap (docs/CONTRACT-ADDITIONS.md section 17), or follow /v1/events"),
        ("limit" = Option<i64>, Query, description = "1 to 200, default 50"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
    ),
    responses((status = 200, description = "Withdrawals, newest first", body = super::views::WithdrawalPage), (status = 422, description = "validation_failed: a bad filter, limit or cursor, or an unknown query parameter (named)", body = super::openapi::Problem, content_type = "application/problem+json"), (status = 401, description = "Missing or unknown bearer token", body = super::openapi::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    params: QueryParams<ListParams>,
) -> Result<Json<WithdrawalPage>, ApiError> {
    let (limit, before) = pagination::parse(params.get("limit"), params.get("cursor"))?;
    let status = params
        .get("status")
        .map(|s| {
            WithdrawalStatus::parse(s).ok_or_else(|| {
                ApiError::validation(
                    "status",
                    "must be awaiting_approval, pending, processing, confirmed, cancelled or rejected",
                )
            })
        })
        .transpose()?;
    let user_id = params
        .get("user_id")
        .map(|u| {
            UserId::parse(u)
                .map(|u| u.as_str().to_owned())
                .ok_or_else(|| ApiError::validation("user_id", "1 to 128 visible ASCII characters"))
        })
        .transpose()?;
    let updated_after = params
        .get("updated_after")
        .map(|t| {
            DateTime::parse_from_rfc3339(t)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| {
                    ApiError::validation(
                        "updated_after",
                        "an RFC 3339 time such as 2026-12-06T09:00:00Z (a + in an offset sent as %2B)",
                    )
                })
        })
        .transpose()?;
    let text = |name: &str| params.get(name).map(|t| visible(name, t, 255)).transpose();
    let filter = ListFilter {
        user_id,
        status,
        foreign_id: text("foreign_id")?,
        reference: text("reference")?,
        idempotency_key: text("idempotency_key")?,
        updated_after,
        before,
    };
    let page = state.usecases.withdrawals.list(&filter, limit).await?;
    let catalog = state.currencies.catalog();
    Ok(Json(WithdrawalPage {
        data: page
            .items
            .iter()
            .map(|w| WithdrawalView::new(&catalog, w))
            .collect(),
        next_cursor: pagination::cursor(page.next),
    }))
}
