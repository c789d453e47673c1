//! CoinsPaid callbacks: signatures, duplicates, ordering, and concurrency.

mod common;

use std::sync::Arc;

use common::*;
use reqwest::StatusCode;

async fn callback_outcomes(app: &TestApp) -> Vec<(String, bool)> {
    sqlx::query_as("SELECT outcome, verified FROM callbacks ORDER BY id")
        .fetch_all(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn bad_or_missing_signatures_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let w = app.processing_withdrawal("100.00").await;
    let body = callback_body(w["foreign_id"].as_str().unwrap(), "confirmed", 1);
    let good = app.signer.sign(&body);
    let mut tampered = body.clone();
    let at = tampered.len() - 5;
    tampered[at] ^= 1;
    let cases: [(&[u8], Option<&str>, Option<&str>); 6] = [
        (&body, None, None),
        (&body, Some(KEY), None),
        (&body, None, Some(&good)),
        (&body, Some("someone-else"), Some(&good)),
        (&body, Some(KEY), Some("00ff")),
        (&tampered, Some(KEY), Some(&good)),
    ];
    for (payload, key, signature) in cases {
        assert_eq!(
            app.post_callback_raw(payload, key, signature).await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        app.withdrawal(w["id"].as_str().unwrap()).await["status"],
        "processing"
    );
    assert_eq!(
        app.balance("u1", "EUR").await,
        ("0.00".into(), "100.00".into())
    );
    let outcomes = callback_outcomes(&app).await;
    assert_eq!(outcomes.len(), 6, "every attempt is recorded");
    assert!(outcomes.iter().all(|(o, v)| o == "rejected" && !v));
    // A forged flood cannot fill the disk: only the start of an unverified body is kept.
    let big = vec![b'x'; 60 * 1024];
    assert_eq!(
        app.post_callback_raw(&big, Some(KEY), Some("00")).await,
        StatusCode::UNAUTHORIZED
    );
    let stored: i32 =
        sqlx::query_scalar("SELECT max(length(raw_body)) FROM callbacks WHERE NOT verified")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(stored <= 2048, "{stored}");
    app.assert_invariants().await;
}

#[tokio::test]
async fn verified_garbage_is_400_and_foreign_callbacks_are_acknowledged() {
    let app = spawn_app().await;
    let w = app.processing_withdrawal("100.00").await;
    assert_eq!(
        app.post_callback(b"{not json").await,
        StatusCode::BAD_REQUEST
    );
    let deposit = br#"{"id":5,"type":"deposit","status":"confirmed","crypto_address":{"currency":"BTC","address":"x","foreign_id":"u1"},"currency_sent":{"currency":"BTC","amount":"1"},"currency_received":{"currency":"BTC","amount":"1"}}"#;
    assert_eq!(app.post_callback(deposit).await, StatusCode::OK);
    assert_eq!(
        app.post_callback(&callback_body("pd-unknown", "confirmed", 6))
            .await,
        StatusCode::OK
    );
    assert_eq!(
        app.withdrawal(w["id"].as_str().unwrap()).await["status"],
        "processing"
    );
    assert_eq!(
        app.balance("u1", "EUR").await,
        ("0.00".into(), "100.00".into())
    );
    let outcomes: Vec<String> = callback_outcomes(&app)
        .await
        .into_iter()
        .map(|(o, _)| o)
        .collect();
    assert_eq!(outcomes, ["invalid", "ignored", "ignored"]);
    app.assert_invariants().await;
}

#[tokio::test]
async fn out_of_order_callbacks_settle_once() {
    let app = spawn_app().await;
    let w = app.processing_withdrawal("100.00").await;
    let fid = w["foreign_id"].as_str().unwrap();
    for status in ["confirmed", "pending", "confirmed", "pending"] {
        assert_eq!(
            app.post_callback(&callback_body(fid, status, 3)).await,
            StatusCode::OK
        );
    }
    let done = app.withdrawal(w["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "confirmed");
    assert_eq!(done["provider_status"], "confirmed");
    assert_eq!(
        app.ledger_kinds(w["id"].as_str().unwrap()).await,
        ["hold", "debit"]
    );
    let outcomes: Vec<String> = callback_outcomes(&app)
        .await
        .into_iter()
        .map(|(o, _)| o)
        .collect();
    assert_eq!(outcomes, ["applied", "duplicate", "duplicate", "duplicate"]);
    // Cancelled after confirmed contradicts a terminal status: an anomaly, no money moves.
    assert_eq!(
        app.post_callback(&callback_body(fid, "cancelled", 3)).await,
        StatusCode::OK
    );
    let after = app.withdrawal(w["id"].as_str().unwrap()).await;
    assert_eq!(
        (after["status"].as_str(), after["provider_status"].as_str()),
        (Some("confirmed"), Some("cancelled"))
    );
    assert_eq!(callback_outcomes(&app).await.last().unwrap().0, "anomaly");
    assert_eq!(
        app.balance("u1", "EUR").await,
        ("0.00".into(), "0.00".into())
    );
    app.assert_invariants().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_concurrent_duplicate_confirmations_debit_once() {
    let app = Arc::new(spawn_app().await);
    let w = app.processing_withdrawal("100.00").await;
    let body = Arc::new(callback_body(
        w["foreign_id"].as_str().unwrap(),
        "confirmed",
        11,
    ));
    let statuses = concurrently(200, |_| {
        let (app, body) = (app.clone(), body.clone());
        async move { app.post_callback(&body).await }
    })
    .await;
    assert!(
        statuses.iter().all(|s| *s == StatusCode::OK),
        "{statuses:?}"
    );
    assert_eq!(
        app.ledger_kinds(w["id"].as_str().unwrap()).await,
        ["hold", "debit"]
    );
    assert_eq!(
        app.balance("u1", "EUR").await,
        ("0.00".into(), "0.00".into())
    );
    let outcomes = callback_outcomes(&app).await;
    assert_eq!(outcomes.iter().filter(|(o, _)| o == "applied").count(), 1);
    assert_eq!(
        outcomes.iter().filter(|(o, _)| o == "duplicate").count(),
        199
    );
    app.assert_invariants().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn confirmed_racing_cancelled_has_exactly_one_outcome() {
    let app = Arc::new(spawn_app().await);
    for round in 0..5 {
        let w = app.processing_withdrawal("10.00").await;
        let fid = w["foreign_id"].as_str().unwrap();
        let confirmed = Arc::new(callback_body(fid, "confirmed", round));
        let cancelled = Arc::new(callback_body(fid, "cancelled", round));
        let statuses = concurrently(100, |i| {
            let app = app.clone();
            let body = if i % 2 == 0 {
                confirmed.clone()
            } else {
                cancelled.clone()
            };
            async move { app.post_callback(&body).await }
        })
        .await;
        assert!(statuses.iter().all(|s| *s == StatusCode::OK));
        let done = app.withdrawal(w["id"].as_str().unwrap()).await;
        let kinds = app.ledger_kinds(w["id"].as_str().unwrap()).await;
        match done["status"].as_str().unwrap() {
            "confirmed" => assert_eq!(kinds, ["hold", "debit"]),
            "cancelled" => assert_eq!(kinds, ["hold", "release"]),
            other => panic!("unexpected status {other}"),
        }
        let applied: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM callbacks WHERE foreign_id = $1 AND outcome = 'applied'",
        )
        .bind(fid)
        .fetch_one(&app.pool)
        .await
        .unwrap();
        assert_eq!(applied, 1);
    }
    app.assert_invariants().await;
}
