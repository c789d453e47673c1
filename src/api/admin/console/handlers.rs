//! The console's handlers. Like the operator API's, they only translate: a form becomes the
//! use case's input, `crate::operators` decides, and the result (or the refusal, as a
//! readable message) becomes a page. Every state-changing form is checked against the
//! session's CSRF token and confirmed in a second step before it acts.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Extension;
use maud::Markup;
use uuid::Uuid;

use super::actions::{parse_form, Action, Form};
use super::pages::{self, Flash};
use super::session::{self, Session};
use crate::api::admin::check_reason;
use crate::api::admin::handlers::detail_view;
use crate::api::admin::views::{AuditView, PauseView, StuckView};
use crate::api::error::{ApiError, ErrorCode};
use crate::api::params::scope_of;
use crate::api::views::WithdrawalView;
use crate::api::{pagination, AppState};

fn page(status: StatusCode, markup: Markup) -> Response {
    (status, Html(markup.into_string())).into_response()
}

fn framed(session: &Session, title: &str, flash: Option<Flash>, body: Markup) -> Markup {
    pages::layout(
        title,
        Some((&session.operator, &session.csrf)),
        flash.as_ref(),
        body,
    )
}

/// A refusal as an operator reads it: the API's code turned into a sentence, and its detail.
fn failed(e: &ApiError) -> Flash {
    let title = match e.code {
        ErrorCode::StatusConflict => "Not done: something else decided first (another operator, the website or a CoinsPaid callback). The page shows where it stands now.",
        ErrorCode::LookupDisagrees => "Not done: CoinsPaid's fresh look-up does not back this resolution. Check CoinsPaid's dashboard; tick override to decide anyway.",
        ErrorCode::SubmissionInFlight => "Not done: a submission attempt holds this withdrawal right now. Try again in a moment.",
        ErrorCode::ValidationFailed => "Not done: the form is incomplete.",
        ErrorCode::NothingToAcknowledge => "Not done: there is no unacknowledged anomaly (another operator may have acknowledged it first).",
        ErrorCode::NotFound => "Not found.",
        _ => "Not done.",
    };
    Flash::Failed {
        title: title.into(),
        detail: e.detail.clone(),
    }
}

fn error_page(session: &Session, e: ApiError) -> Response {
    let status = e.status;
    page(
        status,
        framed(session, "Error", Some(failed(&e)), maud::html! {}),
    )
}

/// 403 for a form without this session's CSRF token: forged, or from an ended session.
fn csrf_refused(session: &Session) -> Response {
    tracing::warn!(operator = %session.operator, "console form refused: CSRF token missing or wrong");
    page(
        StatusCode::FORBIDDEN,
        framed(
            session,
            "Form refused",
            Some(Flash::Failed {
                title: "This form did not come from your console session.".into(),
                detail: "Nothing was done. Reload the page and try again.".into(),
            }),
            maud::html! {},
        ),
    )
}

fn csrf_ok(session: &Session, form: &Form) -> bool {
    session.csrf_matches(form.get("csrf").map(String::as_str))
}

fn see_other(location: &str) -> Response {
    Redirect::to(location).into_response()
}

pub async fn login_form() -> Response {
    page(StatusCode::OK, pages::login(None))
}

/// Checks the operator token once and starts a session; the token goes no further.
pub async fn login(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let form = parse_form(&body);
    let token = form.get("token").map(|t| t.trim()).unwrap_or_default();
    let Some(operator) = state.access.operator_tokens.operator(token) else {
        tracing::warn!("console login refused: unknown operator token");
        return page(
            StatusCode::UNAUTHORIZED,
            pages::login(Some("That is not an operator token.")),
        );
    };
    let digest = crate::api::admin::auth::digest(token);
    match session::create(&state.pool, &operator, &digest).await {
        Ok(id) => {
            tracing::info!(operator = %operator, "console login");
            let cookie = session::set_cookie(&headers, Some(&id));
            ([(header::SET_COOKIE, cookie)], see_other("/admin")).into_response()
        }
        Err(e) => ApiError::internal(e).into_response(),
    }
}

pub async fn logout(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !csrf_ok(&session, &parse_form(&body)) {
        return csrf_refused(&session);
    }
    if let Err(e) = session::end(&state.pool, &session).await {
        return error_page(&session, ApiError::internal(e));
    }
    let cookie = session::set_cookie(&headers, None);
    ([(header::SET_COOKIE, cookie)], see_other("/admin/login")).into_response()
}

/// `GET /admin?limit=&cursor=`: the stuck queue with counts per kind, oldest first, 50 a
/// page unless `limit` says otherwise.
pub async fn stuck(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let (limit, after) = match pagination::parse(
        params.get("limit").map(String::as_str),
        params.get("cursor").map(String::as_str),
    ) {
        Ok(parsed) => parsed,
        Err(e) => return error_page(&session, e),
    };
    let operations = &state.usecases.operations;
    let listed = match operations.stuck(after, limit).await {
        Ok(page) => page,
        Err(e) => return error_page(&session, ApiError::internal(e)),
    };
    let counts = match operations.stuck_counts().await {
        Ok(counts) => counts,
        Err(e) => return error_page(&session, ApiError::internal(e)),
    };
    let catalog = state.currencies.catalog();
    let views: Vec<StuckView> = listed
        .items
        .iter()
        .map(|i| StuckView::new(&catalog, i))
        .collect();
    let next = listed.next.map(|cursor| match params.get("limit") {
        Some(_) => format!("/admin?limit={limit}&cursor={cursor}"),
        None => format!("/admin?cursor={cursor}"),
    });
    let body = pages::stuck(&views, &counts, after.is_some(), next.as_deref());
    page(StatusCode::OK, framed(&session, "Stuck queue", None, body))
}

/// What `?done=` says after an action redirected here; unknown words say nothing.
fn done_message(params: &HashMap<String, String>) -> Option<Flash> {
    let text = match params.get("done")?.as_str() {
        "approve" => {
            "Approved: sent to CoinsPaid with its foreign_id (unless its currency is paused)."
        }
        "reject" => "Rejected: the amount is released.",
        "retry" => "Sent again with the same foreign_id.",
        "lookup" => "Looked up at CoinsPaid: its answer is in the newest audit row.",
        "resolve" => "Resolved.",
        "acknowledge" => "Anomaly acknowledged: it leaves the stuck queue.",
        "pause" => "Paused.",
        "resume" => "Resumed.",
        _ => return None,
    };
    Some(Flash::Done(text.into()))
}

async fn withdrawal_page(
    state: &AppState,
    session: &Session,
    id: Uuid,
    status: StatusCode,
    flash: Option<Flash>,
) -> Response {
    match state.usecases.operations.detail(id).await {
        Ok(detail) => {
            let detail = detail_view(state, &detail);
            let title = format!("Withdrawal {}", detail.item.withdrawal.id);
            page(
                status,
                framed(
                    session,
                    &title,
                    flash,
                    pages::withdrawal(&detail, &session.csrf),
                ),
            )
        }
        Err(e) => error_page(session, e.into()),
    }
}

pub async fn withdrawal(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Path(raw): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let Ok(id) = Uuid::parse_str(&raw) else {
        return error_page(&session, ApiError::not_found("withdrawal"));
    };
    withdrawal_page(&state, &session, id, StatusCode::OK, done_message(&params)).await
}

/// `POST /admin/withdrawals/{id}/{action}`: without `confirm=yes`, the confirmation step;
/// with it, the use case, then back to the withdrawal's page.
pub async fn act(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Path((raw, name)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let form = parse_form(&body);
    if !csrf_ok(&session, &form) {
        return csrf_refused(&session);
    }
    let Ok(id) = Uuid::parse_str(&raw) else {
        return error_page(&session, ApiError::not_found("withdrawal"));
    };
    let action = match Action::from_form(&name, &form) {
        Ok(action) => action,
        Err(why) => {
            let e = ApiError::validation("form", why);
            let flash = failed(&e);
            return withdrawal_page(&state, &session, id, e.status, Some(flash)).await;
        }
    };
    if form.get("confirm").map(String::as_str) != Some("yes") {
        let detail = state.usecases.operations.detail(id).await;
        return match detail.map(|detail| detail_view(&state, &detail)) {
            Ok(detail) => {
                let w = &detail.item.withdrawal;
                let title = format!("Confirm: {}", action.verb());
                page(
                    StatusCode::OK,
                    framed(
                        &session,
                        &title,
                        None,
                        pages::confirm(w, &action, &session.csrf),
                    ),
                )
            }
            Err(e) => error_page(&session, e.into()),
        };
    }
    let ops = &state.usecases.operations;
    let by = session.operator.as_str();
    let outcome = match &action {
        Action::Approve { note } => ops.approve(id, by, note.as_deref()).await.map(drop),
        Action::Reject { reason } => ops.reject(id, by, reason).await.map(drop),
        Action::Retry { note } => ops.retry_now(id, by, note.as_deref()).await.map(drop),
        Action::LookUp => ops.look_up(id, by).await.map(drop),
        Action::Acknowledge { reason } => ops.acknowledge(id, by, reason).await.map(drop),
        Action::Resolve {
            outcome,
            reason,
            override_lookup,
        } => ops
            .resolve(id, by, *outcome, reason, *override_lookup)
            .await
            .map(drop),
    };
    match outcome {
        Ok(()) => see_other(&format!("/admin/withdrawals/{id}?done={}", action.name())),
        Err(err) => {
            let e = ApiError::from(err);
            let flash = failed(&e);
            withdrawal_page(&state, &session, id, e.status, Some(flash)).await
        }
    }
}

async fn pauses_page(
    state: &AppState,
    session: &Session,
    status: StatusCode,
    flash: Option<Flash>,
) -> Response {
    match state.usecases.operations.pauses().await {
        Ok(list) => {
            let views: Vec<PauseView> = list.iter().map(PauseView::from).collect();
            page(
                status,
                framed(
                    session,
                    "Pause switch",
                    flash,
                    pages::pauses(&views, &session.csrf),
                ),
            )
        }
        Err(e) => error_page(session, ApiError::internal(e)),
    }
}

pub async fn pauses(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    pauses_page(&state, &session, StatusCode::OK, done_message(&params)).await
}

/// `POST /admin/pauses` (pause) and `/admin/pauses/resume`, each confirmed first.
async fn switch(state: AppState, session: Session, body: Bytes, pausing: bool) -> Response {
    let form = parse_form(&body);
    if !csrf_ok(&session, &form) {
        return csrf_refused(&session);
    }
    let raw_scope = form.get("scope").map(|s| s.trim()).unwrap_or_default();
    let checked = scope_of(raw_scope).and_then(|scope| {
        let reason = check_reason("reason", form.get("reason").cloned(), pausing)?;
        Ok((scope, reason))
    });
    let (scope, reason) = match checked {
        Ok(ok) => ok,
        Err(e) => {
            let flash = failed(&e);
            return pauses_page(&state, &session, e.status, Some(flash)).await;
        }
    };
    if form.get("confirm").map(String::as_str) != Some("yes") {
        let title = if pausing {
            "Confirm: pause"
        } else {
            "Confirm: resume"
        };
        let body = pages::confirm_pause(pausing, raw_scope, reason.as_deref(), &session.csrf);
        return page(StatusCode::OK, framed(&session, title, None, body));
    }
    let by = session.operator.as_str();
    let operations = &state.usecases.operations;
    let done = if pausing {
        let reason = reason.as_deref().unwrap_or_default();
        operations.pause(&scope, reason, by).await
    } else {
        operations.resume(&scope, reason.as_deref(), by).await
    };
    match done {
        Ok(_) => see_other(if pausing {
            "/admin/pauses?done=pause"
        } else {
            "/admin/pauses?done=resume"
        }),
        Err(e) => error_page(&session, ApiError::internal(e)),
    }
}

pub async fn pause(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    body: Bytes,
) -> Response {
    switch(state, session, body, true).await
}

pub async fn resume(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    body: Bytes,
) -> Response {
    switch(state, session, body, false).await
}

/// `GET /admin/audit?cursor=`: the audit trail, newest first, 50 a page.
pub async fn audit(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let (limit, before) = match pagination::parse(None, params.get("cursor").map(String::as_str)) {
        Ok(parsed) => parsed,
        Err(e) => return error_page(&session, e),
    };
    let rows = match state.usecases.operations.audit(None, before, limit).await {
        Ok(rows) => rows,
        Err(e) => return error_page(&session, ApiError::internal(e)),
    };
    let next = pagination::cursor(rows.next);
    let views: Vec<AuditView> = rows.items.iter().map(AuditView::from).collect();
    page(
        StatusCode::OK,
        framed(
            &session,
            "Audit trail",
            None,
            pages::audit(&views, next.as_deref()),
        ),
    )
}

/// `GET /admin/search?q=&cursor=`: the withdrawal whose id or foreign_id is `q`, and the
/// user `q`'s withdrawals, newest first, 50 a page: what the API lists for the same text.
pub async fn search(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let text = params.get("q").map(|q| q.trim()).unwrap_or_default();
    let (limit, before) = match pagination::parse(None, params.get("cursor").map(String::as_str)) {
        Ok(parsed) => parsed,
        Err(e) => return error_page(&session, e),
    };
    let found = if text.is_empty() {
        None
    } else {
        match state.usecases.withdrawals.find(text, before, limit).await {
            Ok(found) => Some(found),
            Err(e) => return error_page(&session, ApiError::internal(e)),
        }
    };
    let catalog = state.currencies.catalog();
    let views: Option<Vec<WithdrawalView>> = found.as_ref().map(|f| {
        f.items
            .iter()
            .map(|w| WithdrawalView::new(&catalog, w))
            .collect()
    });
    let next = found.and_then(|f| f.next).map(|cursor| {
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("q", text)
            .append_pair("cursor", &cursor.to_string())
            .finish();
        format!("/admin/search?{query}")
    });
    let body = pages::search(text, views.as_deref(), before.is_some(), next.as_deref());
    page(StatusCode::OK, framed(&session, "Search", None, body))
}

pub async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("console.css"),
    )
        .into_response()
}
