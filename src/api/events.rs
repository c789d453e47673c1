//! `/v1/events` and `/v1/webhooks/test`: the events feed, a redelivery, a test event.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use uuid::Uuid;

use super::error::{ApiError, ErrorCode};
use super::params::{known_params, EventId, QueryParams};
use super::views::EventPage;
use super::{pagination, AppState};
use crate::notify::feed::Position;
use crate::usecases::EventError;

impl From<EventError> for ApiError {
    fn from(err: EventError) -> Self {
        match err {
            EventError::NotFound => ApiError::not_found("event"),
            EventError::NotDeliverable => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::NotifyUrlNotSet,
                err.to_string(),
            ),
            EventError::Database(e) => e.into(),
        }
    }
}

known_params!(FeedParams: "after", "limit");

/// List events
///
/// Every notification payoutd sent or is sending, exactly as POSTed to the notification URL,
/// oldest first in commit order: a reader that passes `next_cursor` as `after` never skips one.
/// Events of transactions still running are held back until they end. For a website that
/// missed deliveries, or that reads events instead of receiving them.
#[utoipa::path(
    get, path = "/v1/events", operation_id = "listEvents", tag = "events",
    params(
        ("after" = Option<String>, Query, description = "next_cursor of the previous page; absent: from the oldest event kept"),
        ("limit" = Option<i64>, Query, description = "1 to 200, default 50"),
    ),
    responses(
        (status = 200, description = "Events, oldest first in commit order: a reader following next_cursor never skips one. Events of transactions still running are held back until they end", body = EventPage),
        (status = 422, description = "validation_failed: a bad limit or after, or an unknown query parameter (named)", body = super::openapi::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    params: QueryParams<FeedParams>,
) -> Result<Json<EventPage>, ApiError> {
    let limit = pagination::limit(params.get("limit"))?;
    let after = params
        .get("after")
        .map(|a| {
            Position::decode(a)
                .ok_or_else(|| ApiError::validation("after", "is not a cursor this API returned"))
        })
        .transpose()?;
    let page = state.usecases.events.feed(after, limit).await?;
    Ok(Json(EventPage {
        data: page.events,
        next_cursor: page.next.map(|p| p.encode()),
    }))
}

/// Redeliver an event
///
/// POSTs the event to the notification URL again: the same body with the same `webhook-id`,
/// freshly signed. The receiver's duplicate check sees it as the event it already knows.
#[utoipa::path(
    post, path = "/v1/events/{id}/redeliver", operation_id = "redeliverEvent", tag = "events",
    params(("id" = String, Path, description = "The event's id (its webhook-id)")),
    responses(
        (status = 202, description = "It will be POSTed to the notification URL again, the same body with the same webhook-id, freshly signed"),
        (status = 404, description = "not_found: no such event is kept", body = super::openapi::Problem, content_type = "application/problem+json"),
        (status = 409, description = "notify_url_not_set: no notification URL is configured", body = super::openapi::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn redeliver(
    State(state): State<AppState>,
    EventId(id): EventId,
) -> Result<StatusCode, ApiError> {
    state.usecases.events.redeliver(id).await?;
    Ok(StatusCode::ACCEPTED)
}

/// The answer to `POST /v1/webhooks/test`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TestEventSent {
    /// The test event's id: its `webhook-id`, and its id in `/v1/events`.
    pub id: Uuid,
}

/// Send a test event
///
/// Writes a `webhook.test` event, delivered to the notification URL like any other and listed
/// in the events feed: a way to check the receiver's signature verification end to end.
#[utoipa::path(
    post, path = "/v1/webhooks/test", operation_id = "sendTestEvent", tag = "events",
    responses(
        (status = 202, description = "A `webhook.test` event is written: it will be POSTed to the notification URL like any event, and is listed in /v1/events", body = TestEventSent),
        (status = 409, description = "notify_url_not_set: no notification URL is configured", body = super::openapi::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn send_test(State(state): State<AppState>) -> Result<Response, ApiError> {
    let id = state.usecases.events.send_test().await?;
    Ok((StatusCode::ACCEPTED, Json(TestEventSent { id })).into_response())
}
