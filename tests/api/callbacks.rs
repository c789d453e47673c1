//! CoinsPaid callbacks: signatures, duplicates, ordering, and concurrency.

use std::sync::Arc;

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

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
    let body = app.callback_for(&w, "confirmed");
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
    // A forged flood cannot fill the disk: unverified callbacks are counted, never stored.
    let big = vec![b'x'; 60 * 1024];
    for _ in 0..20 {
        assert_eq!(
            app.post_callback_raw(&big, Some(KEY), Some("00")).await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert!(
        callback_outcomes(&app).await.is_empty(),
        "nothing unverified is stored"
    );
    let rejected = app
        .metrics_text()
        .await
        .lines()
        .find_map(|l| l.strip_prefix("payoutd_callbacks_total{outcome=\"rejected\"} "))
        .map(|v| v.parse::<f64>().unwrap())
        .unwrap();
    assert!(rejected >= 26.0, "every refusal is counted: {rejected}");
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
    for status in ["confirmed", "pending", "confirmed", "pending"] {
        assert_eq!(
            app.post_callback(&app.callback_for(&w, status)).await,
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
        app.post_callback(&app.callback_for(&w, "cancelled")).await,
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
    let body = Arc::new(app.callback_for(&w, "confirmed"));
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
    for _ in 0..5 {
        let w = app.processing_withdrawal("10.00").await;
        let fid = w["foreign_id"].as_str().unwrap();
        let confirmed = Arc::new(app.callback_for(&w, "confirmed"));
        let cancelled = Arc::new(app.callback_for(&w, "cancelled"));
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

#[tokio::test]
async fn a_callback_that_does_not_match_its_withdrawal_moves_nothing() {
    let app = spawn_app().await;
    let w = app.processing_withdrawal("100.00").await;
    let good: Value = serde_json::from_slice(&app.callback_for(&w, "confirmed")).unwrap();
    let mut variants = Vec::new();
    // A confirmed saying 1 USD went out, to another address, for another CoinsPaid id, of
    // another type, or with an amount nobody can read.
    let mut sent_usd = good.clone();
    sent_usd["currency_sent"] = json!({"currency": "USD", "amount": "1"});
    variants.push(("currency_sent is in USD", sent_usd));
    let mut less = good.clone();
    less["currency_sent"]["amount"] = json!("1.00");
    variants.push(("currency_sent amount 1.00", less));
    let mut elsewhere = good.clone();
    elsewhere["crypto_address"]["address"] = json!("bc1qxy2kgdygjrsqtzq2n0yrf2493p83kkfjhx0wlh");
    variants.push(("crypto_address.address", elsewhere));
    let mut other_id = good.clone();
    other_id["id"] = json!(w["provider_id"].as_i64().unwrap() + 1);
    variants.push(("CoinsPaid id", other_id));
    let mut plain = good.clone();
    plain["type"] = json!("withdrawal");
    variants.push(("type withdrawal", plain));
    let mut unreadable = good.clone();
    unreadable["currency_sent"]["amount"] = json!({"value": 100});
    variants.push(("currency_sent.amount could not be read", unreadable));
    for (why, body) in &variants {
        let bytes = serde_json::to_vec(body).unwrap();
        assert_eq!(app.post_callback(&bytes).await, StatusCode::OK, "{why}");
        let after = app.withdrawal(w["id"].as_str().unwrap()).await;
        assert_eq!(after["status"], "processing", "{why}");
        assert!(
            after["anomaly"].as_str().unwrap().contains(why),
            "{why}: {}",
            after["anomaly"]
        );
        assert_eq!(callback_outcomes(&app).await.last().unwrap().0, "anomaly");
    }
    assert_eq!(app.ledger_kinds(w["id"].as_str().unwrap()).await, ["hold"]);
    assert_eq!(
        app.balance("u1", "EUR").await,
        ("0.00".into(), "100.00".into())
    );
    assert!(app
        .metrics_text()
        .await
        .contains("payoutd_withdrawal_anomalies_total{kind=\"mismatch\"}"));
    // The matching report still settles it, once.
    assert_eq!(
        app.post_callback(&app.callback_for(&w, "confirmed")).await,
        StatusCode::OK
    );
    assert_eq!(
        app.ledger_kinds(w["id"].as_str().unwrap()).await,
        ["hold", "debit"]
    );
    app.assert_invariants().await;
}

#[tokio::test]
async fn an_amount_a_float_would_round_into_a_match_is_an_anomaly() {
    let app = spawn_app().await;
    let w = app.processing_withdrawal("10.00").await;
    let id = w["id"].as_str().unwrap();
    // `currency_sent.amount` as the bare JSON number 9.9999999999999999, which an f64 reads
    // as 10: written into the signed bytes by hand, as no serializer of ours would write it.
    let body = String::from_utf8(app.callback_for(&w, "confirmed")).unwrap();
    let sent = r#""currency_sent":{"amount":"10.00","currency":"EUR"}"#;
    assert!(body.contains(sent), "{body}");
    let body = body.replace(
        sent,
        r#""currency_sent":{"amount":9.9999999999999999,"currency":"EUR"}"#,
    );
    assert_eq!(app.post_callback(body.as_bytes()).await, StatusCode::OK);
    let after = app.withdrawal(id).await;
    assert_eq!(after["status"], "processing");
    assert!(
        after["anomaly"]
            .as_str()
            .unwrap()
            .contains("currency_sent amount 9.9999999999999999"),
        "{}",
        after["anomaly"]
    );
    assert_eq!(callback_outcomes(&app).await.last().unwrap().0, "anomaly");
    assert_eq!(app.ledger_kinds(id).await, ["hold"]);
    assert_eq!(
        app.balance("u1", "EUR").await,
        ("0.00".into(), "10.00".into())
    );
    // The same amount as the JSON number 10.00 is the payout's: it settles.
    let exact = body.replace("9.9999999999999999", "10.00");
    assert_eq!(app.post_callback(exact.as_bytes()).await, StatusCode::OK);
    assert_eq!(app.ledger_kinds(id).await, ["hold", "debit"]);
    app.assert_invariants().await;
}

#[tokio::test]
async fn undocumented_statuses_and_unreadable_callbacks_are_kept_flagged_and_move_nothing() {
    let app = spawn_app().await;
    let w = app.processing_withdrawal("100.00").await;
    let id = w["id"].as_str().unwrap();
    // The dashboard's "Failed" and "Rejected" are not API words: recorded, never settled.
    for word in ["failed", "rejected", "canceled"] {
        assert_eq!(
            app.post_callback(&app.callback_for(&w, word)).await,
            StatusCode::OK
        );
        let after = app.withdrawal(id).await;
        assert_eq!(
            (after["status"].as_str(), after["provider_status"].as_str()),
            (Some("processing"), Some(word))
        );
        assert!(after["anomaly"]
            .as_str()
            .unwrap()
            .contains("undocumented status"));
        assert_eq!(
            callback_outcomes(&app).await.last().unwrap().0,
            "unrecognized"
        );
    }
    // Valid JSON without a readable status: stored, answered 200 (a retry would not read
    // better), the withdrawal flagged.
    let mut no_status: Value = serde_json::from_slice(&app.callback_for(&w, "confirmed")).unwrap();
    no_status["status"] = json!(["confirmed"]);
    assert_eq!(
        app.post_callback(&serde_json::to_vec(&no_status).unwrap())
            .await,
        StatusCode::OK
    );
    assert!(app.withdrawal(id).await["anomaly"]
        .as_str()
        .unwrap()
        .contains("could not be read"));
    let stored: (String, Option<String>) =
        sqlx::query_as("SELECT outcome, foreign_id FROM callbacks ORDER BY id DESC LIMIT 1")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(
        stored,
        (
            "unreadable".into(),
            w["foreign_id"].as_str().map(str::to_owned)
        )
    );
    assert_eq!(app.ledger_kinds(id).await, ["hold"]);
    // Flagged withdrawals are looked up in the reconciler's next round.
    let due: bool =
        sqlx::query_scalar("SELECT reconcile_after <= now() FROM withdrawals WHERE id = $1::uuid")
            .bind(id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(due);
    app.assert_invariants().await;
}
