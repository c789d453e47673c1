//! A hold is released only on proof that the payout did not and will not happen (CONTRACT.md
//! section 5): a field refusal while every earlier attempt had a definitive answer, or
//! CoinsPaid reporting the payout cancelled or declined. Everything else keeps the money held
//! and asks: a look-up, a retry, a parked job for a person.

mod common;

use common::*;
use payoutd::simulator::SubmitBehavior;
use payoutd::withdrawals::reconcile::Check;
use serde_json::{json, Value};

async fn job(app: &TestApp, w: &Value) -> Option<(bool, Option<String>, Option<String>)> {
    sqlx::query_as(
        "SELECT parked, park_reason, last_error FROM submission_jobs WHERE withdrawal_id = $1::uuid",
    )
    .bind(id_of(w))
    .fetch_optional(&app.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_refusal_after_a_502_that_created_it_is_looked_up_not_released() {
    let app = spawn_app().await;
    app.fund("u1", "EUR", "100.00").await;
    // CoinsPaid creates the payout but answers 502; the retry is refused for a reason of its
    // own (the merchant's balance at CoinsPaid, say) that names a request field.
    app.sim
        .push_behavior(SubmitBehavior::AcceptThenServerError { callbacks: vec![] });
    app.sim.push_behavior(SubmitBehavior::Refuse {
        status: 400,
        field: Some("amount".into()),
        message: "Not enough money on the balance".into(),
    });
    let w = app.withdraw_ok(&eur_to_btc("u1", "40.00")).await;
    assert_eq!(w["status"], "pending");
    app.drain().await;
    let after = app.withdrawal(&id_of(&w)).await;
    assert_eq!(after["status"], "processing", "{after}");
    assert_eq!(
        app.balance("u1", "EUR").await,
        ("60.00".into(), "40.00".into()),
        "the refusal of the retry released nothing"
    );
    assert!(
        job(&app, &w).await.is_none(),
        "CoinsPaid has it: nothing left to send"
    );
    // CoinsPaid pays it out: debited once, no anomaly.
    assert_eq!(
        app.sim
            .send_callback(&fid_of(&w), "confirmed")
            .await
            .unwrap(),
        200
    );
    let done = app.withdrawal(&id_of(&w)).await;
    assert_eq!(
        (done["status"].as_str(), &done["anomaly"]),
        (Some("confirmed"), &Value::Null)
    );
    assert_eq!(app.ledger_kinds(&id_of(&w)).await, ["hold", "debit"]);
    app.assert_invariants().await;
}

#[tokio::test]
async fn a_refusal_after_an_unknown_outcome_that_no_look_up_explains_is_parked_held() {
    let app = spawn_app().await;
    app.fund("u1", "EUR", "100.00").await;
    app.sim
        .push_behavior(SubmitBehavior::ServerError { status: 503 });
    app.sim.push_behavior(SubmitBehavior::Refuse {
        status: 400,
        field: Some("address".into()),
        message: "Invalid address".into(),
    });
    let w = app.withdraw_ok(&eur_to_btc("u1", "40.00")).await;
    app.drain().await;
    assert_eq!(app.withdrawal(&id_of(&w)).await["status"], "pending");
    let (parked, reason, last_error) = job(&app, &w).await.unwrap();
    assert!(parked);
    assert_eq!(reason.as_deref(), Some("needs_operator"));
    assert!(last_error.unwrap().contains("Invalid address"));
    assert_eq!(
        app.balance("u1", "EUR").await,
        ("60.00".into(), "40.00".into())
    );
    // The reconciler keeps asking, and never resubmits or releases what waits for a person.
    assert_eq!(
        app.reconciler.run_once().await.unwrap(),
        [Check::NotYetSubmitted]
    );
    assert_eq!(app.sim.submissions().len(), 2);
    assert!(app
        .metrics_text()
        .await
        .contains("payoutd_submissions_parked_total{reason=\"needs_operator\"}"));
    // If CoinsPaid does report it cancelled, that is proof: released once.
    app.sim.set_lookup_answer(Some((
        200,
        json!({"id": 99, "foreign_id": fid_of(&w), "type": "withdrawal_exchange",
               "status": "cancelled", "error": "Invalid address"}),
    )));
    assert_eq!(app.reconciler.run_once().await.unwrap(), [Check::Settled]);
    assert_eq!(app.ledger_kinds(&id_of(&w)).await, ["hold", "release"]);
    assert!(job(&app, &w).await.is_none());
    app.assert_invariants().await;
}

#[tokio::test]
async fn a_first_attempt_refused_for_a_field_is_released_at_once() {
    let app = spawn_app().await;
    app.fund("u1", "EUR", "100.00").await;
    app.sim.push_behavior(SubmitBehavior::Refuse {
        status: 422,
        field: Some("address".into()),
        message: "Invalid address".into(),
    });
    let w = app.withdraw_ok(&eur_to_btc("u1", "40.00")).await;
    assert_eq!(w["status"], "rejected");
    assert_eq!(app.ledger_kinds(&id_of(&w)).await, ["hold", "release"]);
    app.assert_invariants().await;
}

#[tokio::test]
async fn refusals_that_name_no_field_auth_errors_and_redirects_release_nothing() {
    let app = spawn_app().await;
    app.fund("u1", "EUR", "100.00").await;
    let scripts = [
        // The undocumented merchant-balance refusal: names nothing we sent.
        SubmitBehavior::Refuse {
            status: 400,
            field: None,
            message: "Insufficient funds".into(),
        },
        // CoinsPaid's documented 403: our key or signature, not the payout.
        SubmitBehavior::AuthError {
            code: "bad_header_signature".into(),
        },
        SubmitBehavior::AuthError {
            code: "bad_content_format".into(),
        },
        // A redirect: never followed, the signed request goes nowhere else.
        SubmitBehavior::Redirect { status: 307 },
        SubmitBehavior::Redirect { status: 302 },
    ];
    let mut withdrawals = Vec::new();
    for script in scripts {
        app.sim.push_behavior(script.clone());
        let w = app.withdraw_ok(&eur_to_btc("u1", "10.00")).await;
        assert_eq!(w["status"], "pending", "{script:?}: {w}");
        withdrawals.push(w);
    }
    assert_eq!(app.sim.redirected_requests(), 0, "a redirect was followed");
    assert_eq!(
        app.balance("u1", "EUR").await,
        ("50.00".into(), "50.00".into())
    );
    // CoinsPaid behaves again: the same foreign_ids go through.
    app.drain().await;
    for w in &withdrawals {
        assert_eq!(app.withdrawal(&id_of(w)).await["status"], "processing");
    }
    assert_eq!(app.sim.withdrawals().len(), 5);
    assert_eq!(app.sim.redirected_requests(), 0);
    let metrics = app.metrics_text().await;
    for label in ["configuration_error", "redirect", "http_error"] {
        assert!(
            metrics.contains(&format!("payoutd_submissions_total{{outcome=\"{label}\"}}")),
            "{label}"
        );
    }
    app.assert_invariants().await;
}

#[tokio::test]
async fn a_look_up_acts_only_on_a_withdrawal_record_naming_our_foreign_id() {
    let app = spawn_app().await;
    app.fund("u1", "EUR", "100.00").await;
    let w = app.withdraw_ok(&eur_to_btc("u1", "40.00")).await;
    let ours = json!({"id": w["provider_id"], "foreign_id": fid_of(&w),
                      "type": "withdrawal_exchange", "status": "confirmed"});
    let someone_elses = json!({"id": 5, "foreign_id": "pd-someone-else",
                               "type": "withdrawal_exchange", "status": "cancelled"});
    let deposit =
        json!({"id": 6, "foreign_id": fid_of(&w), "type": "deposit", "status": "cancelled"});
    // A list whose first record is another withdrawal's, or a deposit naming our id: not ours.
    for answer in [
        json!([someone_elses]),
        json!({"data": [someone_elses.clone(), deposit.clone()]}),
        json!(deposit),
        json!({"data": null}),
        json!("ok"),
    ] {
        app.sim.set_lookup_answer(Some((200, answer.clone())));
        assert_eq!(
            app.reconciler.run_once().await.unwrap(),
            [Check::Missing],
            "{answer}"
        );
        assert_eq!(app.ledger_kinds(&id_of(&w)).await, ["hold"], "{answer}");
    }
    // Ours among others, enveloped in `data`: that record, and only it, is applied.
    app.sim
        .set_lookup_answer(Some((200, json!({"data": [someone_elses, deposit, ours]}))));
    assert_eq!(app.reconciler.run_once().await.unwrap(), [Check::Settled]);
    assert_eq!(app.ledger_kinds(&id_of(&w)).await, ["hold", "debit"]);
    app.assert_invariants().await;
}

#[tokio::test]
async fn the_look_up_is_a_signed_get_as_documented() {
    let app = spawn_app().await;
    app.fund("u1", "EUR", "100.00").await;
    let w = app.withdraw_ok(&eur_to_btc("u1", "40.00")).await;
    assert!(app.sim.set_status(&fid_of(&w), "declined"));
    // The simulator serves /v2/transactions/info on GET only, verifies the signature, and
    // answers the documented top-level object.
    assert_eq!(app.reconciler.run_once().await.unwrap(), [Check::Settled]);
    let after = app.withdrawal(&id_of(&w)).await;
    assert_eq!(
        (after["status"].as_str(), after["provider_status"].as_str()),
        (Some("cancelled"), Some("declined"))
    );
    assert!(app.metrics_text().await.contains(
        "payoutd_provider_calls_total{endpoint=\"/v2/transactions/info\",outcome=\"2xx\"}"
    ));
    app.assert_invariants().await;
}
