//! The request time budget: a request that runs out of it is a counted problem+json 503, and
//! a withdrawal whose CoinsPaid answer is slow is answered within the budget, as it stands.

use std::time::{Duration, Instant};

use crate::helpers::*;
use payoutd::simulator::SubmitBehavior;
use reqwest::StatusCode;
use serde_json::Value;

#[tokio::test]
async fn a_request_out_of_time_is_a_counted_problem_503() {
    let app = spawn_app_with(|s| s.server.request_timeout_secs = 1).await;
    app.fund("u1", "EUR", "10.00").await;
    // Another transaction holds the balances table: the read waits past its budget.
    let mut blocker = app.pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE balances IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *blocker)
        .await
        .unwrap();
    let started = Instant::now();
    let r = app
        .http
        .get(app.url("/v1/users/u1/balances"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        r.headers()["content-type"],
        "application/problem+json",
        "a timeout is a problem like any other"
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "timeout");
    assert_eq!(body["status"], 503);
    blocker.rollback().await.unwrap();
    let metrics = app.metrics_text().await;
    assert!(
        metrics.lines().any(|l| l.starts_with(
            "payoutd_http_requests_total{method=\"GET\",route=\"/v1/users/{user_id}/balances\",status=\"503\"}"
        )),
        "the timed-out request is counted: {metrics}"
    );
}

#[tokio::test]
async fn a_slow_coinspaid_gets_a_pending_answer_within_the_budget_and_the_attempt_goes_on() {
    // Budget for the first attempt: half of 2 s. CoinsPaid answers after 3 s, inside the
    // client's 5 s timeout, so the attempt succeeds after the answer was given.
    let app = spawn_app_with(|s| {
        s.server.request_timeout_secs = 2;
        s.coinspaid.timeout_secs = 5;
    })
    .await;
    app.fund("u1", "EUR", "100.00").await;
    app.sim.push_behavior(SubmitBehavior::Slow {
        delay: Duration::from_secs(3),
        callbacks: vec![],
    });
    let started = Instant::now();
    let r = app.withdraw("slow-1", &eur_to_btc("u1", "100.00")).await;
    let waited = started.elapsed();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert!(waited < Duration::from_millis(1_900), "waited {waited:?}");
    let w: Value = r.json().await.unwrap();
    assert_eq!(w["status"], "pending");
    assert_eq!(app.balance("u1", "EUR").await.1, "100.00");

    let id = w["id"].as_str().unwrap().to_owned();
    let mut status = Value::Null;
    for _ in 0..60 {
        status = app.withdrawal(&id).await["status"].clone();
        if status == "processing" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        status, "processing",
        "the attempt finished after the answer"
    );
    app.assert_invariants().await;
}
