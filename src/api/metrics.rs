//! `GET /metrics` and the per-request HTTP metrics middleware.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;

/// Counts and times every request by its route template (`/v1/withdrawals/{id}`, not the raw
/// path, so ids do not explode the label set).
pub async fn track(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let method = request.method().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::histogram!("payoutd_http_request_duration_seconds", "method" => method.clone(), "route" => route.clone())
        .record(started.elapsed().as_secs_f64());
    metrics::counter!("payoutd_http_requests_total", "method" => method, "route" => route, "status" => status)
        .increment(1);
    response
}

#[utoipa::path(get, path = "/metrics", operation_id = "getMetrics", tag = "operations", responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
/// Prometheus text. Gauges that describe the database (open withdrawals, the oldest one's
/// age, parked jobs) are read at scrape time, so every replica reports the same truth.
pub async fn render(State(state): State<AppState>) -> Response {
    if let Err(err) = refresh_gauges(&state).await {
        tracing::warn!(error = %err, "metrics: database gauges not refreshed");
    }
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

async fn refresh_gauges(state: &AppState) -> Result<(), sqlx::Error> {
    let (pending, processing, oldest, parked): (i64, i64, Option<f64>, i64) = sqlx::query_as(
        "SELECT
             count(*) FILTER (WHERE status = 'pending'),
             count(*) FILTER (WHERE status = 'processing'),
             EXTRACT(EPOCH FROM now() - min(created_at))::float8,
             (SELECT count(*) FROM submission_jobs WHERE parked)
         FROM withdrawals WHERE status IN ('pending', 'processing')",
    )
    .fetch_one(&state.pool)
    .await?;
    metrics::gauge!("payoutd_withdrawals", "status" => "pending").set(pending as f64);
    metrics::gauge!("payoutd_withdrawals", "status" => "processing").set(processing as f64);
    metrics::gauge!("payoutd_oldest_pending_withdrawal_age_seconds").set(oldest.unwrap_or(0.0));
    metrics::gauge!("payoutd_submission_jobs_parked").set(parked as f64);
    let undelivered: i64 =
        sqlx::query_scalar("SELECT count(*) FROM notification_outbox WHERE delivered_at IS NULL")
            .fetch_one(&state.pool)
            .await?;
    metrics::gauge!("payoutd_notifications_undelivered").set(undelivered as f64);
    let (awaiting, pauses, all_paused): (i64, i64, bool) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM withdrawals WHERE status = 'awaiting_approval'),
                (SELECT count(*) FROM submission_pauses),
                EXISTS (SELECT 1 FROM submission_pauses WHERE scope = '*')",
    )
    .fetch_one(&state.pool)
    .await?;
    metrics::gauge!("payoutd_withdrawals", "status" => "awaiting_approval").set(awaiting as f64);
    metrics::gauge!("payoutd_submissions_paused", "scope" => "all")
        .set(f64::from(u8::from(all_paused)));
    metrics::gauge!("payoutd_submissions_paused_scopes").set(pauses as f64);
    Ok(())
}
