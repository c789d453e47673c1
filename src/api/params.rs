//! Path parameters, query strings and the `Idempotency-Key` header, parsed into their types
//! before the body is read (extractors of the request's parts run first), so a bad path or key
//! is refused as it always was (a withdrawal id that is not a UUID is `404`, a bad user id
//! `422`, a missing key `400 idempotency_key_required`), ahead of anything wrong with the body.
//! A query string is refused whole when it names a parameter its endpoint does not know
//! ([`QueryParams`] where the endpoint takes some, [`refusing_stray_queries`] where it takes
//! none).

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::Arc;

use axum::extract::{FromRequestParts, MatchedPath, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa_axum::router::OpenApiRouter;
use uuid::Uuid;

use super::error::{ApiError, ErrorCode};
use super::AppState;
use crate::domain::{Currency, IdempotencyKey, UserId};

/// The query parameters an endpoint knows, named by a type of its own.
pub trait KnownParams {
    const KNOWN: &'static [&'static str];
}

/// The query string of an endpoint that knows `K::KNOWN`: a parameter it does not know, or one
/// given twice, is `422 validation_failed` naming it, so that a misspelt filter never answers
/// the unfiltered list. An empty value counts as absent.
pub struct QueryParams<K> {
    values: HashMap<String, String>,
    known: PhantomData<K>,
}

impl<K> QueryParams<K> {
    /// The parameter's value; `None` when absent or empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

/// Declares a [`KnownParams`] type: `known_params!(Name: "a", "b");`.
macro_rules! known_params {
    ($name:ident: $($param:literal),+ $(,)?) => {
        pub struct $name;

        impl $crate::api::params::KnownParams for $name {
            const KNOWN: &'static [&'static str] = &[$($param),+];
        }
    };
}
pub(crate) use known_params;

/// The pairs of `uri`'s query string, decoded.
fn pairs_of(uri: &axum::http::Uri) -> Vec<(String, String)> {
    form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

/// The pairs of a query string, refused when one names a parameter outside `known` (every such
/// name, sorted) or comes twice.
fn known_only(
    pairs: Vec<(String, String)>,
    known: &[&str],
) -> Result<HashMap<String, String>, ApiError> {
    let mut unknown: Vec<&str> = pairs
        .iter()
        .map(|(k, _)| k.as_str())
        .filter(|k| !known.contains(k))
        .collect();
    if !unknown.is_empty() {
        unknown.sort_unstable();
        unknown.dedup();
        let message = if known.is_empty() {
            "unknown query parameter; this operation takes none".to_owned()
        } else {
            format!("unknown query parameter; known: {}", known.join(", "))
        };
        return Err(ApiError::validation(&unknown.join(", "), message));
    }
    let mut values = HashMap::with_capacity(pairs.len());
    for (name, value) in pairs {
        if values.contains_key(&name) {
            return Err(ApiError::validation(&name, "given more than once"));
        }
        values.insert(name, value);
    }
    Ok(values)
}

impl<S: Send + Sync, K: KnownParams> FromRequestParts<S> for QueryParams<K> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        Ok(Self {
            values: known_only(pairs_of(&parts.uri), K::KNOWN)?,
            known: PhantomData,
        })
    }
}

/// The operations of a router that take no query parameter, by path template (as axum's
/// [`MatchedPath`] gives it) and method, read from the router's own OpenAPI description: what
/// the document says an operation takes is what it accepts.
struct QueryFree(HashMap<String, Vec<Method>>);

impl QueryFree {
    fn of(document: &utoipa::openapi::OpenApi) -> Self {
        let takes_none = |operation: &Operation| {
            !operation
                .parameters
                .iter()
                .flatten()
                .any(|p| p.parameter_in == ParameterIn::Query)
        };
        let mut free: HashMap<String, Vec<Method>> = HashMap::new();
        for (path, item) in &document.paths.paths {
            let operations = [
                (Method::GET, &item.get),
                (Method::PUT, &item.put),
                (Method::POST, &item.post),
                (Method::DELETE, &item.delete),
                (Method::PATCH, &item.patch),
            ];
            for (method, operation) in operations {
                if operation.as_ref().is_some_and(takes_none) {
                    free.entry(path.clone()).or_default().push(method);
                }
            }
        }
        Self(free)
    }

    fn contains(&self, path: &str, method: &Method) -> bool {
        self.0
            .get(path)
            .is_some_and(|methods| methods.contains(method))
    }
}

/// `router` with every operation that takes no query parameter refusing one:
/// `422 validation_failed` naming each, so that a parameter a client believes does something
/// (a misspelt filter, one from another endpoint) is never silently ignored. Added before the
/// router's authentication, so it runs after it, as [`QueryParams`] does.
pub fn refusing_stray_queries<S>(router: OpenApiRouter<S>) -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
{
    let free = Arc::new(QueryFree::of(router.get_openapi()));
    router.route_layer(middleware::from_fn_with_state(free, refuse_stray_query))
}

async fn refuse_stray_query(
    State(free): State<Arc<QueryFree>>,
    matched: Option<MatchedPath>,
    request: Request,
    next: Next,
) -> Response {
    let takes_none = matched
        .as_ref()
        .is_some_and(|path| free.contains(path.as_str(), request.method()));
    if takes_none {
        if let Err(refused) = known_only(pairs_of(request.uri()), &[]) {
            return refused.into_response();
        }
    }
    next.run(request).await
}

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
                    ErrorCode::UnsupportedCurrency,
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
                    ErrorCode::IdempotencyKeyRequired,
                    "an Idempotency-Key header of 1 to 255 visible ASCII characters is required",
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(query: &str) -> Vec<(String, String)> {
        form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect()
    }

    #[test]
    fn known_parameters_pass_and_others_are_named() {
        let known = ["limit", "cursor"];
        let values = known_only(pairs("limit=5&cursor="), &known).unwrap();
        assert_eq!(values["limit"], "5");
        assert!(known_only(pairs(""), &known).unwrap().is_empty());
        let refused = known_only(pairs("limt=5&zeta=1&cursor=x&zeta=2"), &known).unwrap_err();
        assert_eq!(refused.code, "validation_failed");
        assert_eq!(
            refused.detail,
            "limt, zeta: unknown query parameter; known: limit, cursor"
        );
        let twice = known_only(pairs("limit=5&limit=6"), &known).unwrap_err();
        assert_eq!(twice.detail, "limit: given more than once");
    }
}
