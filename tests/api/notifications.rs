//! Website notifications: one per status change, written with the change, signed, retried
//! until delivered.

use std::path::Path;

use crate::helpers::webhooks::{
    python_verify, run_python, standardwebhooks_python, start_receiver, NOTIFY_SECRET,
};
use crate::helpers::*;
use axum::http::{HeaderMap, StatusCode};
use payoutd::coinspaid::signing::SecretString;
use payoutd::simulator::SubmitBehavior;
use payoutd::standard_webhooks::WebhookSecret;
use serde_json::Value;

/// The secret a rotation replaces, and one the website never had.
const OLD_SECRET: &str = "whsec_JZQAdhOtDf+vLD1Hf/ZeOdRpWMp3h+QVJ7AT3mrtono=";
const UNKNOWN_SECRET: &str = "whsec_hwCTX2nIKw8CU9xLYk6AknJ1fR97diYl3v20nVUwYSw=";

/// The README's Python receiver, run verbatim: its `receive(raw_body, headers)` answer (204
/// or 401) for each (headers, body), with the website holding `secret`.
async fn readme_receive(python: &Path, secret: &str, cases: &[(&HeaderMap, &[u8])]) -> Vec<u16> {
    use base64::Engine;
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = &readme[readme.find("## Notifications to your website").unwrap()..];
    let start = section.find("```python\n").unwrap() + "```python\n".len();
    let example = &section[start..start + section[start..].find("```").unwrap()];
    let script = format!(
        "{example}\nimport base64, json, sys\nprint(json.dumps([receive(base64.b64decode(c['body']), c['headers']) for c in json.load(sys.stdin)]))\n"
    );
    let input: Vec<Value> = cases
        .iter()
        .map(|(headers, body)| {
            let headers: serde_json::Map<String, Value> = headers
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_str().unwrap().into()))
                .collect();
            serde_json::json!({
                "headers": headers,
                "body": base64::engine::general_purpose::STANDARD.encode(body),
            })
        })
        .collect();
    run_python(
        python,
        &script,
        &[("PAYOUTD_WEBHOOK_SECRET", secret)],
        &input,
        "the README's example",
    )
    .await
}

#[tokio::test]
async fn every_status_change_is_notified_signed_and_retried_until_delivered() {
    let Some(python) = standardwebhooks_python() else {
        return;
    };
    let (url, receiver) = start_receiver().await;
    let app = spawn_app_with(|s| {
        s.notify.url = Some(url.parse().unwrap());
        s.notify.secret = SecretString::new(NOTIFY_SECRET);
        s.notify.backoff_max_secs = 1;
    })
    .await;
    app.fund("u1", "EUR", "100.00").await;
    let w = app.withdraw_ok(&eur_to_btc("u1", "10.00")).await;
    app.sim.push_behavior(SubmitBehavior::Refuse {
        status: 400,
        field: Some("address".into()),
        message: "Invalid address".into(),
    });
    let rejected = app.withdraw_ok(&eur_to_btc("u1", "5.00")).await;
    assert_eq!(
        app.post_callback(&app.callback_for(&w, "confirmed")).await,
        200
    );
    // A duplicate changes nothing and so notifies nothing.
    assert_eq!(
        app.post_callback(&app.callback_for(&w, "confirmed")).await,
        200
    );

    // The website is down for the first delivery.
    receiver
        .answers
        .lock()
        .unwrap()
        .push_back(StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(app.notifier.deliver_once().await.unwrap(), 2);
    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    assert_eq!(
        app.notifier.deliver_once().await.unwrap(),
        1,
        "the failed one is retried"
    );
    assert_eq!(
        app.notifier.deliver_once().await.unwrap(),
        0,
        "delivered ones are not sent again"
    );

    let received = receiver.received.lock().unwrap().clone();
    assert_eq!(received.len(), 4, "three events, one of them twice");
    let cases: Vec<(&str, &HeaderMap, &[u8])> = received
        .iter()
        .map(|(h, b)| (NOTIFY_SECRET, h, &b[..]))
        .collect();
    assert_eq!(
        python_verify(&python, &cases).await,
        vec!["ok"; received.len()],
        "every notification verifies with the standardwebhooks package"
    );
    // The README's receiver accepts them all, and refuses a tampered body.
    let (first_headers, first_body) = &received[0];
    let mut tampered = first_body.to_vec();
    tampered.extend_from_slice(b" ");
    let mut cases: Vec<(&HeaderMap, &[u8])> = received.iter().map(|(h, b)| (h, &b[..])).collect();
    cases.push((first_headers, &tampered));
    let mut want = vec![204; received.len()];
    want.push(401);
    assert_eq!(readme_receive(&python, NOTIFY_SECRET, &cases).await, want);

    let events: Vec<Value> = received
        .iter()
        .map(|(headers, body)| {
            let event: Value = serde_json::from_slice(body).unwrap();
            // webhook-id is the event's id, the same on a retry: the receiver's duplicate key.
            assert_eq!(headers["webhook-id"], event["id"].as_str().unwrap());
            let signatures = headers["webhook-signature"].to_str().unwrap();
            assert!(signatures.starts_with("v1,") && !signatures.contains(' '));
            event
        })
        .collect();
    let mut distinct: Vec<(String, String, String)> = events
        .iter()
        .map(|e| {
            let d = &e["data"];
            (
                d["withdrawal_id"].as_str().unwrap().to_owned(),
                d["previous_status"].as_str().unwrap().to_owned(),
                d["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    distinct.sort();
    distinct.dedup();
    let id = |v: &Value| v["id"].as_str().unwrap().to_owned();
    let mut want = vec![
        (id(&w), "pending".to_string(), "processing".to_string()),
        (id(&w), "processing".into(), "confirmed".into()),
        (id(&rejected), "pending".into(), "rejected".into()),
    ];
    want.sort();
    assert_eq!(distinct, want);
    assert!(events
        .iter()
        .all(|e| e["type"] == "withdrawal.status_changed"));
    let undelivered: i64 =
        sqlx::query_scalar("SELECT count(*) FROM notification_outbox WHERE delivered_at IS NULL")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(undelivered, 0);
}

#[tokio::test]
async fn a_tampered_or_foreign_notification_fails_verification() {
    let Some(python) = standardwebhooks_python() else {
        return;
    };
    let secret = WebhookSecret::parse(NOTIFY_SECRET).unwrap();
    let body =
        br#"{"id":"01890000-0000-7000-8000-000000000000","type":"withdrawal.status_changed"}"#;
    let now = chrono::Utc::now().timestamp();
    let headers = |id: &str, timestamp: i64, signature: String| {
        let mut h = HeaderMap::new();
        h.insert("webhook-id", id.parse().unwrap());
        h.insert("webhook-timestamp", timestamp.into());
        h.insert("webhook-signature", signature.parse().unwrap());
        h
    };
    let id = "01890000-0000-7000-8000-000000000000";
    let good = headers(id, now, secret.sign(id, now, body));
    let other_id = headers(
        "01890000-0000-7000-8000-000000000001",
        now,
        secret.sign(id, now, body),
    );
    let other_time = headers(id, now - 1, secret.sign(id, now, body));
    let stale = headers(id, now - 600, secret.sign(id, now - 600, body));
    let results = python_verify(
        &python,
        &[
            (NOTIFY_SECRET, &good, body),
            (UNKNOWN_SECRET, &good, body),
            (NOTIFY_SECRET, &good, b"{}"),
            (NOTIFY_SECRET, &other_id, body),
            (NOTIFY_SECRET, &other_time, body),
            (NOTIFY_SECRET, &stale, body),
        ],
    )
    .await;
    assert_eq!(results[0], "ok");
    for (i, refused) in results.iter().enumerate().skip(1) {
        assert!(
            refused.starts_with("WebhookVerificationError"),
            "case {i} must be refused: {refused}"
        );
    }
}

#[tokio::test]
async fn during_a_rotation_either_receiver_secret_verifies_every_notification() {
    let Some(python) = standardwebhooks_python() else {
        return;
    };
    let (url, receiver) = start_receiver().await;
    let app = spawn_app_with(|s| {
        s.notify.url = Some(url.parse().unwrap());
        // Current first, then the one being replaced.
        s.notify.secret = SecretString::new(format!("{NOTIFY_SECRET},{OLD_SECRET}"));
    })
    .await;
    app.fund("u1", "EUR", "100.00").await;
    let w = app.withdraw_ok(&eur_to_btc("u1", "10.00")).await;
    assert_eq!(
        app.post_callback(&app.callback_for(&w, "confirmed")).await,
        200
    );
    assert_eq!(app.notifier.deliver_once().await.unwrap(), 2);

    let received = receiver.received.lock().unwrap().clone();
    assert_eq!(received.len(), 2);
    for (headers, _) in &received {
        let signatures: Vec<&str> = headers["webhook-signature"]
            .to_str()
            .unwrap()
            .split(' ')
            .collect();
        assert_eq!(signatures.len(), 2, "one signature per secret");
        assert!(signatures.iter().all(|s| s.starts_with("v1,")));
    }
    let mut cases: Vec<(&str, &HeaderMap, &[u8])> = Vec::new();
    for (headers, body) in &received {
        for secret in [NOTIFY_SECRET, OLD_SECRET, UNKNOWN_SECRET] {
            cases.push((secret, headers, &body[..]));
        }
    }
    let results = python_verify(&python, &cases).await;
    for (result, (secret, _, _)) in results.iter().zip(&cases) {
        if *secret == UNKNOWN_SECRET {
            assert!(result.starts_with("WebhookVerificationError"), "{result}");
        } else {
            assert_eq!(result, "ok", "a receiver holding only one of the secrets");
        }
    }
}
