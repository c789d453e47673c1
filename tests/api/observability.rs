//! What an operator sees: every series present from the first scrape, gauges that mean what
//! they say, and an access log line per request.

use std::collections::{BTreeMap, BTreeSet};

use crate::helpers::*;
use payoutd::simulator::SubmitBehavior;
use payoutd::telemetry::catalog::{self, CATALOGUE, PROCESS_METRICS};

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
        r#"payoutd_lookups_total{result="no_usable_record"}"#,
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

/// A scrape, read line by line: each family's `# TYPE` and `# HELP`, and every sample's
/// family and labels.
#[derive(Default)]
struct Scrape {
    types: BTreeMap<String, String>,
    helps: BTreeMap<String, String>,
    samples: Vec<(String, Vec<(String, String)>)>,
}

/// `k="v",k2="v2"}` (escapes as the text format has them), up to the closing brace.
fn labels_of(text: &str) -> Vec<(String, String)> {
    let mut labels = Vec::new();
    let mut rest = text;
    while let Some((key, after)) = rest.split_once("=\"") {
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next().expect("a label value ends") {
                (_, '\\') => value.push(chars.next().unwrap().1),
                (i, '"') => break i,
                (_, c) => value.push(c),
            }
        };
        labels.push((key.trim_start_matches(',').to_owned(), value));
        rest = &after[end + 1..];
        if rest.starts_with('}') {
            break;
        }
    }
    labels
}

fn read_scrape(text: &str) -> Scrape {
    let mut scrape = Scrape::default();
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            scrape.types.insert(name.into(), kind.into());
        } else if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap();
            scrape.helps.insert(name.into(), help.into());
        } else {
            assert!(!line.starts_with('#'), "unexpected line {line}");
            let (name, labels) = match line.split_once('{') {
                Some((name, rest)) => (name, labels_of(rest)),
                None => (line.split_once(' ').unwrap().0, Vec::new()),
            };
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .filter_map(|suffix| name.strip_suffix(suffix))
                .find(|f| scrape.types.get(*f).is_some_and(|t| t == "histogram"))
                .unwrap_or(name);
            assert!(
                scrape.types.contains_key(family),
                "{name} has no # TYPE before it"
            );
            scrape.samples.push((family.to_owned(), labels));
        }
    }
    scrape
}

#[tokio::test]
async fn every_exported_series_is_described_by_the_catalogue_and_passes_promtool() {
    let app = spawn_app().await;
    // The series created by their first recording: HTTP requests (one of them unmatched) and
    // calls to CoinsPaid.
    let w = app.processing_withdrawal("10.00").await;
    app.post_callback(&app.callback_for(&w, "confirmed")).await;
    app.post_callback_raw(b"{}", Some(KEY), Some("forged"))
        .await;
    assert_eq!(
        app.get_json("/v1/no-such-route").await.0,
        reqwest::StatusCode::NOT_FOUND
    );
    let text = app.metrics_text().await;
    let scrape = read_scrape(&text);

    for (family, kind) in &scrape.types {
        assert!(
            scrape.helps.contains_key(family),
            "# TYPE {family} has no # HELP"
        );
        if PROCESS_METRICS.contains(&family.as_str()) {
            continue;
        }
        let metric = catalog::find(family).unwrap_or_else(|| {
            panic!("{family} is exported but telemetry::catalog::CATALOGUE does not describe it")
        });
        assert_eq!(kind, metric.kind.as_str(), "{family}");
        assert_eq!(scrape.helps[family], metric.help, "{family}");
    }
    for metric in CATALOGUE {
        assert!(
            scrape.types.contains_key(metric.name),
            "{} is not exported:\n{text}",
            metric.name
        );
    }
    for (family, labels) in &scrape.samples {
        let Some(metric) = catalog::find(family) else {
            continue;
        };
        let keys: BTreeSet<&str> = labels
            .iter()
            .map(|(k, _)| k.as_str())
            .filter(|k| *k != "le")
            .collect();
        let listed: BTreeSet<&str> = metric.labels.iter().map(|(k, _)| *k).collect();
        assert_eq!(keys, listed, "labels of {family}");
        for (key, value) in labels {
            if let Some((_, values)) = metric.labels.iter().find(|(k, _)| k == key) {
                assert!(
                    values.is_empty() || values.contains(&value.as_str()),
                    "{family}{{{key}=\"{value}\"}} is not in the catalogue"
                );
            }
        }
    }
    assert!(
        scrape
            .samples
            .iter()
            .any(|(f, _)| f == "payoutd_provider_call_duration_seconds"),
        "the exercise reached CoinsPaid"
    );

    if let Some(promtool) = promtool() {
        run_promtool(&promtool, &["check", "metrics"], &text);
    }
}
