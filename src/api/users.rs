//! `/v1/users/{user_id}/...`: credits, balances, ledger.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;

use super::error::ApiError;
use super::json::ApiJson;
use super::params::{known_params, QueryParams, User};
use super::requests::CreditRequest;
use super::views::{BalanceView, LedgerEntryView, LedgerPage};
use super::{pagination, AppState};
use crate::domain::Currency;
use crate::usecases::Credit;

#[derive(Serialize, utoipa::ToSchema)]
pub struct CreditResponse {
    entry: LedgerEntryView,
    balance: BalanceView,
}

/// Credit a user's balance
///
/// Adds `amount` of `currency` to the user's available balance: the website calls it when the user
/// funds their account. One ledger entry, written with the balance in one transaction.
///
/// Idempotent on `reference`, unique per user: the same request again answers `200` with the same
/// entry and credits nothing; the same reference with another currency or amount is `409
/// reference_conflict`.
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
    User(user): User,
    ApiJson(request): ApiJson<CreditRequest>,
) -> Result<(StatusCode, Json<CreditResponse>), ApiError> {
    let credit = Credit {
        currency: request.currency,
        amount: request.amount,
        reference: request.reference,
    };
    let credited = state.usecases.balances.credit(&user, credit).await?;
    let catalog = state.currencies.catalog();
    Ok((
        if credited.replayed {
            StatusCode::OK
        } else {
            StatusCode::CREATED
        },
        Json(CreditResponse {
            entry: LedgerEntryView::new(&catalog, &credited.entry),
            balance: BalanceView::new(&catalog, &credited.balance),
        }),
    ))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct BalancesResponse {
    user_id: String,
    balances: Vec<BalanceView>,
}

/// Get a user's balances
///
/// Per currency: `available`, `held` by withdrawals not yet settled, and their `total`. A user
/// never credited has an empty list.
#[utoipa::path(
    get, path = "/v1/users/{user_id}/balances", operation_id = "getUserBalances", tag = "balances",
    params(("user_id" = String, Path, description = "The merchant's user id")),
    responses((status = 200, description = "Balances by currency", body = BalancesResponse), (status = 422, description = "validation_failed: user_id is not 1 to 128 visible ASCII characters", body = super::openapi::Problem, content_type = "application/problem+json"), (status = 401, description = "Missing or unknown bearer token", body = super::openapi::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub async fn balances(
    State(state): State<AppState>,
    User(user): User,
) -> Result<Json<BalancesResponse>, ApiError> {
    let balances = state.usecases.balances.of(&user).await?;
    let catalog = state.currencies.catalog();
    Ok(Json(BalancesResponse {
        user_id: user.to_string(),
        balances: balances
            .iter()
            .map(|b| BalanceView::new(&catalog, b))
            .collect(),
    }))
}

known_params!(LedgerParams: "currency", "limit", "cursor");

/// List a user's ledger entries
///
/// Every change to the user's balances, newest first: `credit`, `hold`, `release` and `debit`, each
/// naming the withdrawal it belongs to. Optionally one currency only. Keyset pages: pass
/// `next_cursor` as `cursor`.
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
    User(user): User,
    params: QueryParams<LedgerParams>,
) -> Result<Json<LedgerPage>, ApiError> {
    let (limit, cursor) = pagination::parse(params.get("limit"), params.get("cursor"))?;
    let currency = params
        .get("currency")
        .map(|code| {
            Currency::parse(code)
                .ok_or_else(|| ApiError::validation("currency", "is not a currency code"))
        })
        .transpose()?;
    let page = state
        .usecases
        .balances
        .ledger(&user, currency.as_ref(), cursor, limit)
        .await?;
    let catalog = state.currencies.catalog();
    Ok(Json(LedgerPage {
        data: page
            .items
            .iter()
            .map(|e| LedgerEntryView::new(&catalog, e))
            .collect(),
        next_cursor: pagination::cursor(page.next),
    }))
}
