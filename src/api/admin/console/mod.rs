//! The operator console at `/admin`: server-rendered HTML (maud), one stylesheet served from
//! the binary, no JavaScript. It calls the same use cases as `/admin/v1` and `payoutd admin`;
//! only the way in differs (a login form and a session cookie instead of a bearer token).

mod actions;
mod handlers;
mod pages;
pub mod session;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::api::error::ApiError;
use crate::api::AppState;

/// The console's routes. Everything but the login page and the stylesheet needs a session.
pub fn router(state: AppState) -> Router<AppState> {
    let signed_in = Router::new()
        .route("/admin", get(handlers::stuck))
        .route("/admin/withdrawals/{id}", get(handlers::withdrawal))
        .route("/admin/withdrawals/{id}/{action}", post(handlers::act))
        .route("/admin/pauses", get(handlers::pauses).post(handlers::pause))
        .route("/admin/pauses/resume", post(handlers::resume))
        .route("/admin/audit", get(handlers::audit))
        .route("/admin/search", get(handlers::search))
        .route("/admin/logout", post(handlers::logout))
        .route_layer(middleware::from_fn_with_state(state, require_session));
    Router::new()
        .merge(signed_in)
        .route(
            "/admin/login",
            get(handlers::login_form).post(handlers::login),
        )
        .route("/admin/assets/console.css", get(handlers::css))
        .layer(middleware::from_fn(security_headers))
}

/// Without a live session (or once the token that opened it is no longer its operator's), to
/// the login page; a POST is never acted on.
async fn require_session(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    match session::find(
        &state.pool,
        request.headers(),
        &state.access.operator_tokens,
    )
    .await
    {
        Ok(Some(s)) => {
            request.extensions_mut().insert(s);
            next.run(request).await
        }
        Ok(_) => Redirect::to("/admin/login").into_response(),
        Err(e) => ApiError::internal(e).into_response(),
    }
}

/// Pages load nothing from elsewhere, run no script, are never framed or cached.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}
