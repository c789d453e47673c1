//! The HTTP edge: routing, state, and the layers every request passes through.
//! Handlers are thin: they parse into domain types and call a use case.

pub mod abuse;
mod access;
pub mod admin;
mod approvals;
mod auth;
mod body;
mod callbacks;
mod currencies;
mod docs;
pub mod error;
mod events;
mod health;
mod json;
mod limits;
mod metrics;
pub mod openapi;
mod pagination;
mod params;
mod requests;
mod timeout;
mod users;
pub mod views;
mod withdrawals;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{middleware, Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use sqlx::PgPool;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use auth::ApiTokens;
use error::{ApiError, ErrorCode};

use crate::currencies::Currencies;
use crate::usecases::UseCases;

/// The contract's request body limit.
pub const BODY_LIMIT: usize = 64 * 1024;

/// What handlers share: one allocation, so the clone axum makes for every extractor and
/// middleware of every request is one reference count (cloning the services field by field
/// cost about 5% of the process's CPU under load).
#[derive(Clone)]
pub struct AppState(Arc<Services>);

impl AppState {
    pub fn new(services: Services) -> Self {
        Self(Arc::new(services))
    }
}

impl std::ops::Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0
    }
}

/// The services behind [`AppState`]: the use cases handlers call, and the few services every
/// handler shares.
pub struct Services {
    /// What handlers call: one use case per request.
    pub usecases: UseCases,
    /// The currency catalogue in force, loaded from CoinsPaid and refreshed: views render
    /// amounts at its precisions.
    pub currencies: Arc<Currencies>,
    /// Readiness and the console's sessions.
    pub pool: PgPool,
    pub access: Access,
    pub telemetry: Telemetry,
}

/// Who may call what.
pub struct Access {
    pub tokens: Arc<ApiTokens>,
    /// Operator tokens with their names; never the website's.
    pub operator_tokens: Arc<admin::auth::OperatorTokens>,
    /// Rate limits and the callback allow-list.
    pub guard: Arc<abuse::Guard>,
}

/// What `/readyz` and `/metrics` report.
pub struct Telemetry {
    /// `coinspaid` or `simulator`, as `/readyz` reports it.
    pub provider_mode: &'static str,
    pub metrics: PrometheusHandle,
    /// Scrape-time gauges: database-derived (cached per interval), pool, process.
    pub gauges: Arc<crate::telemetry::gauges::Gauges>,
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The routes and their OpenAPI description, built together so the two cannot drift apart.
fn documented_routes(
    tokens: Arc<ApiTokens>,
    operator_tokens: Arc<admin::auth::OperatorTokens>,
    guard: Arc<abuse::Guard>,
) -> OpenApiRouter<AppState> {
    use admin::handlers as op;
    let operator = OpenApiRouter::new()
        .routes(routes!(op::stuck_list))
        .routes(routes!(op::withdrawal))
        .routes(routes!(op::approve))
        .routes(routes!(op::reject))
        .routes(routes!(op::retry))
        .routes(routes!(op::look_up))
        .routes(routes!(op::resolve))
        .routes(routes!(op::acknowledge))
        .routes(routes!(op::pauses))
        .routes(routes!(op::pause_scope, op::resume_scope))
        .routes(routes!(op::flag_user, op::unflag_user))
        .routes(routes!(op::audit_list));
    // A refused operator token counts against its source address in the same bucket as a
    // refused website token, so guessing at either interface spends one allowance.
    let operator = params::refusing_stray_queries(operator)
        .route_layer(middleware::from_fn_with_state(
            operator_tokens,
            admin::auth::require_operator,
        ))
        .route_layer(middleware::from_fn_with_state(
            guard.clone(),
            abuse::unauthenticated,
        ));
    let authenticated = OpenApiRouter::new()
        .routes(routes!(users::credit))
        .routes(routes!(users::balances))
        .routes(routes!(users::ledger_entries))
        .routes(routes!(withdrawals::create, withdrawals::list))
        .routes(routes!(withdrawals::get))
        .routes(routes!(currencies::list))
        .routes(routes!(currencies::quote))
        .routes(routes!(limits::get, limits::put))
        .routes(routes!(approvals::cancel))
        .routes(routes!(approvals::flag_user, approvals::unflag_user))
        .routes(routes!(events::list))
        .routes(routes!(events::redeliver))
        .routes(routes!(events::send_test));
    let authenticated = params::refusing_stray_queries(authenticated)
        // Innermost first: the per-token limit runs once the token is known; a refused
        // token counts against its source address instead.
        .route_layer(middleware::from_fn_with_state(guard.clone(), abuse::api))
        .route_layer(middleware::from_fn_with_state(tokens, auth::require_bearer))
        .route_layer(middleware::from_fn_with_state(
            guard.clone(),
            abuse::unauthenticated,
        ));
    let callback = OpenApiRouter::new()
        .routes(routes!(callbacks::coinspaid))
        .route_layer(middleware::from_fn_with_state(guard, abuse::callback));
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(authenticated)
        .merge(operator)
        .merge(callback)
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(metrics::render))
}

/// The OpenAPI document of the API, as `/openapi.json` serves it.
pub fn openapi_document() -> serde_json::Value {
    openapi::complete(
        documented_routes(
            Arc::new(ApiTokens::new(&[])),
            Arc::new(admin::auth::OperatorTokens::new(&[])),
            Arc::new(abuse::Guard::new(
                &crate::config::Settings::defaults().abuse,
            )),
        )
        .split_for_parts()
        .1,
    )
}

pub fn router(state: AppState, request_timeout: Duration) -> Router {
    let (routes, document) = documented_routes(
        state.access.tokens.clone(),
        state.access.operator_tokens.clone(),
        state.access.guard.clone(),
    )
    .split_for_parts();
    let served = Arc::new(openapi::complete(document));
    routes
        .route(
            "/openapi.json",
            get(move || async move { Json(served.as_ref().clone()) }),
        )
        .merge(docs::router())
        .merge(admin::console::router(state.clone()))
        // Inside the metrics layer, so a timed-out request is counted with its 503.
        .layer(middleware::from_fn_with_state(
            request_timeout,
            timeout::answer_within,
        ))
        .layer(middleware::from_fn(metrics::track))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::internal("handler panicked").into_response()
        }))
        .layer(middleware::from_fn(access::log))
        .layer(
            // No ERROR line per 5xx from tower-http: the access log has every answer with its
            // status, a 500's cause is logged where it happens (`ApiError::internal`), and a
            // database outage's thousands of 503s are one warning (`failover::report`).
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request| access::request_span(request))
                .on_failure(()),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(middleware::map_request(access::sanitize_request_id))
}

async fn not_found() -> Response {
    ApiError::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, "no such route").into_response()
}

async fn method_not_allowed() -> Response {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::MethodNotAllowed,
        "method not allowed on this route",
    )
    .into_response()
}
