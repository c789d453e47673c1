//! Website notifications: one per status change, written with the change, signed, retried
//! until delivered.

mod common;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use common::*;
use payoutd::coinspaid::signing::SecretString;
use payoutd::simulator::SubmitBehavior;
use serde_json::Value;

const NOTIFY_SECRET: &str = "website-notify-secret-123";

#[derive(Clone, Default)]
struct Receiver {
    received: Arc<Mutex<Vec<(HeaderMap, Bytes)>>>,
    answers: Arc<Mutex<VecDeque<StatusCode>>>,
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    r.received.lock().unwrap().push((headers, body));
    r.answers
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or(StatusCode::NO_CONTENT)
}

async fn start_receiver() -> (String, Receiver) {
    let receiver = Receiver::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/payoutd-events", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .route("/payoutd-events", post(receive))
        .with_state(receiver.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, receiver)
}

/// What the README tells the website to do with a notification.
fn verify(headers: &HeaderMap, body: &[u8]) -> Value {
    let timestamp: i64 = headers["x-payoutd-timestamp"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (chrono::Utc::now().timestamp() - timestamp).abs() < 300,
        "fresh timestamp"
    );
    let expected = payoutd::notify::sign(NOTIFY_SECRET, timestamp, body);
    assert_eq!(headers["x-payoutd-signature"].to_str().unwrap(), expected);
    let event: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(
        headers["x-payoutd-event-id"].to_str().unwrap(),
        event["id"].as_str().unwrap()
    );
    event
}

#[tokio::test]
async fn every_status_change_is_notified_signed_and_retried_until_delivered() {
    let (url, receiver) = start_receiver().await;
    let app = spawn_app_with(|s| {
        s.notify.url = url.clone();
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
    let events: Vec<Value> = received.iter().map(|(h, b)| verify(h, b)).collect();
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
async fn a_forged_notification_fails_verification() {
    let body = br#"{"id":"x","type":"withdrawal.status_changed"}"#;
    let good = payoutd::notify::sign(NOTIFY_SECRET, 1_700_000_000, body);
    assert_ne!(
        payoutd::notify::sign("another-secret-000000", 1_700_000_000, body),
        good
    );
    assert_ne!(
        payoutd::notify::sign(NOTIFY_SECRET, 1_700_000_001, body),
        good,
        "the timestamp is signed"
    );
    assert_ne!(
        payoutd::notify::sign(NOTIFY_SECRET, 1_700_000_000, b"{}"),
        good
    );
}
