//! Path parameters and the `Idempotency-Key` header, parsed into their types before the body
//! is read (extractors of the request's parts run first), so a bad path or key is refused as
//! it always was (a withdrawal id that is not a UUID is `404`, a bad user id `422`, a missing
//! key `400 idempotency_key_required`), ahead of anything wrong with the body.

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use uuid::Uuid;

use super::error::ApiError;
use super::AppState;
use crate::domain::{Currency, IdempotencyKey, UserId};

/// The `Idempotency-Key` header of a withdrawal request.
pub struct Idempotency(pub IdempotencyKey);

/// `{id}` of a withdrawal: anything not a UUID names no withdrawal.
pub struct WithdrawalId(pub Uuid);

/// `{id}` of an event: anything not a UUID names no event.
pub struct EventId(pub Uuid);

/// `{user_id}`: 1 to 128 visible ASCII characters.
pub struct User(pub UserId);

/// `{user_id}/limits/{currency}`: the currency must be in the catalogue.
pub struct LimitsOf(pub UserId, pub Currency);

/// `{scope}` of a pause: `all` (stored as `*`) or a currency code.
pub struct Scope(pub String);

fn user_of(raw: &str) -> Result<UserId, ApiError> {
    UserId::parse(raw)
        .ok_or_else(|| ApiError::validation("user_id", "1 to 128 visible ASCII characters"))
}

/// `all` (every currency) or a currency code, as stored (`*` or the code).
pub(crate) fn scope_of(raw: &str) -> Result<String, ApiError> {
    if raw == "all" {
        return Ok(crate::operators::pause::ALL.to_owned());
    }
    Currency::parse(raw)
        .map(|c| c.as_str().to_owned())
        .ok_or_else(|| ApiError::validation("scope", "all or an uppercase currency code"))
}

async fn raw<T, S>(parts: &mut Parts, state: &S) -> Result<T, Response>
where
    T: serde::de::DeserializeOwned + Send,
    S: Send + Sync,
{
    Path::<T>::from_request_parts(parts, state)
        .await
        .map(|Path(raw)| raw)
        .map_err(IntoResponse::into_response)
}

/// `{id}` as a UUID; anything else names no `what`: `404`.
async fn uuid_naming<S: Send + Sync>(
    parts: &mut Parts,
    state: &S,
    what: &str,
) -> Result<Uuid, Response> {
    let raw: String = raw(parts, state).await?;
    Uuid::parse_str(&raw).map_err(|_| ApiError::not_found(what).into_response())
}

impl<S: Send + Sync> FromRequestParts<S> for WithdrawalId {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        uuid_naming(parts, state, "withdrawal").await.map(Self)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for EventId {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        uuid_naming(parts, state, "event").await.map(Self)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for User {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        let raw: String = raw(parts, state).await?;
        user_of(&raw).map(Self).map_err(IntoResponse::into_response)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Scope {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        let raw: String = raw(parts, state).await?;
        scope_of(&raw)
            .map(Self)
            .map_err(IntoResponse::into_response)
    }
}

impl FromRequestParts<AppState> for LimitsOf {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let (user, currency): (String, String) = raw(parts, state).await?;
        let user = user_of(&user).map_err(IntoResponse::into_response)?;
        let currency = Currency::parse(&currency)
            .filter(|c| state.currencies.catalog().get(c).is_some())
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "unsupported_currency",
                    format!("{currency:?} is not a supported currency"),
                )
                .into_response()
            })?;
        Ok(Self(user, currency))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Idempotency {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parts
            .headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .and_then(IdempotencyKey::parse)
            .map(Self)
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "idempotency_key_required",
                    "an Idempotency-Key header of 1 to 255 visible ASCII characters is required",
                )
            })
    }
}
