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
    metrics::counter!("payoutd_http_requests_total", "method" => method, "route" => route.clone(), "status" => status)
        .increment(1);
    let mut response = response;
    response
        .extensions_mut()
        .insert(super::access::RouteTemplate(route));
    response
}

/// Scrape the metrics
///
/// Prometheus text. Gauges that describe the database are read at most once per
/// `metrics.db_gauges_interval_secs`; every replica reports the same value for them, so aggregate
/// those with `max()`.
#[utoipa::path(get, path = "/metrics", operation_id = "getMetrics", tag = "operations", responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub async fn render(State(state): State<AppState>) -> Response {
    state.telemetry.gauges.refresh().await;
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.telemetry.metrics.render(),
    )
        .into_response()
}
