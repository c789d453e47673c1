//! Withdrawals end to end through HTTP, against the CoinsPaid simulator on loopback.

use std::sync::Arc;
use std::time::Duration;

use crate::helpers::*;
use payoutd::simulator::SubmitBehavior;
use reqwest::StatusCode;
use serde_json::{json, Value};

#[tokio::test]
async fn happy_path_holds_then_debits_exactly() {
    let app = spawn_app().await;
    app.fund("u1", "EUR", "250.00").await;
    let w = app.withdraw_ok(&eur_to_btc("u1", "100.00")).await;
    assert_eq!(w["status"], "processing");
    assert_eq!(w["amount"], "100.00");
    assert_eq!(w["convert_to"], "BTC");
    assert!(w["provider_id"].is_i64());
    assert!(w["foreign_id"].as_str().unwrap().starts_with("pd-"));
    assert_eq!(
        app.balance("u1", "EUR").await,
        ("150.00".into(), "100.00".into())
    );

    // The provider received exactly our fields, signed.
    let subs = app.sim.submissions();
    assert_eq!(subs.len(), 1);
    assert!(subs[0].signature_valid);
    let sent = subs[0].request.as_ref().unwrap();
    assert_eq!(sent.foreign_id, w["foreign_id"].as_str().unwrap());
    assert_eq!(
        (sent.amount.as_str(), sent.currency.as_str()),
        ("100.00", "EUR")
    );
    assert_eq!(sent.convert_to.as_deref(), Some("BTC"));
    assert_eq!(sent.end_user_reference.as_deref(), Some("u1"));

    let status = app
        .sim
        .send_callback(w["foreign_id"].as_str().unwrap(), "confirmed")
        .await
        .unwrap();
    assert_eq!(status, 200);
    let done = app.withdrawal(&id_of(&w)).await;
    assert_eq!(done["status"], "confirmed");
    assert_eq!(done["provider_status"], "confirmed");
    assert_eq!(done["received"]["currency"], "BTC");
    assert!(!done["txids"].as_array().unwrap().is_empty());
    assert_eq!(
        app.balance("u1", "EUR").await,
        ("150.00".into(), "0.00".into())
    );
    assert_eq!(app.ledger_kinds(&id_of(&w)).await, ["hold", "debit"]);
    let (_, ledger) = app.get_json("/v1/users/u1/ledger").await;
    let kinds: Vec<&str> = ledger["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["debit", "hold", "credit"]);
    app.assert_invariants().await;
}

#[tokio::test]
async fn cancelled_and_declined_release_the_hold() {
    let app = spawn_app().await;
    app.fund("u1", "EUR", "100.00").await;
    for word in ["cancelled", "declined"] {
        let w = app.withdraw_ok(&eur_to_btc("u1", "40.00")).await;
        let fid = w["foreign_id"].as_str().unwrap();
        assert_eq!(app.sim.send_callback(fid, "pending").await.unwrap(), 200);
        assert_eq!(app.withdrawal(&id_of(&w)).await["status"], "processing");
        assert_eq!(app.sim.send_callback(fid, word).await.unwrap(), 200);
        let done = app.withdrawal(&id_of(&w)).await;
        assert_eq!(done["status"], "cancelled");
        assert_eq!(done["provider_status"], word);
        assert_eq!(app.ledger_kinds(&id_of(&w)).await, ["hold", "release"]);
    }
    assert_eq!(
        app.balance("u1", "EUR").await,
        ("100.00".into(), "0.00".into())
    );
    app.assert_invariants().await;
}

#[tokio::test]
async fn insufficient_funds_is_refused_without_a_trace() {
    let app = spawn_app().await;
    app.fund("u1", "EUR", "50.00").await;
    let r = app.withdraw("k1", &eur_to_btc("u1", "50.01")).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "insufficient_funds");
    // A refusal stores nothing, so the same key can be used once funds arrive.
    app.fund("u1", "EUR", "0.01").await;
    assert_eq!(
        app.withdraw("k1", &eur_to_btc("u1", "50.01"))
            .await
            .status(),
        StatusCode::CREATED
    );
    assert_eq!(
        app.balance("u1", "EUR").await,
        ("0.00".into(), "50.01".into())
    );
    app.assert_invariants().await;
}

#[tokio::test]
async fn same_key_same_body_replays_and_different_body_conflicts() {
    let app = spawn_app().await;
    app.fund("u1", "EUR", "100.00").await;
    let first = app.withdraw("key-1", &eur_to_btc("u1", "10.00")).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    let again = app.withdraw("key-1", &eur_to_btc("u1", "10.00")).await;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["id"], first["id"]);
    assert_eq!(again["foreign_id"], first["foreign_id"]);
    let other = app.withdraw("key-1", &eur_to_btc("u1", "11.00")).await;
    assert_eq!(other.status(), StatusCode::CONFLICT);
    let other: Value = other.json().await.unwrap();
    assert_eq!(other["code"], "idempotency_key_reused");
    assert_eq!(
        app.balance("u1", "EUR").await,
        ("90.00".into(), "10.00".into())
    );
    assert_eq!(app.sim.submissions().len(), 1, "a replay sends nothing");
    app.assert_invariants().await;
}

fn with_reference(mut body: Value, reference: &str) -> Value {
    body["reference"] = json!(reference);
    body
}

#[tokio::test]
async fn a_reference_replays_under_any_key_and_forever_and_conflicts_on_another_body() {
    let app = spawn_app().await;
    app.fund("u1", "EUR", "100.00").await;
    let body = with_reference(eur_to_btc("u1", "10.00"), "payout-000123");
    let first = app.withdraw("key-1", &body).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["reference"], "payout-000123");
    // The website retries late: its Idempotency-Key is long gone (retention deleted it).
    sqlx::query("DELETE FROM idempotency_keys")
        .execute(&app.pool)
        .await
        .unwrap();
    for key in ["key-1", "key-2"] {
        let again = app.withdraw(key, &body).await;
        assert_eq!(again.status(), StatusCode::OK, "{key}");
        assert_eq!(again.headers()["idempotent-replayed"], "true");
        let again: Value = again.json().await.unwrap();
        assert_eq!(
            (&again["id"], &again["reference"]),
            (&first["id"], &first["reference"])
        );
    }
    let other = app
        .withdraw(
            "key-3",
            &with_reference(eur_to_btc("u1", "11.00"), "payout-000123"),
        )
        .await;
    assert_eq!(other.status(), StatusCode::CONFLICT);
    let other: Value = other.json().await.unwrap();
    assert_eq!(other["code"], "reference_conflict");
    // A refused request keeps nothing: its reference is free for the next attempt.
    let poor = with_reference(eur_to_btc("u1", "95.00"), "payout-000124");
    let refused = app.withdraw("key-4", &poor).await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    app.fund("u1", "EUR", "10.00").await;
    assert_eq!(
        app.withdraw("key-5", &poor).await.status(),
        StatusCode::CREATED
    );
    let refs: i64 = sqlx::query_scalar("SELECT count(*) FROM withdrawal_references")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(refs, 2);
    assert_eq!(
        app.balance("u1", "EUR").await,
        ("5.00".into(), "105.00".into())
    );
    let bad = app
        .withdraw(
            "key-6",
            &with_reference(eur_to_btc("u1", "1.00"), "no spaces"),
        )
        .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    app.assert_invariants().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_with_one_reference_and_different_keys_create_one_withdrawal() {
    let app = Arc::new(spawn_app_with(one_batch_runner).await);
    app.fund("u1", "EUR", "100.00").await;
    let results = concurrently(20, |i| {
        let app = app.clone();
        async move {
            let body = with_reference(eur_to_btc("u1", "10.00"), "payout-1");
            let r = app.withdraw(&format!("key-{i}"), &body).await;
            let status = r.status();
            let body: Value = r.json().await.unwrap();
            (status, body["id"].as_str().unwrap_or_default().to_owned())
        }
    })
    .await;
    let created = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .count();
    assert_eq!(created, 1, "{results:?}");
    assert!(
        results.iter().all(
            |(s, id)| (*s == StatusCode::CREATED || *s == StatusCode::OK) && *id == results[0].1
        ),
        "{results:?}"
    );
    assert_eq!(
        app.balance("u1", "EUR").await,
        ("90.00".into(), "10.00".into())
    );
    app.assert_invariants().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_replays_of_one_key_create_one_withdrawal() {
    let app = Arc::new(spawn_app().await);
    app.fund("u1", "EUR", "100.00").await;
    let results = concurrently(20, |_| {
        let app = app.clone();
        async move {
            let r = app.withdraw("one-key", &eur_to_btc("u1", "10.00")).await;
            let status = r.status();
            let body: Value = r.json().await.unwrap();
            (status, body["id"].as_str().unwrap().to_owned())
        }
    })
    .await;
    assert_eq!(
        results
            .iter()
            .filter(|(s, _)| *s == StatusCode::CREATED)
            .count(),
        1
    );
    assert!(results
        .iter()
        .all(|(s, id)| (*s == StatusCode::CREATED || *s == StatusCode::OK) && *id == results[0].1));
    assert_eq!(
        app.balance("u1", "EUR").await,
        ("90.00".into(), "10.00".into())
    );
    app.assert_invariants().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_withdrawals_against_ten_covered_accept_exactly_ten() {
    let app = Arc::new(spawn_app().await);
    app.fund("u1", "EUR", "100.00").await;
    let statuses = concurrently(50, |i| {
        let app = app.clone();
        async move {
            app.withdraw(&format!("race-{i}"), &eur_to_btc("u1", "10.00"))
                .await
                .status()
        }
    })
    .await;
    let accepted = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNPROCESSABLE_ENTITY)
        .count();
    assert_eq!((accepted, refused), (10, 40), "{statuses:?}");
    assert_eq!(
        app.balance("u1", "EUR").await,
        ("0.00".into(), "100.00".into())
    );
    assert_eq!(app.sim.withdrawals().len(), 10);
    app.assert_invariants().await;
}

#[tokio::test]
async fn definitive_refusal_rejects_and_releases() {
    let app = spawn_app().await;
    app.fund("u1", "EUR", "100.00").await;
    app.sim.push_behavior(SubmitBehavior::Refuse {
        status: 400,
        field: Some("address".into()),
        message: "Invalid address".into(),
    });
    let w = app.withdraw_ok(&eur_to_btc("u1", "30.00")).await;
    assert_eq!(w["status"], "rejected");
    assert!(w["error"].as_str().unwrap().contains("Invalid address"));
    assert_eq!(
        app.balance("u1", "EUR").await,
        ("100.00".into(), "0.00".into())
    );
    assert_eq!(app.ledger_kinds(&id_of(&w)).await, ["hold", "release"]);
    // A rejected withdrawal is terminal: a late callback cannot debit it.
    assert_eq!(
        app.post_callback(&app.callback_for(&w, "confirmed")).await,
        StatusCode::OK
    );
    let after = app.withdrawal(&id_of(&w)).await;
    assert_eq!(after["status"], "rejected");
    assert_eq!(
        after["provider_status"], "confirmed",
        "the anomaly is visible on the withdrawal"
    );
    assert_eq!(
        app.balance("u1", "EUR").await,
        ("100.00".into(), "0.00".into())
    );
    assert_eq!(app.drain().await, 0, "nothing left to submit");
    app.assert_invariants().await;
}

#[tokio::test]
async fn provider_500_then_success_resends_the_same_foreign_id_with_one_hold() {
    let app = spawn_app().await;
    app.fund("u1", "EUR", "100.00").await;
    app.sim
        .push_behavior(SubmitBehavior::ServerError { status: 500 });
    let w = app.withdraw_ok(&eur_to_btc("u1", "25.00")).await;
    assert_eq!(w["status"], "pending");
    assert_eq!(
        app.balance("u1", "EUR").await,
        ("75.00".into(), "25.00".into())
    );
    // Looked up first (no record), then sent again once the quiet period has passed.
    app.drain_waiting(Duration::from_secs(10)).await;
    let after = app.withdrawal(&id_of(&w)).await;
    assert_eq!(after["status"], "processing");
    let subs = app.sim.submissions();
    assert_eq!(subs.len(), 2);
    assert!(subs
        .iter()
        .all(|s| s.foreign_id.as_deref() == w["foreign_id"].as_str()));
    assert_eq!(
        (subs[0].answered_status, subs[1].answered_status),
        (500, 201)
    );
    assert_eq!(app.ledger_kinds(&id_of(&w)).await, ["hold"]);
    app.assert_invariants().await;
}

#[tokio::test]
async fn provider_timeout_keeps_it_pending_and_the_retry_finds_it_created() {
    let app = spawn_app_with(|s| s.coinspaid.timeout_secs = 1).await;
    app.fund("u1", "EUR", "100.00").await;
    // CoinsPaid creates the withdrawal but answers too late: the outcome is unknown to us.
    app.sim.push_behavior(SubmitBehavior::Slow {
        delay: Duration::from_secs(3),
        callbacks: vec![],
    });
    let w = app.withdraw_ok(&eur_to_btc("u1", "20.00")).await;
    assert_eq!(w["status"], "pending");
    assert!(app.drain().await >= 1);
    let after = app.withdrawal(&id_of(&w)).await;
    assert_eq!(after["status"], "processing", "{after}");
    assert!(after["provider_id"].is_i64());
    assert_eq!(app.sim.withdrawals().len(), 1, "created once at CoinsPaid");
    // Found by the look-up that comes before any resend: never sent again.
    let subs = app.sim.submissions();
    assert_eq!(subs.len(), 1);
    assert!(subs
        .iter()
        .all(|s| s.foreign_id.as_deref() == w["foreign_id"].as_str()));
    assert_eq!(app.ledger_kinds(&id_of(&w)).await, ["hold"]);
    app.assert_invariants().await;
}

#[tokio::test]
async fn provider_down_keeps_the_hold_and_parks_after_the_last_attempt() {
    let app = spawn_app_with(|s| {
        s.coinspaid.api_url = Some("http://127.0.0.1:9".parse().unwrap());
        s.worker.max_attempts = 3;
    })
    .await;
    app.fund("u1", "EUR", "100.00").await;
    let w = app.withdraw_ok(&eur_to_btc("u1", "20.00")).await;
    assert_eq!(w["status"], "pending");
    app.drain().await;
    let (attempts, parked): (i32, bool) = sqlx::query_as(
        "SELECT attempts, parked FROM submission_jobs WHERE withdrawal_id = $1::uuid",
    )
    .bind(id_of(&w))
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!((attempts, parked), (3, true));
    assert_eq!(app.withdrawal(&id_of(&w)).await["status"], "pending");
    assert_eq!(
        app.balance("u1", "EUR").await,
        ("80.00".into(), "20.00".into()),
        "unknown outcome never releases"
    );
    app.assert_invariants().await;
}

#[tokio::test]
async fn callback_before_the_submit_answer_is_recorded() {
    let app = spawn_app().await;
    app.fund("u1", "EUR", "100.00").await;
    app.sim.push_behavior(SubmitBehavior::AcceptCallbackFirst {
        callbacks: vec!["confirmed".into()],
    });
    let w = app.withdraw_ok(&eur_to_btc("u1", "60.00")).await;
    assert_eq!(w["status"], "confirmed");
    assert!(w["provider_id"].is_i64());
    assert_eq!(
        app.balance("u1", "EUR").await,
        ("40.00".into(), "0.00".into())
    );
    assert_eq!(app.ledger_kinds(&id_of(&w)).await, ["hold", "debit"]);
    assert_eq!(app.drain().await, 0);
    app.assert_invariants().await;
}

#[tokio::test]
async fn crypto_withdrawal_without_conversion_and_xrp_with_tag() {
    let app = spawn_app().await;
    app.fund("u1", "BTC", "0.01000000").await;
    app.fund("u1", "XRP", "100").await;
    let body =
        serde_json::json!({"user_id":"u1","amount":"0.005","currency":"BTC","address":BTC_ADDRESS});
    let w = app.withdraw_ok(&body).await;
    assert_eq!(w["status"], "processing");
    assert_eq!(w["convert_to"], Value::Null);
    assert_eq!(w["amount"], "0.00500000");
    let xrp = serde_json::json!({"user_id":"u1","amount":"10","currency":"XRP","address":"rHb9CJAWyB4rj91VRWn96DkukG4bwdtyTh","tag":"12345"});
    let w = app.withdraw_ok(&xrp).await;
    assert_eq!(w["tag"], "12345");
    let sent = app
        .sim
        .submissions()
        .last()
        .unwrap()
        .request
        .clone()
        .unwrap();
    assert_eq!(sent.tag.as_deref(), Some("12345"));
    assert_eq!(sent.convert_to, None);
    app.assert_invariants().await;
}

#[tokio::test]
async fn listing_filters_by_user_and_status_newest_first() {
    let app = spawn_app().await;
    app.fund("u1", "EUR", "100.00").await;
    app.fund("u2", "EUR", "100.00").await;
    let a = app.withdraw_ok(&eur_to_btc("u1", "10.00")).await;
    let b = app.withdraw_ok(&eur_to_btc("u1", "11.00")).await;
    let _c = app.withdraw_ok(&eur_to_btc("u2", "12.00")).await;
    app.sim
        .send_callback(a["foreign_id"].as_str().unwrap(), "confirmed")
        .await
        .unwrap();
    let (_, page) = app.get_json("/v1/withdrawals?user_id=u1&limit=1").await;
    assert_eq!(page["data"][0]["id"], b["id"]);
    let cursor = page["next_cursor"].as_str().unwrap();
    let (_, page2) = app
        .get_json(&format!(
            "/v1/withdrawals?user_id=u1&limit=1&cursor={cursor}"
        ))
        .await;
    assert_eq!(page2["data"][0]["id"], a["id"]);
    let (_, confirmed) = app.get_json("/v1/withdrawals?status=confirmed").await;
    assert_eq!(confirmed["data"].as_array().unwrap().len(), 1);
    let (_, all) = app.get_json("/v1/withdrawals").await;
    assert_eq!(all["data"].as_array().unwrap().len(), 3);
    let (status, _) = app.get_json("/v1/withdrawals?status=done").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    app.assert_invariants().await;
}

#[tokio::test]
async fn metrics_expose_the_contract_series_and_they_move() {
    let app = spawn_app().await;
    app.fund("u1", "EUR", "100.00").await;
    let w = app.withdraw_ok(&eur_to_btc("u1", "10.00")).await;
    let _pending = app.withdraw_ok(&eur_to_btc("u1", "10.00")).await;
    app.post_callback(&app.callback_for(&w, "confirmed")).await;
    app.post_callback(&app.callback_for(&w, "confirmed")).await;
    app.post_callback_raw(b"{}", Some(KEY), Some("00")).await;
    let text = app.metrics_text().await;
    for series in [
        "payoutd_http_requests_total{method=\"POST\",route=\"/v1/withdrawals\",status=\"201\"}",
        "payoutd_http_request_duration_seconds_bucket{method=\"POST\",route=\"/v1/withdrawals\"",
        "payoutd_withdrawals{status=\"processing\"} ",
        "payoutd_callbacks_total{outcome=\"applied\"}",
        "payoutd_callbacks_total{outcome=\"duplicate\"}",
        "payoutd_callbacks_total{outcome=\"rejected\"}",
        "payoutd_provider_calls_total{endpoint=\"/v2/withdrawal/crypto\",outcome=\"2xx\"}",
        "payoutd_provider_call_duration_seconds_bucket{endpoint=\"/v2/withdrawal/crypto\"",
        "payoutd_oldest_pending_withdrawal_age_seconds ",
        "# HELP payoutd_callbacks_total",
    ] {
        assert!(text.contains(series), "missing {series} in\n{text}");
    }
    // The metrics recorder is process-wide; this test owns only its own database's gauges.
    let processing_line = text
        .lines()
        .find(|l| l.starts_with("payoutd_withdrawals{status=\"processing\"}"))
        .unwrap();
    assert!(processing_line.ends_with(" 1"), "{processing_line}");
}

#[tokio::test]
async fn the_background_worker_retries_on_its_own() {
    let app = spawn_app_with(|s| {
        s.worker.enabled = true;
        s.worker.poll_interval_ms = 20;
    })
    .await;
    app.fund("u1", "EUR", "100.00").await;
    app.sim
        .push_behavior(SubmitBehavior::ServerError { status: 503 });
    app.sim
        .push_behavior(SubmitBehavior::ServerError { status: 502 });
    let w = app.withdraw_ok(&eur_to_btc("u1", "10.00")).await;
    assert_eq!(w["status"], "pending");
    let mut status = Value::Null;
    for _ in 0..100 {
        status = app.withdrawal(&id_of(&w)).await["status"].clone();
        if status == "processing" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, "processing");
    assert_eq!(app.sim.submissions().len(), 3);
    app.assert_invariants().await;
}
