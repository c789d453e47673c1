//! The operator interface: `/admin/v1` (JSON, in the OpenAPI document) and the `/admin`
//! console. Both call `crate::operators`; neither holds logic of its own.

pub mod auth;
pub mod console;
pub mod handlers;
pub mod views;

use axum::http::StatusCode;

use super::error::{ApiError, ErrorCode};
use crate::operators::ActionError;

/// A reason for the audit trail: 1 to 500 characters, no control characters.
pub fn check_reason(
    field: &str,
    reason: Option<String>,
    required: bool,
) -> Result<Option<String>, ApiError> {
    match reason.map(|r| r.trim().to_owned()) {
        None if required => Err(ApiError::validation(field, "is required: say why")),
        None => Ok(None),
        Some(r) if r.is_empty() && required => {
            Err(ApiError::validation(field, "is required: say why"))
        }
        Some(r) if r.is_empty() => Ok(None),
        Some(r) if r.chars().count() > 500 || r.chars().any(char::is_control) => Err(
            ApiError::validation(field, "1 to 500 characters, no control characters"),
        ),
        Some(r) => Ok(Some(r)),
    }
}

impl From<ActionError> for ApiError {
    fn from(err: ActionError) -> Self {
        match err {
            ActionError::NotFound => ApiError::not_found("withdrawal"),
            ActionError::WrongStatus { .. } => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::StatusConflict,
                err.to_string(),
            ),
            ActionError::InFlight => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::SubmissionInFlight,
                err.to_string(),
            ),
            ActionError::LookupDisagrees(why) => {
                ApiError::new(StatusCode::CONFLICT, ErrorCode::LookupDisagrees, why)
            }
            ActionError::NoAnomaly => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::NothingToAcknowledge,
                err.to_string(),
            ),
            ActionError::Failed(e) => e.into(),
        }
    }
}
