//! CoinsPaid's acceptance recorded in one statement, a callback applied and stored in one
//! transaction (BENCHMARKS.md, "Fewer commits on the money path"). The acceptance writes the
//! documented notification, and a callback racing it must still settle once.

use std::time::Duration;

use crate::helpers::*;
use payoutd::domain::WithdrawalStatus;
use payoutd::simulator::SubmitBehavior;
use serde_json::Value;

/// The one-statement acceptance moves the withdrawal, records CoinsPaid's id, writes the
/// documented notification and removes the job.
#[tokio::test]
async fn the_one_statement_acceptance_writes_the_documented_notification() {
    let app = spawn_app().await;
    app.fund("u1", "EUR", "100.00").await;
    app.sim
        .set_default_behavior(SubmitBehavior::accept_silently());
    let w = app.withdraw_ok(&eur_to_btc("u1", "12.50")).await;
    assert_eq!(w["status"], "processing");
    let id: uuid::Uuid = w["id"].as_str().unwrap().parse().unwrap();

    let written: Vec<Value> = sqlx::query_scalar(
        "SELECT payload FROM notification_outbox WHERE withdrawal_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(written.len(), 1, "one notification: pending -> processing");
    let row = payoutd::withdrawals::store::get(&app.pool, id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.status, WithdrawalStatus::Processing);
    assert!(row.provider_id.is_some(), "CoinsPaid's id is recorded");

    assert_status_changed_payload(&written[0], &row, WithdrawalStatus::Pending);

    let jobs: i64 = sqlx::query_scalar("SELECT count(*) FROM submission_jobs")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(jobs, 0, "the job went with the acceptance");
    let (outcome, count): (String, i64) =
        sqlx::query_as("SELECT outcome, count(*) OVER () FROM callbacks ORDER BY id DESC LIMIT 1")
            .fetch_optional(&app.pool)
            .await
            .unwrap()
            .unwrap_or(("none".into(), 0));
    assert_eq!((outcome.as_str(), count), ("none", 0), "no callback yet");
}

/// CoinsPaid confirms at once (no callback delay): the callback often lands before the
/// acceptance is recorded, so the one-statement path finds the row no longer pending and the
/// general path takes over. Each withdrawal ends confirmed, debited once, its job gone, every
/// callback stored once with its outcome, and its notifications a chain of real changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_immediate_callback_racing_the_acceptance_settles_once() {
    let app = spawn_app().await;
    app.fund("u1", "EUR", "1000.00").await;
    app.sim.set_callback_delay(Duration::ZERO);
    app.sim.set_default_behavior(SubmitBehavior::confirm());
    let n = 24;
    let (http, url) = (app.http.clone(), app.url("/v1/withdrawals"));
    let created = concurrently(n, |i| {
        let request = http
            .post(&url)
            .bearer_auth(TOKEN)
            .header("Idempotency-Key", format!("race-{i}"))
            .json(&eur_to_btc("u1", "10.00"));
        async move { request.send().await.unwrap().status().as_u16() }
    })
    .await;
    assert!(created.iter().all(|s| *s == 201), "{created:?}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let open: i64 =
            sqlx::query_scalar("SELECT count(*) FROM withdrawals WHERE status <> 'confirmed'")
                .fetch_one(&app.pool)
                .await
                .unwrap();
        if open == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{open} not confirmed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let debits: i64 =
        sqlx::query_scalar("SELECT count(*) FROM ledger_entries WHERE kind = 'debit'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(debits, n as i64);
    assert_eq!(
        app.balance("u1", "EUR").await,
        ("760.00".into(), "0.00".into())
    );
    let jobs: i64 = sqlx::query_scalar("SELECT count(*) FROM submission_jobs")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(jobs, 0);
    let unsettled: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM callbacks WHERE outcome NOT IN ('applied', 'duplicate')",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(unsettled, 0, "every callback stored with its final outcome");
    // Each notification is a real change, and the chain of each withdrawal ends confirmed.
    let chains: Vec<(String, Vec<String>)> = sqlx::query_as(
        "SELECT withdrawal_id::text,
                array_agg((payload->'data'->>'previous_status') || '>' || (payload->'data'->>'status') ORDER BY id)
         FROM notification_outbox GROUP BY withdrawal_id",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(chains.len(), n);
    for (id, chain) in chains {
        assert!(
            chain == ["pending>processing", "processing>confirmed"]
                || chain == ["pending>confirmed"],
            "{id}: {chain:?}"
        );
    }
    app.assert_invariants().await;
}

/// A callback whose transaction fails (here: the ledger refuses, the balance having been
/// tampered with) leaves nothing of that transaction, but its body is still on record, and
/// CoinsPaid is answered an error so it retries.
#[tokio::test]
async fn a_callback_that_fails_to_apply_is_still_stored() {
    let app = spawn_app().await;
    app.fund("u1", "EUR", "100.00").await;
    let w = app.processing_withdrawal("40.00").await;
    sqlx::query("UPDATE balances SET held = 0 WHERE user_id = 'u1'")
        .execute(&app.pool)
        .await
        .unwrap();
    let status = app.post_callback(&app.callback_for(&w, "confirmed")).await;
    assert!(status.is_server_error(), "{status}");
    let stored: Vec<(String, Option<String>, Option<String>)> =
        sqlx::query_as("SELECT outcome, foreign_id, detail FROM callbacks")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(stored.len(), 1, "stored once, alone");
    assert_eq!(stored[0].0, "received");
    assert_eq!(stored[0].1.as_deref(), w["foreign_id"].as_str());
    assert!(stored[0].2.is_some());
    assert_eq!(
        app.withdrawal(w["id"].as_str().unwrap()).await["status"],
        "processing"
    );
    let debits: i64 =
        sqlx::query_scalar("SELECT count(*) FROM ledger_entries WHERE kind = 'debit'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(debits, 0, "nothing of the failed transaction stayed");
}
