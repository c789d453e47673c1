//! `/admin/v1`: the stuck queue, a withdrawal's page, the actions, the pause switch, review
//! flags and the audit trail. Handlers only translate; `crate::operators` decides.

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use uuid::Uuid;

use super::auth::OperatorName;
use super::check_reason;
use super::views::*;
use crate::api::error::ApiError;
use crate::api::json::ApiJsonOrEmpty;
use crate::api::openapi::Problem;
use crate::api::params::{known_params, QueryParams, Scope, User, WithdrawalId};
use crate::api::views::LedgerEntryView;
use crate::api::{pagination, AppState};
use crate::domain::UserId;
use crate::operators::pause::Pause;
use crate::operators::policy::Outcome;
use crate::usecases::Detail;
use crate::withdrawals::Withdrawal;

fn result(state: &AppState, w: &Withdrawal, lookup: Option<LookupView>) -> Json<ActionResult> {
    Json(ActionResult {
        withdrawal: crate::api::views::WithdrawalView::new(&state.currencies.catalog(), w),
        lookup,
    })
}

known_params!(PageParams: "limit", "cursor");

/// `GET /admin/v1/stuck?limit=&cursor=`: everything that needs a person, oldest first: open
/// withdrawals awaiting approval, parked or missing, and every withdrawal, finished or not,
/// with an unacknowledged anomaly.
#[utoipa::path(get, path = "/admin/v1/stuck", operation_id = "adminListStuck", tag = "operators",
    params(
        ("limit" = Option<i64>, Query, description = "1 to 200, default 50"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
    ),
    responses(
        (status = 200, body = StuckPage),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "validation_failed: a bad limit or cursor, or an unknown query parameter (named)", body = Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn stuck_list(
    State(state): State<AppState>,
    params: QueryParams<PageParams>,
) -> Result<Json<StuckPage>, ApiError> {
    let (limit, after) = pagination::parse(params.get("limit"), params.get("cursor"))?;
    let page = state.usecases.operations.stuck(after, limit).await?;
    let catalog = state.currencies.catalog();
    Ok(Json(StuckPage {
        data: page
            .items
            .iter()
            .map(|i| StuckView::new(&catalog, i))
            .collect(),
        next_cursor: pagination::cursor(page.next),
    }))
}

/// The withdrawal's page data: also what the console renders.
pub fn detail_view(state: &AppState, detail: &Detail) -> WithdrawalDetail {
    let catalog = state.currencies.catalog();
    WithdrawalDetail {
        item: StuckView::new(&catalog, &detail.item),
        ledger: detail
            .ledger
            .iter()
            .map(|e| LedgerEntryView::new(&catalog, e))
            .collect(),
        callbacks: detail.callbacks.iter().map(CallbackView::from).collect(),
        audit: detail.audit.iter().map(AuditView::from).collect(),
    }
}

fn pauses_view(pauses: &[Pause]) -> Json<PausesView> {
    Json(PausesView {
        data: pauses.iter().map(PauseView::from).collect(),
    })
}

/// `GET /admin/v1/withdrawals/{id}`: why it needs a person, its ledger entries, callbacks and audit rows.
#[utoipa::path(get, path = "/admin/v1/withdrawals/{id}", operation_id = "adminGetWithdrawal", tag = "operators",
    params(("id" = String, Path)),
    responses((status = 200, body = WithdrawalDetail), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn withdrawal(
    State(state): State<AppState>,
    WithdrawalId(id): WithdrawalId,
) -> Result<Json<WithdrawalDetail>, ApiError> {
    let detail = state.usecases.operations.detail(id).await?;
    Ok(Json(detail_view(&state, &detail)))
}

/// `POST /admin/v1/withdrawals/{id}/approve`: sent at once with its foreign_id (unless paused).
#[utoipa::path(post, path = "/admin/v1/withdrawals/{id}/approve", operation_id = "adminApproveWithdrawal", tag = "operators",
    params(("id" = String, Path)), request_body = NoteRequest,
    responses((status = 200, body = ActionResult), (status = 409, description = "status_conflict: not awaiting approval (cancelled, rejected or approved first)", body = Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn approve(
    State(state): State<AppState>,
    Extension(OperatorName(by)): Extension<OperatorName>,
    WithdrawalId(id): WithdrawalId,
    ApiJsonOrEmpty(request): ApiJsonOrEmpty<NoteRequest>,
) -> Result<Json<ActionResult>, ApiError> {
    let reason = check_reason("reason", request.reason, false)?;
    let w = state
        .usecases
        .operations
        .approve(id, &by, reason.as_deref())
        .await?;
    Ok(result(&state, &w, None))
}

/// `POST /admin/v1/withdrawals/{id}/reject`: `rejected`, the hold released; the reason becomes its `error`.
#[utoipa::path(post, path = "/admin/v1/withdrawals/{id}/reject", operation_id = "adminRejectWithdrawal", tag = "operators",
    params(("id" = String, Path)), request_body = ReasonRequest,
    responses((status = 200, body = ActionResult), (status = 409, description = "status_conflict", body = Problem, content_type = "application/problem+json"), (status = 422, description = "validation_failed: reason missing", body = Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn reject(
    State(state): State<AppState>,
    Extension(OperatorName(by)): Extension<OperatorName>,
    WithdrawalId(id): WithdrawalId,
    ApiJsonOrEmpty(request): ApiJsonOrEmpty<ReasonRequest>,
) -> Result<Json<ActionResult>, ApiError> {
    let reason = check_reason("reason", Some(request.reason), true)?.unwrap_or_default();
    let w = state.usecases.operations.reject(id, &by, &reason).await?;
    Ok(result(&state, &w, None))
}

/// `POST /admin/v1/withdrawals/{id}/retry`: send a pending withdrawal again now, same foreign_id.
#[utoipa::path(post, path = "/admin/v1/withdrawals/{id}/retry", operation_id = "adminRetryWithdrawal", tag = "operators",
    params(("id" = String, Path)), request_body = NoteRequest,
    responses((status = 200, body = ActionResult), (status = 409, description = "status_conflict (not pending) or submission_in_flight", body = Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn retry(
    State(state): State<AppState>,
    Extension(OperatorName(by)): Extension<OperatorName>,
    WithdrawalId(id): WithdrawalId,
    ApiJsonOrEmpty(request): ApiJsonOrEmpty<NoteRequest>,
) -> Result<Json<ActionResult>, ApiError> {
    let reason = check_reason("reason", request.reason, false)?;
    let w = state
        .usecases
        .operations
        .retry_now(id, &by, reason.as_deref())
        .await?;
    Ok(result(&state, &w, None))
}

/// `POST /admin/v1/withdrawals/{id}/lookup`: ask CoinsPaid now; a final answer settles it.
#[utoipa::path(post, path = "/admin/v1/withdrawals/{id}/lookup", operation_id = "adminLookUpWithdrawal", tag = "operators",
    params(("id" = String, Path)),
    responses((status = 200, body = ActionResult), (status = 409, description = "status_conflict: awaiting approval, never sent", body = Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn look_up(
    State(state): State<AppState>,
    Extension(OperatorName(by)): Extension<OperatorName>,
    WithdrawalId(id): WithdrawalId,
) -> Result<Json<ActionResult>, ApiError> {
    let (w, report) = state.usecases.operations.look_up(id, &by).await?;
    Ok(result(&state, &w, Some(LookupView::from(&report))))
}

/// `POST /admin/v1/withdrawals/{id}/resolve`: paid (debit) or not paid (release), with a reason.
#[utoipa::path(post, path = "/admin/v1/withdrawals/{id}/resolve", operation_id = "adminResolveWithdrawal", tag = "operators",
    params(("id" = String, Path)), request_body = ResolveRequest,
    responses(
        (status = 200, body = ActionResult),
        (status = 409, description = "lookup_disagrees (a fresh look-up does not back it; pass override), status_conflict (already settled, e.g. by a callback) or submission_in_flight", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "validation_failed", body = Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn resolve(
    State(state): State<AppState>,
    Extension(OperatorName(by)): Extension<OperatorName>,
    WithdrawalId(id): WithdrawalId,
    ApiJsonOrEmpty(request): ApiJsonOrEmpty<ResolveRequest>,
) -> Result<Json<ActionResult>, ApiError> {
    let outcome = match request.outcome.as_str() {
        "paid" => Outcome::Paid,
        "not_paid" => Outcome::NotPaid,
        _ => return Err(ApiError::validation("outcome", "paid or not_paid")),
    };
    let reason = check_reason("reason", Some(request.reason), true)?.unwrap_or_default();
    let override_lookup = request.override_lookup.unwrap_or(false);
    let (w, report) = state
        .usecases
        .operations
        .resolve(id, &by, outcome, &reason, override_lookup)
        .await?;
    Ok(result(&state, &w, Some(LookupView::from(&report))))
}

/// `POST /admin/v1/withdrawals/{id}/acknowledge`: a person has handled its anomaly; it leaves
/// the stuck list until another anomaly is recorded. Moves nothing; audited.
#[utoipa::path(post, path = "/admin/v1/withdrawals/{id}/acknowledge", operation_id = "adminAcknowledgeAnomaly", tag = "operators",
    params(("id" = String, Path)), request_body = ReasonRequest,
    responses(
        (status = 200, body = ActionResult),
        (status = 404, description = "not_found", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "nothing_to_acknowledge: no anomaly recorded, or every one already acknowledged", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "validation_failed: reason missing", body = Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn acknowledge(
    State(state): State<AppState>,
    Extension(OperatorName(by)): Extension<OperatorName>,
    WithdrawalId(id): WithdrawalId,
    ApiJsonOrEmpty(request): ApiJsonOrEmpty<ReasonRequest>,
) -> Result<Json<ActionResult>, ApiError> {
    let reason = check_reason("reason", Some(request.reason), true)?.unwrap_or_default();
    let w = state
        .usecases
        .operations
        .acknowledge(id, &by, &reason)
        .await?;
    Ok(result(&state, &w, None))
}

/// `GET /admin/v1/pauses`: the pauses in force.
#[utoipa::path(get, path = "/admin/v1/pauses", operation_id = "adminListPauses", tag = "operators",
    responses((status = 200, body = PausesView)), security(("operator" = [])))]
pub async fn pauses(State(state): State<AppState>) -> Result<Json<PausesView>, ApiError> {
    Ok(pauses_view(&state.usecases.operations.pauses().await?))
}

/// `PUT /admin/v1/pauses/{scope}`: stop submissions for `all` or one currency.
#[utoipa::path(put, path = "/admin/v1/pauses/{scope}", operation_id = "adminPause", tag = "operators",
    params(("scope" = String, Path, description = "all, or a currency code")), request_body = ReasonRequest,
    responses((status = 200, body = PausesView)), security(("operator" = [])))]
pub async fn pause_scope(
    State(state): State<AppState>,
    Extension(OperatorName(by)): Extension<OperatorName>,
    Scope(scope): Scope,
    ApiJsonOrEmpty(request): ApiJsonOrEmpty<ReasonRequest>,
) -> Result<Json<PausesView>, ApiError> {
    let reason = check_reason("reason", Some(request.reason), true)?.unwrap_or_default();
    let operations = &state.usecases.operations;
    Ok(pauses_view(&operations.pause(&scope, &reason, &by).await?))
}

/// `DELETE /admin/v1/pauses/{scope}`: resume; queued withdrawals go out on the worker's next tick.
#[utoipa::path(delete, path = "/admin/v1/pauses/{scope}", operation_id = "adminResume", tag = "operators",
    params(("scope" = String, Path, description = "all, or a currency code")),
    responses((status = 200, body = PausesView)), security(("operator" = [])))]
pub async fn resume_scope(
    State(state): State<AppState>,
    Extension(OperatorName(by)): Extension<OperatorName>,
    Scope(scope): Scope,
) -> Result<Json<PausesView>, ApiError> {
    let operations = &state.usecases.operations;
    Ok(pauses_view(&operations.resume(&scope, None, &by).await?))
}

/// `PUT /admin/v1/users/{user_id}/review-flag`: every new withdrawal of the user waits for approval.
#[utoipa::path(put, path = "/admin/v1/users/{user_id}/review-flag", operation_id = "adminFlagUser", tag = "operators",
    params(("user_id" = String, Path)), request_body = ReasonRequest,
    responses((status = 204)), security(("operator" = [])))]
pub async fn flag_user(
    State(state): State<AppState>,
    Extension(OperatorName(by)): Extension<OperatorName>,
    User(user): User,
    ApiJsonOrEmpty(request): ApiJsonOrEmpty<ReasonRequest>,
) -> Result<StatusCode, ApiError> {
    set_flag(&state, &user, request, &by).await
}

/// `DELETE /admin/v1/users/{user_id}/review-flag`
#[utoipa::path(delete, path = "/admin/v1/users/{user_id}/review-flag", operation_id = "adminUnflagUser", tag = "operators",
    params(("user_id" = String, Path)), responses((status = 204)), security(("operator" = [])))]
pub async fn unflag_user(
    State(state): State<AppState>,
    Extension(OperatorName(by)): Extension<OperatorName>,
    User(user): User,
) -> Result<StatusCode, ApiError> {
    let operations = &state.usecases.operations;
    operations.set_review_flag(&user, None, &by).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sets a review flag from a `{"reason"}` body; shared by the operator and website routes.
pub async fn set_flag(
    state: &AppState,
    user: &UserId,
    request: ReasonRequest,
    by: &str,
) -> Result<StatusCode, ApiError> {
    let reason = check_reason("reason", Some(request.reason), true)?.unwrap_or_default();
    state
        .usecases
        .operations
        .set_review_flag(user, Some(&reason), by)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

known_params!(AuditParams: "withdrawal_id", "limit", "cursor");

/// `GET /admin/v1/audit?withdrawal_id=&limit=&cursor=`: the audit trail, newest first.
#[utoipa::path(get, path = "/admin/v1/audit", operation_id = "adminListAudit", tag = "operators",
    params(("withdrawal_id" = Option<String>, Query), ("limit" = Option<i64>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = AuditPage)), security(("operator" = [])))]
pub async fn audit_list(
    State(state): State<AppState>,
    params: QueryParams<AuditParams>,
) -> Result<Json<AuditPage>, ApiError> {
    let (limit, before) = pagination::parse(params.get("limit"), params.get("cursor"))?;
    let withdrawal_id = params
        .get("withdrawal_id")
        .map(|s| Uuid::parse_str(s).map_err(|_| ApiError::validation("withdrawal_id", "a UUID")))
        .transpose()?;
    let page = state
        .usecases
        .operations
        .audit(withdrawal_id, before, limit)
        .await?;
    Ok(Json(AuditPage {
        data: page.items.iter().map(AuditView::from).collect(),
        next_cursor: pagination::cursor(page.next),
    }))
}
