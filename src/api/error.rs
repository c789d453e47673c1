//! The one error type of the HTTP edge, rendered as `application/problem+json` with a stable
//! `code`. Internal failures become an opaque 500; their cause is logged once, here.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::withdrawals::create::request::{CreateError, Refusal};

/// `Retry-After` on a 503: long enough for a failover's first second, short enough that a
/// client does not wait past a restart.
pub const RETRY_AFTER_SECS: &str = "1";

/// Declares [`ErrorCode`]: each variant with its wire name and, as its doc comment, what it
/// means. One list, so the enum, its names and the OpenAPI document's `ErrorCode` schema
/// (built from [`ErrorCode::ALL`]) cannot disagree.
macro_rules! error_codes {
    ($(#[doc = $meaning:literal] $variant:ident = $code:literal,)+) => {
        /// The stable `code` of a problem. Every problem the service sends carries one of these,
        /// and the OpenAPI document lists every one.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $(#[doc = $meaning] $variant,)+
        }

        impl ErrorCode {
            pub const ALL: &'static [ErrorCode] = &[$(Self::$variant,)+];

            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $code,)+
                }
            }

            /// What the code means, for the document.
            pub fn meaning(self) -> &'static str {
                match self {
                    $(Self::$variant => $meaning.trim(),)+
                }
            }
        }
    };
}

error_codes! {
    /// The body is not JSON, not a JSON object, or has an object key twice.
    InvalidJson = "invalid_json",
    /// The body could not be read.
    InvalidBody = "invalid_body",
    /// The body is over 64 KiB.
    PayloadTooLarge = "payload_too_large",
    /// The bearer token (or a callback's key or signature) is missing or wrong.
    Unauthorized = "unauthorized",
    /// Callbacks are not accepted from this address (`abuse.callback_allow`).
    Forbidden = "forbidden",
    /// No such withdrawal (or route).
    NotFound = "not_found",
    /// The route does not take this method.
    MethodNotAllowed = "method_not_allowed",
    /// `POST /v1/withdrawals` needs an `Idempotency-Key` of 1 to 255 visible ASCII characters.
    IdempotencyKeyRequired = "idempotency_key_required",
    /// The `Idempotency-Key` was used with a different body.
    IdempotencyKeyReused = "idempotency_key_reused",
    /// The `reference` was used with a different body (or currency and amount).
    ReferenceConflict = "reference_conflict",
    /// Not a positive decimal string, or more decimals than the currency allows.
    InvalidAmount = "invalid_amount",
    /// The currency is not in the catalogue.
    UnsupportedCurrency = "unsupported_currency",
    /// CoinsPaid does not convert the paying currency to `convert_to`.
    UnsupportedPair = "unsupported_pair",
    /// Not an address of the currency received.
    InvalidAddress = "invalid_address",
    /// Below the withdrawal minimum of the currency or the pair.
    BelowMinimum = "below_minimum",
    /// The available balance does not cover the amount.
    InsufficientFunds = "insufficient_funds",
    /// Over the user's limit per withdrawal or per day.
    LimitExceeded = "limit_exceeded",
    /// Anything else about the request; `detail` names the field.
    ValidationFailed = "validation_failed",
    /// Too many requests: retry after `Retry-After` seconds.
    RateLimited = "rate_limited",
    /// CoinsPaid could not be reached or did not answer usably.
    ProviderUnavailable = "provider_unavailable",
    /// Unexpected; the cause is logged under the answer's `x-request-id`.
    InternalError = "internal_error",
    /// The database is unavailable (a failover, a restart): retry after `Retry-After` seconds.
    Unavailable = "unavailable",
    /// The request ran out of its time budget; it may still take effect.
    Timeout = "timeout",
    /// Only a withdrawal awaiting approval can be cancelled.
    NotCancellable = "not_cancellable",
    /// The withdrawal's status does not allow the action (something else decided first).
    StatusConflict = "status_conflict",
    /// A submission attempt holds the withdrawal right now.
    SubmissionInFlight = "submission_in_flight",
    /// A fresh CoinsPaid look-up does not back the resolution (`override` decides anyway).
    LookupDisagrees = "lookup_disagrees",
    /// No unacknowledged anomaly is recorded on the withdrawal.
    NothingToAcknowledge = "nothing_to_acknowledge",
    /// No notification URL is configured (`notify.url`), so no event can be delivered.
    NotifyUrlNotSet = "notify_url_not_set",
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// So a test can say `assert_eq!(problem.code, "invalid_json")`.
impl PartialEq<&str> for ErrorCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: ErrorCode,
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
    pub fn new(status: StatusCode, code: ErrorCode, detail: impl Into<String>) -> Self {
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
            ErrorCode::ValidationFailed,
            format!("{field}: {message}"),
        )
    }

    pub fn invalid_json(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorCode::InvalidJson, detail)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            format!("{what} not found"),
        )
    }

    pub fn unauthorized(detail: &str) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized, detail)
    }

    /// Logs the cause with the request's span and hides it from the client.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::InternalError,
            "internal error; the request id in x-request-id finds it in the logs",
        )
    }

    pub fn unavailable(detail: &str) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Unavailable,
            detail,
        )
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
            code: self.code.as_str(),
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
                ErrorCode::IdempotencyKeyReused,
                "this Idempotency-Key was used with a different request body",
            ),
            CreateError::ReferenceConflict => Self::new(
                StatusCode::CONFLICT,
                ErrorCode::ReferenceConflict,
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
            CreditError::ReferenceConflict => Self::new(
                StatusCode::CONFLICT,
                ErrorCode::ReferenceConflict,
                err.to_string(),
            ),
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
                ErrorCode::ProviderUnavailable,
                err.to_string(),
            ),
            QuoteError::Busy { retry_after } => Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                ErrorCode::RateLimited,
                err.to_string(),
            )
            .with_retry_after(retry_after),
            QuoteError::Database(e) => e.into(),
        }
    }
}
