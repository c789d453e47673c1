//! The website's side of approvals: cancelling a withdrawal while it awaits approval, and
//! flagging a user whose withdrawals an operator must approve.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

use super::admin::check_reason;
use super::admin::views::{NoteRequest, ReasonRequest};
use super::error::{ApiError, ErrorCode};
use super::json::ApiJsonOrEmpty;
use super::params::{User, WithdrawalId};
use super::views::WithdrawalView;
use super::AppState;
use crate::operators::actions::WEBSITE;
use crate::operators::ActionError;

/// Cancel a withdrawal awaiting approval
///
/// Releases the hold; the withdrawal becomes `cancelled`. Only a withdrawal still
/// `awaiting_approval` can be cancelled: once approved and sent it is `409 not_cancellable`.
/// Cancelling one already cancelled answers it again. The optional `reason` goes to the audit
/// trail.
#[utoipa::path(post, path = "/v1/withdrawals/{id}/cancel", operation_id = "cancelWithdrawal", tag = "withdrawals",
    params(("id" = String, Path)), request_body = super::admin::views::NoteRequest,
    responses(
        (status = 200, description = "Cancelled (or already cancelled): the hold is released", body = WithdrawalView),
        (status = 409, description = "not_cancellable: approved and sent already, or settled", body = super::openapi::Problem, content_type = "application/problem+json"),
        (status = 404, description = "not_found", body = super::openapi::Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn cancel(
    State(state): State<AppState>,
    WithdrawalId(id): WithdrawalId,
    ApiJsonOrEmpty(request): ApiJsonOrEmpty<NoteRequest>,
) -> Result<Json<WithdrawalView>, ApiError> {
    let reason = check_reason("reason", request.reason, false)?;
    let w = state
        .usecases
        .withdrawals
        .cancel(id, reason.as_deref())
        .await
        .map_err(|err| match err {
            ActionError::WrongStatus { status, .. } => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::NotCancellable,
                format!("the withdrawal is {status}: only one awaiting approval can be cancelled"),
            ),
            other => other.into(),
        })?;
    Ok(Json(WithdrawalView::new(&state.currencies.catalog(), &w)))
}

/// Flag a user for review
///
/// While the flag is set, every new withdrawal of the user waits `awaiting_approval` until an
/// operator approves or rejects it. The `reason` is audited and shown to operators.
#[utoipa::path(put, path = "/v1/users/{user_id}/review-flag", operation_id = "flagUserForReview", tag = "withdrawals",
    params(("user_id" = String, Path)), request_body = super::admin::views::ReasonRequest,
    responses((status = 204, description = "Flagged")), security(("bearer" = [])))]
pub async fn flag_user(
    State(state): State<AppState>,
    User(user): User,
    ApiJsonOrEmpty(request): ApiJsonOrEmpty<ReasonRequest>,
) -> Result<StatusCode, ApiError> {
    super::admin::handlers::set_flag(&state, &user, request, WEBSITE).await
}

/// Remove a user's review flag
///
/// New withdrawals of the user follow the approval policy again; those already awaiting approval
/// keep waiting for an operator. Removing a flag that is not set changes nothing.
#[utoipa::path(delete, path = "/v1/users/{user_id}/review-flag", operation_id = "unflagUser", tag = "withdrawals",
    params(("user_id" = String, Path)), responses((status = 204, description = "Unflagged")), security(("bearer" = [])))]
pub async fn unflag_user(
    State(state): State<AppState>,
    User(user): User,
) -> Result<StatusCode, ApiError> {
    state
        .usecases
        .operations
        .set_review_flag(&user, None, WEBSITE)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
