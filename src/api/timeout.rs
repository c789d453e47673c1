//! The request time budget: a request that runs out of it is answered with a problem
//! (`503`, code `timeout`) rather than an empty body, and counted like any other answer.

use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::{ApiError, ErrorCode};

pub async fn answer_within(
    State(budget): State<Duration>,
    request: Request,
    next: Next,
) -> Response {
    match tokio::time::timeout(budget, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(budget_secs = budget.as_secs_f64(), "request timed out");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::Timeout,
                "the request did not finish in time; it may still take effect, retry with the same Idempotency-Key",
            )
            .into_response()
        }
    }
}
