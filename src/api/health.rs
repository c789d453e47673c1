//! Liveness and readiness.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use super::AppState;
use crate::db;

/// Check liveness
///
/// `200` while the process runs; checks nothing else.
#[utoipa::path(get, path = "/healthz", operation_id = "getHealth", tag = "operations", responses((status = 200, description = "The process runs")))]
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Check readiness
///
/// `200` when a writable database primary answers and the migrations are applied, else `503`, so
/// that a load balancer sends traffic elsewhere during a failover. The body names the provider mode
/// (`coinspaid`, or `simulator` with a warning) and the scopes whose submissions operators have
/// paused.
#[utoipa::path(
    get, path = "/readyz", operation_id = "getReadiness", tag = "operations",
    responses(
        (status = 200, description = "A writable primary answers and migrations are applied; names the provider mode"),
        (status = 503, description = "Not ready: `database` says why (`unavailable`, `read_only` during a failover, `migrations_pending`)"),
    )
)]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let database = db::readiness(&state.pool).await;
    let database_ready = database == db::Readiness::Ready;
    let status = if database_ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut body = json!({
        "status": if database_ready { "ready" } else { "not_ready" },
        "database": database.as_str(),
        "provider": state.telemetry.provider_mode,
    });
    // The pause switch: ready to accept, but nothing is being sent for these scopes.
    if database_ready {
        if let Ok(pauses) = crate::operators::pause::list(&state.pool).await {
            body["submissions_paused"] =
                json!(pauses.iter().map(|p| p.scope.clone()).collect::<Vec<_>>());
        }
    }
    if state.telemetry.provider_mode == "simulator" {
        body["warning"] =
            json!("payouts go to the embedded CoinsPaid simulator; no real money moves");
    }
    (status, Json(body))
}
