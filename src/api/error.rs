//! The one error type of the HTTP edge, rendered as `application/problem+json` with a stable
//! `code`. Internal failures become an opaque 500; their cause is logged once, here.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::withdrawals::create::request::{CreateError, Refusal};

/// `Retry-After` on a 503: long enough for a failover's first second, short enough that a
/// client does not wait past a restart.
pub const RETRY_AFTER_SECS: &str = "1";

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    /// Seconds for `Retry-After` (every 503 gets one anyway).
    pub retry_after_secs: Option<u64>,
}

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    detail: &'a str,
    code: &'a str,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            retry_after_secs: None,
        }
    }

    /// Tells the client when to retry (`Retry-After`, whole seconds, at least one).
    pub fn with_retry_after(mut self, wait: std::time::Duration) -> Self {
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        self.retry_after_secs = Some(seconds.max(1));
        self
    }

    pub fn validation(field: &str, message: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            format!("{field}: {message}"),
        )
    }

    pub fn invalid_json(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_json", detail)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    pub fn unauthorized(detail: &str) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
    }

    /// Logs the cause with the request's span and hides it from the client.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "internal error; the request id in x-request-id finds it in the logs",
        )
    }

    pub fn unavailable(detail: &str) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", detail)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let title = self.status.canonical_reason().unwrap_or("Error");
        let body = serde_json::to_vec(&Problem {
            kind: format!("/problems/{}", self.code),
            title,
            status: self.status.as_u16(),
            detail: &self.detail,
            code: self.code,
        })
        .expect("problem bodies always serialize");
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(seconds) = self.retry_after_secs {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        // Every 503 is temporary: a failover takes seconds, so a client may retry after one.
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            headers
                .entry(header::RETRY_AFTER)
                .or_insert(HeaderValue::from_static(RETRY_AFTER_SECS));
        }
        response
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        // Down, restarting, failing over, or no connection free in time: nothing was
        // half-written and a retry is safe (see `failover`), so clients are told to retry
        // instead of getting a 500 that hides whether their request happened.
        if crate::db::failover::is_unavailable(&err) {
            crate::db::failover::report("api", &err);
            return Self::unavailable("the database is unavailable; retry later");
        }
        Self::internal(err)
    }
}

impl From<crate::error::Error> for ApiError {
    fn from(err: crate::error::Error) -> Self {
        match err {
            crate::error::Error::Database(e) => e.into(),
            // A money guard fired or a statement broke its locks' promise: a bug, never the
            // client's; the write was rolled back.
            breach => Self::internal(breach),
        }
    }
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            refusal.code(),
            refusal.to_string(),
        )
    }
}

impl From<CreateError> for ApiError {
    fn from(err: CreateError) -> Self {
        match err {
            CreateError::Refused(r) => r.into(),
            CreateError::KeyReused => Self::new(
                StatusCode::CONFLICT,
                "idempotency_key_reused",
                "this Idempotency-Key was used with a different request body",
            ),
            CreateError::ReferenceConflict => Self::new(
                StatusCode::CONFLICT,
                "reference_conflict",
                "this reference names a withdrawal requested with a different body",
            ),
            CreateError::Failed(e) => e.into(),
        }
    }
}

impl From<crate::usecases::CreditError> for ApiError {
    fn from(err: crate::usecases::CreditError) -> Self {
        use crate::usecases::CreditError;
        match err {
            CreditError::Refused(r) => r.into(),
            CreditError::ReferenceConflict => {
                Self::new(StatusCode::CONFLICT, "reference_conflict", err.to_string())
            }
            CreditError::Failed(e) => e.into(),
        }
    }
}

impl From<crate::usecases::QuoteError> for ApiError {
    fn from(err: crate::usecases::QuoteError) -> Self {
        use crate::usecases::QuoteError;
        match err {
            QuoteError::Refused(r) => r.into(),
            QuoteError::Unavailable => Self::new(
                StatusCode::BAD_GATEWAY,
                "provider_unavailable",
                err.to_string(),
            ),
            QuoteError::Busy { retry_after } => Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                err.to_string(),
            )
            .with_retry_after(retry_after),
            QuoteError::Database(e) => e.into(),
        }
    }
}
