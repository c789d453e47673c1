//! What an operator sees: every series present from the first scrape, gauges that mean what
//! they say, and an access log line per request.

use crate::helpers::*;
use payoutd::simulator::SubmitBehavior;

fn value_of(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|l| {
        l.strip_prefix(series)
            .and_then(|rest| rest.strip_prefix(' '))
            .map(|v| v.parse::<f64>().unwrap())
    })
}

#[tokio::test]
async fn a_fresh_instance_exports_every_series_with_its_known_labels() {
    let app = spawn_app().await;
    let metrics = app.metrics_text().await;
    for series in [
        r#"payoutd_callbacks_total{outcome="applied"}"#,
        r#"payoutd_callbacks_total{outcome="unreadable"}"#,
        r#"payoutd_callbacks_total{outcome="rejected"}"#,
        r#"payoutd_withdrawal_anomalies_total{kind="mismatch"}"#,
        r#"payoutd_withdrawal_anomalies_total{kind="contradiction"}"#,
        r#"payoutd_withdrawal_anomalies_total{kind="unrecognized_status"}"#,
        r#"payoutd_reconciler_checks_total{result="missing"}"#,
        r#"payoutd_reconciler_checks_total{result="anomaly"}"#,
        r#"payoutd_notifications_total{outcome="failed"}"#,
        r#"payoutd_submissions_parked_total{reason="attempts_exhausted"}"#,
        r#"payoutd_submissions_parked_total{reason="needs_operator"}"#,
        r#"payoutd_submissions_total{outcome="configuration_error"}"#,
        r#"payoutd_lookups_total{result="no_record"}"#,
        r#"payoutd_rate_limited_total{scope="callback"}"#,
        r#"payoutd_retention_deleted_total{table="idempotency_keys"}"#,
        "payoutd_submission_jobs_parked",
        "payoutd_notifications_undelivered",
        "payoutd_oldest_pending_withdrawal_age_seconds",
        "payoutd_db_pool_max_connections",
        r#"payoutd_db_pool_connections{state="idle"}"#,
    ] {
        assert!(
            value_of(&metrics, series).is_some(),
            "{series} missing:\n{metrics}"
        );
    }
    assert_eq!(
        value_of(
            &metrics,
            &format!(
                "payoutd_build_info{{version=\"{}\"}}",
                env!("CARGO_PKG_VERSION")
            )
        ),
        Some(1.0)
    );
    assert_eq!(
        value_of(&metrics, "payoutd_db_pool_max_connections"),
        Some(20.0)
    );
    for process in [
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_start_time_seconds",
    ] {
        assert!(
            value_of(&metrics, process).is_some(),
            "{process} missing:\n{metrics}"
        );
    }
}

#[tokio::test]
async fn database_gauges_are_read_at_most_once_per_interval() {
    // The refresh stamp is process-wide: another app's scrape would refresh it.
    if !in_own_process(
        module_path!(),
        "database_gauges_are_read_at_most_once_per_interval",
    )
    .await
    {
        return;
    }
    let app = spawn_app_with(|s| s.metrics.db_gauges_interval_secs = 3_600).await;
    let first = value_of(
        &app.metrics_text().await,
        "payoutd_db_gauges_refreshed_timestamp_seconds",
    );
    // A withdrawal held now is not seen until the interval has passed.
    app.fund("u1", "EUR", "10.00").await;
    app.sim
        .set_default_behavior(SubmitBehavior::ServerError { status: 503 });
    app.withdraw_ok(&eur_to_btc("u1", "10.00")).await;
    let metrics = app.metrics_text().await;
    assert_eq!(
        value_of(&metrics, "payoutd_db_gauges_refreshed_timestamp_seconds"),
        first
    );
}

#[tokio::test]
async fn a_callback_settling_a_parked_withdrawal_removes_its_job() {
    let app = spawn_app_with(|s| s.worker.max_attempts = 2).await;
    app.fund("u1", "EUR", "100.00").await;
    app.sim
        .set_default_behavior(SubmitBehavior::ServerError { status: 503 });
    let w = app.withdraw_ok(&eur_to_btc("u1", "10.00")).await;
    // Each resend waits for a look-up without record past the quiet period.
    app.drain_waiting(std::time::Duration::from_secs(10)).await;
    let id = w["id"].as_str().unwrap().to_owned();
    let parked: bool =
        sqlx::query_scalar("SELECT parked FROM submission_jobs WHERE withdrawal_id = $1::uuid")
            .bind(&id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(parked);
    assert_eq!(
        value_of(&app.metrics_text().await, "payoutd_submission_jobs_parked"),
        Some(1.0)
    );

    // CoinsPaid had it after all, and says so.
    assert_eq!(
        app.post_callback(&app.callback_for(&w, "confirmed")).await,
        reqwest::StatusCode::OK
    );
    assert_eq!(app.withdrawal(&id).await["status"], "confirmed");
    let jobs: i64 = sqlx::query_scalar("SELECT count(*) FROM submission_jobs")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(jobs, 0, "a settled withdrawal has no submission job");
    assert_eq!(
        value_of(&app.metrics_text().await, "payoutd_submission_jobs_parked"),
        Some(0.0)
    );
    app.assert_invariants().await;
}

#[tokio::test]
async fn undelivered_notifications_are_not_a_backlog_without_a_url() {
    let app = spawn_app().await;
    let w = app.processing_withdrawal("10.00").await;
    app.post_callback(&app.callback_for(&w, "confirmed")).await;
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM notification_outbox")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(stored >= 1, "the record is kept");
    assert_eq!(
        value_of(
            &app.metrics_text().await,
            "payoutd_notifications_undelivered"
        ),
        Some(0.0)
    );
}

#[tokio::test]
async fn a_long_or_odd_request_id_is_replaced_and_a_plain_one_echoed() {
    let app = spawn_app().await;
    let echo = |value: String| {
        let app = &app;
        async move {
            app.http
                .get(app.url("/healthz"))
                .header("x-request-id", value)
                .send()
                .await
                .unwrap()
                .headers()["x-request-id"]
                .to_str()
                .unwrap()
                .to_owned()
        }
    };
    assert_eq!(echo("web-req-42".into()).await, "web-req-42");
    let long = "a".repeat(6_000);
    let replaced = echo(long.clone()).await;
    assert_ne!(replaced, long);
    assert!(uuid::Uuid::parse_str(&replaced).is_ok(), "{replaced}");
    let odd = echo("x\"}{\"level\":\"ERROR\"".into()).await;
    assert!(uuid::Uuid::parse_str(&odd).is_ok(), "{odd}");
}
