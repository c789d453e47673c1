//! Several replicas of payoutd on one database: duplicate and contradictory callbacks spread
//! across them settle once, and their workers never submit one withdrawal twice at once.

use std::sync::Arc;
use std::time::Duration;

use crate::helpers::*;
use payoutd::simulator::SubmitBehavior;
use reqwest::StatusCode;
use serde_json::Value;

/// Small pools: three replicas per test, several tests at once, one PostgreSQL.
fn replica_settings(s: &mut payoutd::config::Settings) {
    s.database.max_connections = 6;
    // A thousand requests queue for 18 connections; on a loaded two-core machine a 5 s wait
    // for one answers 503 (and CoinsPaid would redeliver). These tests are about exactly-once
    // outcomes, not latency, so every request waits its turn.
    s.database.acquire_timeout_secs = 30;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_duplicate_callbacks_across_three_replicas_debit_once() {
    let replicas = Arc::new(spawn_cluster(3, replica_settings).await);
    let w = replicas[0].processing_withdrawal("100.00").await;
    let body = Arc::new(replicas[0].callback_for(&w, "confirmed"));
    let statuses = concurrently(1000, |i| {
        let (replicas, body) = (replicas.clone(), body.clone());
        async move { replicas[i % 3].post_callback(&body).await }
    })
    .await;
    assert!(
        statuses.iter().all(|s| *s == StatusCode::OK),
        "{:?}",
        statuses
            .iter()
            .filter(|s| **s != StatusCode::OK)
            .collect::<Vec<_>>()
    );
    let app = &replicas[1];
    assert_eq!(
        app.ledger_kinds(w["id"].as_str().unwrap()).await,
        ["hold", "debit"]
    );
    assert_eq!(
        app.balance("u1", "EUR").await,
        ("0.00".into(), "0.00".into())
    );
    let applied: i64 =
        sqlx::query_scalar("SELECT count(*) FROM callbacks WHERE outcome = 'applied'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    let duplicates: i64 =
        sqlx::query_scalar("SELECT count(*) FROM callbacks WHERE outcome = 'duplicate'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!((applied, duplicates), (1, 999));
    app.assert_invariants().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_hundred_confirmed_against_five_hundred_cancelled_across_replicas_one_outcome() {
    let replicas = Arc::new(spawn_cluster(3, replica_settings).await);
    let w = replicas[0].processing_withdrawal("100.00").await;
    let confirmed = Arc::new(replicas[0].callback_for(&w, "confirmed"));
    let cancelled = Arc::new(replicas[0].callback_for(&w, "cancelled"));
    let statuses = concurrently(1000, |i| {
        let replicas = replicas.clone();
        let body = if i % 2 == 0 {
            confirmed.clone()
        } else {
            cancelled.clone()
        };
        async move { replicas[i % 3].post_callback(&body).await }
    })
    .await;
    assert!(statuses.iter().all(|s| *s == StatusCode::OK));
    let app = &replicas[2];
    let done = app.withdrawal(w["id"].as_str().unwrap()).await;
    let kinds = app.ledger_kinds(w["id"].as_str().unwrap()).await;
    let (available, held) = app.balance("u1", "EUR").await;
    match done["status"].as_str().unwrap() {
        "confirmed" => assert_eq!(
            (kinds, available.as_str()),
            (vec!["hold".to_string(), "debit".into()], "0.00")
        ),
        "cancelled" => assert_eq!(
            (kinds, available.as_str()),
            (vec!["hold".to_string(), "release".into()], "100.00")
        ),
        other => panic!("not terminal: {other}"),
    }
    assert_eq!(held, "0.00");
    let (applied, anomalies): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE outcome = 'applied'), count(*) FILTER (WHERE outcome = 'anomaly') FROM callbacks",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(applied, 1);
    assert_eq!(
        anomalies, 500,
        "every contradicting callback is recorded as an anomaly"
    );
    app.assert_invariants().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn workers_on_three_replicas_never_submit_one_withdrawal_twice_at_once() {
    let replicas = spawn_cluster(3, |s| {
        replica_settings(s);
        s.worker.enabled = true;
        s.worker.poll_interval_ms = 5;
        s.worker.backoff_base_ms = 1;
        s.worker.backoff_max_secs = 1;
    })
    .await;
    let app = &replicas[0];
    app.fund("u1", "EUR", "1000.00").await;
    // Every first attempt fails, so all retries go through the three racing workers; each
    // retry answer is slow, so an overlapping submission would be seen.
    let count = 30;
    for _ in 0..count {
        app.sim
            .push_behavior(SubmitBehavior::ServerError { status: 503 });
    }
    app.sim.set_default_behavior(SubmitBehavior::Slow {
        delay: Duration::from_millis(100),
        callbacks: vec![],
    });
    let mut ids = Vec::new();
    for i in 0..count {
        let r = replicas[i % 3]
            .withdraw(&format!("multi-{i}"), &eur_to_btc("u1", "10.00"))
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        ids.push(
            r.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    for _ in 0..300 {
        let open: i64 =
            sqlx::query_scalar("SELECT count(*) FROM withdrawals WHERE status = 'pending'")
                .fetch_one(&app.pool)
                .await
                .unwrap();
        if open == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for id in &ids {
        assert_eq!(app.withdrawal(id).await["status"], "processing");
    }
    assert_eq!(
        app.sim.max_concurrent_submissions(),
        1,
        "one withdrawal was submitted twice at once"
    );
    assert_eq!(app.sim.withdrawals().len(), count, "each created once");
    app.assert_invariants().await;
}
