//! The reconciler settles what CoinsPaid's callbacks never told us, through the same state
//! machine, and never releases money on a missing answer.

use std::time::Duration;

use crate::helpers::*;
use payoutd::simulator::SubmitBehavior;
use payoutd::withdrawals::submit::reconcile::Check;

#[tokio::test]
async fn lost_callbacks_are_settled_by_looking_the_withdrawal_up() {
    let app = spawn_app().await;
    app.fund("u1", "EUR", "100.00").await;
    let confirmed = app.withdraw_ok(&eur_to_btc("u1", "30.00")).await;
    let cancelled = app.withdraw_ok(&eur_to_btc("u1", "20.00")).await;
    let still_going = app.withdraw_ok(&eur_to_btc("u1", "10.00")).await;
    // CoinsPaid settles two of them, but the callbacks never arrive.
    assert!(app.sim.set_status(&fid_of(&confirmed), "confirmed"));
    assert!(app.sim.set_status(&fid_of(&cancelled), "cancelled"));
    assert!(app.sim.set_status(&fid_of(&still_going), "pending"));

    let mut checks = app.reconciler.run_once().await.unwrap();
    checks.sort_by_key(|c| c.label());
    assert_eq!(checks, [Check::InProgress, Check::Settled, Check::Settled]);
    assert_eq!(
        app.withdrawal(&id_of(&confirmed)).await["status"],
        "confirmed"
    );
    assert_eq!(
        app.withdrawal(&id_of(&cancelled)).await["status"],
        "cancelled"
    );
    let going = app.withdrawal(&id_of(&still_going)).await;
    assert_eq!(
        (going["status"].as_str(), going["provider_status"].as_str()),
        (Some("processing"), Some("pending"))
    );
    assert_eq!(
        app.balance("u1", "EUR").await,
        ("60.00".into(), "10.00".into())
    );
    assert_eq!(
        app.ledger_kinds(&id_of(&confirmed)).await,
        ["hold", "debit"]
    );

    // A late callback after reconciliation is a duplicate, not a second debit.
    assert_eq!(
        app.post_callback(&app.callback_for(&confirmed, "confirmed"))
            .await,
        200
    );
    assert_eq!(
        app.ledger_kinds(&id_of(&confirmed)).await,
        ["hold", "debit"]
    );
    app.assert_invariants().await;
}

#[tokio::test]
async fn a_parked_submission_that_reached_coinspaid_moves_on() {
    let app = spawn_app_with(|s| s.worker.max_attempts = 1).await;
    app.fund("u1", "EUR", "100.00").await;
    app.sim
        .push_behavior(SubmitBehavior::AcceptThenServerError { callbacks: vec![] });
    let w = app.withdraw_ok(&eur_to_btc("u1", "10.00")).await;
    assert_eq!(w["status"], "pending");
    let parked: bool =
        sqlx::query_scalar("SELECT parked FROM submission_jobs WHERE withdrawal_id = $1::uuid")
            .bind(id_of(&w))
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(parked, "one attempt allowed, outcome unknown: parked");

    assert_eq!(
        app.reconciler.run_once().await.unwrap(),
        [Check::InProgress]
    );
    assert_eq!(app.withdrawal(&id_of(&w)).await["status"], "processing");
    let jobs: i64 = sqlx::query_scalar("SELECT count(*) FROM submission_jobs")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(jobs, 0);
    app.assert_invariants().await;
}

#[tokio::test]
async fn a_parked_submission_coinspaid_never_saw_is_resubmitted_with_the_same_foreign_id() {
    let app = spawn_app_with(|s| s.worker.max_attempts = 1).await;
    app.fund("u1", "EUR", "100.00").await;
    app.sim
        .push_behavior(SubmitBehavior::ServerError { status: 503 });
    let w = app.withdraw_ok(&eur_to_btc("u1", "10.00")).await;
    assert_eq!(app.drain().await, 0, "parked: the worker leaves it alone");

    assert_eq!(
        app.reconciler.run_once().await.unwrap(),
        [Check::Resubmitted]
    );
    // Looked up again first; sent again once the quiet period since the 503 has passed.
    app.drain_waiting(Duration::from_secs(10)).await;
    assert_eq!(app.withdrawal(&id_of(&w)).await["status"], "processing");
    let subs = app.sim.submissions();
    assert_eq!(subs.len(), 2);
    assert!(subs
        .iter()
        .all(|s| s.foreign_id.as_deref() == Some(fid_of(&w).as_str())));
    app.assert_invariants().await;
}

#[tokio::test]
async fn what_cannot_be_resolved_is_reported_and_moves_no_money() {
    let app = spawn_app().await;
    app.fund("u1", "EUR", "100.00").await;
    let w = app.withdraw_ok(&eur_to_btc("u1", "10.00")).await;
    assert!(app.sim.forget(&fid_of(&w)));
    assert_eq!(app.reconciler.run_once().await.unwrap(), [Check::Missing]);
    assert_eq!(app.withdrawal(&id_of(&w)).await["status"], "processing");
    assert_eq!(
        app.balance("u1", "EUR").await,
        ("90.00".into(), "10.00".into())
    );
    let metrics = app.metrics_text().await;
    assert!(
        metrics.contains("payoutd_reconciler_checks_total{result=\"missing\"}"),
        "{metrics}"
    );

    // A provider that cannot be reached: the look-up fails and is retried later.
    let down =
        spawn_app_with(|s| s.coinspaid.api_url = Some("http://127.0.0.1:9".parse().unwrap())).await;
    down.fund("u1", "EUR", "100.00").await;
    let _ = down.withdraw_ok(&eur_to_btc("u1", "10.00")).await;
    assert_eq!(
        down.reconciler.run_once().await.unwrap(),
        [Check::LookupFailed]
    );
    app.assert_invariants().await;
}
