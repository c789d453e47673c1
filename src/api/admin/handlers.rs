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

/// List the withdrawals that need a person
///
/// Oldest first: withdrawals awaiting approval, parked (their attempts ran out, or they need an
/// operator), missing at CoinsPaid, and every withdrawal, finished or not, with an unacknowledged
/// anomaly; `kind` says which. Keyset pages: pass `next_cursor` as `cursor`.
#[utoipa::path(get, path = "/admin/v1/stuck", operation_id = "adminListStuck", tag = "operators",
    params(
        ("limit" = Option<i64>, Query, description = "1 to 200, default 50"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
    ),
    responses(
        (status = 200, description = "Withdrawals that need a person, oldest first", body = StuckPage),
        (status = 401, description = "unauthorized: the operator token is missing or unknown", body = Problem, content_type = "application/problem+json"),
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

/// Get a withdrawal's operator page
///
/// Why it needs a person (`kind`, `none` when nothing is wrong), its submission job, ledger
/// entries, the callbacks received and its audit rows.
#[utoipa::path(get, path = "/admin/v1/withdrawals/{id}", operation_id = "adminGetWithdrawal", tag = "operators",
    params(("id" = String, Path)),
    responses((status = 200, description = "The withdrawal's page", body = WithdrawalDetail), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn withdrawal(
    State(state): State<AppState>,
    WithdrawalId(id): WithdrawalId,
) -> Result<Json<WithdrawalDetail>, ApiError> {
    let detail = state.usecases.operations.detail(id).await?;
    Ok(Json(detail_view(&state, &detail)))
}

/// Approve a withdrawal
///
/// A withdrawal `awaiting_approval` becomes `pending` and is sent to CoinsPaid at once with its
/// `foreign_id`, unless its currency's submissions are paused. Audited, with the optional `reason`.
#[utoipa::path(post, path = "/admin/v1/withdrawals/{id}/approve", operation_id = "adminApproveWithdrawal", tag = "operators",
    params(("id" = String, Path)), request_body = NoteRequest,
    responses((status = 200, description = "Done: the withdrawal as it now stands", body = ActionResult), (status = 409, description = "status_conflict: not awaiting approval (cancelled, rejected or approved first)", body = Problem, content_type = "application/problem+json")),
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

/// Reject a withdrawal
///
/// A withdrawal `awaiting_approval` becomes `rejected` and its hold is released; the `reason`
/// becomes its `error`. Audited.
#[utoipa::path(post, path = "/admin/v1/withdrawals/{id}/reject", operation_id = "adminRejectWithdrawal", tag = "operators",
    params(("id" = String, Path)), request_body = ReasonRequest,
    responses((status = 200, description = "Done: the withdrawal as it now stands", body = ActionResult), (status = 409, description = "status_conflict", body = Problem, content_type = "application/problem+json"), (status = 422, description = "validation_failed: reason missing", body = Problem, content_type = "application/problem+json")),
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

/// Send a pending withdrawal again now
///
/// Sends a `pending` withdrawal again at once, with the same `foreign_id`, instead of waiting for
/// the worker's next attempt; `409 submission_in_flight` while an attempt is under way. Audited.
#[utoipa::path(post, path = "/admin/v1/withdrawals/{id}/retry", operation_id = "adminRetryWithdrawal", tag = "operators",
    params(("id" = String, Path)), request_body = NoteRequest,
    responses((status = 200, description = "Done: the withdrawal as it now stands", body = ActionResult), (status = 409, description = "status_conflict (not pending) or submission_in_flight", body = Problem, content_type = "application/problem+json")),
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

/// Look a withdrawal up at CoinsPaid
///
/// Asks CoinsPaid now and applies its answer as the reconciler would: a final status settles the
/// withdrawal; a missing answer never releases it. `lookup` shows what CoinsPaid said. Audited.
#[utoipa::path(post, path = "/admin/v1/withdrawals/{id}/lookup", operation_id = "adminLookUpWithdrawal", tag = "operators",
    params(("id" = String, Path)),
    responses((status = 200, description = "Done: the withdrawal as it now stands", body = ActionResult), (status = 409, description = "status_conflict: awaiting approval, never sent", body = Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn look_up(
    State(state): State<AppState>,
    Extension(OperatorName(by)): Extension<OperatorName>,
    WithdrawalId(id): WithdrawalId,
) -> Result<Json<ActionResult>, ApiError> {
    let (w, report) = state.usecases.operations.look_up(id, &by).await?;
    Ok(result(&state, &w, Some(LookupView::from(&report))))
}

/// Resolve a withdrawal by hand
///
/// Settles it as `paid` (the hold is debited) or `not_paid` (the hold is released), with a reason.
/// CoinsPaid is looked up first: a resolution its record does not back is `409 lookup_disagrees`
/// unless `override` is true. Audited, with the look-up.
#[utoipa::path(post, path = "/admin/v1/withdrawals/{id}/resolve", operation_id = "adminResolveWithdrawal", tag = "operators",
    params(("id" = String, Path)), request_body = ResolveRequest,
    responses(
        (status = 200, description = "Done: the withdrawal as it now stands", body = ActionResult),
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

/// Acknowledge a withdrawal's anomaly
///
/// Records that a person has handled the withdrawal's anomaly: it leaves the stuck list until
/// another anomaly is recorded. Moves nothing; audited.
#[utoipa::path(post, path = "/admin/v1/withdrawals/{id}/acknowledge", operation_id = "adminAcknowledgeAnomaly", tag = "operators",
    params(("id" = String, Path)), request_body = ReasonRequest,
    responses(
        (status = 200, description = "Done: the withdrawal as it now stands", body = ActionResult),
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

/// List the submission pauses
///
/// The scopes (`*` for every currency, or a currency code) whose withdrawals are accepted and held
/// but not sent to CoinsPaid.
#[utoipa::path(get, path = "/admin/v1/pauses", operation_id = "adminListPauses", tag = "operators",
    responses((status = 200, description = "The pauses in force", body = PausesView)), security(("operator" = [])))]
pub async fn pauses(State(state): State<AppState>) -> Result<Json<PausesView>, ApiError> {
    Ok(pauses_view(&state.usecases.operations.pauses().await?))
}

/// Pause submissions
///
/// Stops sending withdrawals to CoinsPaid for `all` currencies or one: new withdrawals are still
/// accepted and held, and go out once resumed. Audited, with the reason.
#[utoipa::path(put, path = "/admin/v1/pauses/{scope}", operation_id = "adminPause", tag = "operators",
    params(("scope" = String, Path, description = "all, or a currency code")), request_body = ReasonRequest,
    responses((status = 200, description = "Paused: the pauses now in force", body = PausesView)), security(("operator" = [])))]
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

/// Resume submissions
///
/// Withdrawals queued while paused go out on the worker's next tick. Audited.
#[utoipa::path(delete, path = "/admin/v1/pauses/{scope}", operation_id = "adminResume", tag = "operators",
    params(("scope" = String, Path, description = "all, or a currency code")),
    responses((status = 200, description = "Resumed: the pauses still in force", body = PausesView)), security(("operator" = [])))]
pub async fn resume_scope(
    State(state): State<AppState>,
    Extension(OperatorName(by)): Extension<OperatorName>,
    Scope(scope): Scope,
) -> Result<Json<PausesView>, ApiError> {
    let operations = &state.usecases.operations;
    Ok(pauses_view(&operations.resume(&scope, None, &by).await?))
}

/// Flag a user for review
///
/// While the flag is set, every new withdrawal of the user waits `awaiting_approval` until an
/// operator approves or rejects it. Audited, with the reason.
#[utoipa::path(put, path = "/admin/v1/users/{user_id}/review-flag", operation_id = "adminFlagUser", tag = "operators",
    params(("user_id" = String, Path)), request_body = ReasonRequest,
    responses((status = 204, description = "Flagged")), security(("operator" = [])))]
pub async fn flag_user(
    State(state): State<AppState>,
    Extension(OperatorName(by)): Extension<OperatorName>,
    User(user): User,
    ApiJsonOrEmpty(request): ApiJsonOrEmpty<ReasonRequest>,
) -> Result<StatusCode, ApiError> {
    set_flag(&state, &user, request, &by).await
}

/// Remove a user's review flag
///
/// New withdrawals of the user follow the approval policy again; those already awaiting approval
/// keep waiting. Audited.
#[utoipa::path(delete, path = "/admin/v1/users/{user_id}/review-flag", operation_id = "adminUnflagUser", tag = "operators",
    params(("user_id" = String, Path)), responses((status = 204, description = "Unflagged")), security(("operator" = [])))]
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

/// List the audit trail
///
/// Every action of operators, the website and the approval policy, newest first; optionally one
/// withdrawal's. Keyset pages: pass `next_cursor` as `cursor`.
#[utoipa::path(get, path = "/admin/v1/audit", operation_id = "adminListAudit", tag = "operators",
    params(("withdrawal_id" = Option<String>, Query), ("limit" = Option<i64>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, description = "Audit rows, newest first", body = AuditPage)), security(("operator" = [])))]
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
