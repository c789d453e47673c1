//! A hold is released only on proof that the payout did not and will not happen (CONTRACT.md
//! section 5): a field refusal while every earlier attempt had a definitive answer, or
//! CoinsPaid reporting the payout cancelled or declined. Everything else keeps the money held
//! and asks: a look-up, a retry, a parked job for a person.

use std::time::Duration;

use crate::helpers::*;
use payoutd::simulator::SubmitBehavior;
use payoutd::withdrawals::submit::reconcile::Check;
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
    // Looked up (no record), sent again after the quiet period, refused, looked up again.
    app.drain_waiting(Duration::from_secs(10)).await;
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
    // CoinsPaid behaves again: each is looked up (no record), then the same foreign_ids go
    // through once the quiet period has passed.
    app.drain_waiting(Duration::from_secs(10)).await;
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
    // A list whose first record is another withdrawal's, or a deposit naming our id: not ours,
    // and a 2xx is no way of saying "no record" either: a failed look-up, tried again.
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
            [Check::LookupFailed],
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

/// A documented CoinsPaid body from the conformance corpus.
fn documented(file: &str) -> String {
    std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/coinspaid")
            .join(file),
    )
    .unwrap()
}

/// Every look-up answer that is not CoinsPaid's record nor its word that it has none: a
/// rate limit (its documented body is not even JSON), our credentials refused, a 5xx, a
/// redirect, a 2xx without our record, a proxy's page.
fn failed_look_ups() -> Vec<(u16, String)> {
    vec![
        (429, documented("exchange_calculate_429_gh.txt")),
        (403, documented("error_403_bad_header_key.json")),
        (500, "Internal Server Error".into()),
        (302, String::new()),
        (200, r#"{"data": []}"#.into()),
        (
            200,
            r#"[{"id": 5, "foreign_id": "pd-someone-else", "type": "withdrawal", "status": "cancelled"}]"#
                .into(),
        ),
        (404, "<html><body>404 Not Found (proxy)</body></html>".into()),
    ]
}

#[tokio::test]
async fn a_payout_created_before_a_502_is_found_by_a_look_up_and_never_sent_again() {
    let app = spawn_app().await;
    // CoinsPaid's v2 pages never promise to refuse a reused foreign_id: a stand-in that pays
    // every request out.
    app.sim.set_refuse_reused_foreign_id(false);
    app.fund("u1", "EUR", "100.00").await;
    app.sim
        .push_behavior(SubmitBehavior::AcceptThenServerError { callbacks: vec![] });
    let w = app.withdraw_ok(&eur_to_btc("u1", "40.00")).await;
    assert_eq!(w["status"], "pending", "a 502: the outcome is unknown");
    app.drain_waiting(Duration::from_secs(10)).await;
    assert_eq!(app.withdrawal(&id_of(&w)).await["status"], "processing");
    assert_eq!(app.sim.submissions().len(), 1, "never sent again");
    assert_eq!(app.sim.payouts(&fid_of(&w)), 1, "paid out once");
    assert_eq!(
        app.sim
            .send_callback(&fid_of(&w), "confirmed")
            .await
            .unwrap(),
        200
    );
    assert_eq!(app.ledger_kinds(&id_of(&w)).await, ["hold", "debit"]);
    app.assert_invariants().await;
}

#[tokio::test]
async fn a_payout_created_behind_a_timeout_is_found_by_a_look_up_and_never_sent_again() {
    let app = spawn_app().await;
    app.sim.set_refuse_reused_foreign_id(false);
    app.fund("u1", "EUR", "100.00").await;
    // Created at once, answered after the client's 2 s timeout.
    app.sim.push_behavior(SubmitBehavior::Slow {
        delay: Duration::from_secs(4),
        callbacks: vec![],
    });
    let w = app.withdraw_ok(&eur_to_btc("u1", "40.00")).await;
    assert_eq!(w["status"], "pending", "timed out: the outcome is unknown");
    app.drain_waiting(Duration::from_secs(10)).await;
    assert_eq!(app.withdrawal(&id_of(&w)).await["status"], "processing");
    assert_eq!(app.sim.submissions().len(), 1, "never sent again");
    assert_eq!(app.sim.payouts(&fid_of(&w)), 1, "paid out once");
    app.assert_invariants().await;
}

#[tokio::test]
async fn a_resend_waits_for_a_look_up_without_record_after_the_quiet_period() {
    let app = spawn_app().await;
    app.sim.set_refuse_reused_foreign_id(false);
    app.fund("u1", "EUR", "100.00").await;
    app.sim
        .push_behavior(SubmitBehavior::ServerError { status: 503 });
    let w = app.withdraw_ok(&eur_to_btc("u1", "40.00")).await;
    assert_eq!(w["status"], "pending");
    // Within the quiet period (the 2 s CoinsPaid timeout since the 503), CoinsPaid's "no
    // record" may only mean the create has not shown up yet: nothing is sent.
    app.drain().await;
    assert_eq!(
        app.sim.submissions().len(),
        1,
        "no resend inside the quiet period"
    );
    assert!(app
        .metrics_text()
        .await
        .contains("payoutd_lookups_total{result=\"not_found\"}"));
    let waiting: (i32, Option<String>) = sqlx::query_as(
        "SELECT attempts, last_error FROM submission_jobs WHERE withdrawal_id = $1::uuid",
    )
    .bind(id_of(&w))
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(waiting.0, 1, "waiting out the quiet period uses no attempt");
    assert!(waiting.1.unwrap().contains("quiet period"));
    app.drain_waiting(Duration::from_secs(10)).await;
    assert_eq!(app.withdrawal(&id_of(&w)).await["status"], "processing");
    assert_eq!(app.sim.submissions().len(), 2);
    assert_eq!(app.sim.payouts(&fid_of(&w)), 1);
    app.assert_invariants().await;
}

#[tokio::test]
async fn a_failed_look_up_is_never_no_record_for_the_worker_the_reconciler_or_an_operator() {
    let app = spawn_app_with(|s| {
        s.worker.max_attempts = 2;
        with_operator(s);
    })
    .await;
    app.fund("u1", "EUR", "100.00").await;
    app.sim
        .push_behavior(SubmitBehavior::ServerError { status: 503 });
    let w = app.withdraw_ok(&eur_to_btc("u1", "40.00")).await;
    let held = ("60.00".to_owned(), "40.00".to_owned());
    for (status, body) in failed_look_ups() {
        app.sim.set_lookup_answer_raw(Some((status, body.clone())));
        // An operator sends it again now (fresh attempts): it is looked up first.
        let (code, answer) = app
            .admin_post(
                &format!("/admin/v1/withdrawals/{}/retry", id_of(&w)),
                &json!({}),
            )
            .await;
        assert_eq!(code, 200, "{answer}");
        // The worker: retried, then parked, never sent again.
        app.drain_waiting(Duration::from_secs(6)).await;
        assert_eq!(app.sim.submissions().len(), 1, "{status} {body}");
        let (parked, reason, _) = job(&app, &w).await.unwrap();
        assert!(parked, "{status} {body}");
        assert_eq!(reason.as_deref(), Some("attempts_exhausted"));
        // The reconciler: a failed look-up, nothing unparked.
        assert_eq!(
            app.reconciler.run_once().await.unwrap(),
            [Check::LookupFailed],
            "{status} {body}"
        );
        assert!(job(&app, &w).await.unwrap().0, "{status} {body}");
        // An operator's look-up: the same.
        let (code, answer) = app
            .admin_post(
                &format!("/admin/v1/withdrawals/{}/lookup", id_of(&w)),
                &json!({}),
            )
            .await;
        assert_eq!(code, 200, "{answer}");
        assert_eq!(answer["lookup"]["result"], "lookup_failed", "{answer}");
        assert!(job(&app, &w).await.unwrap().0, "{status} {body}");
        assert_eq!(app.balance("u1", "EUR").await, held, "{status} {body}");
        assert_eq!(app.withdrawal(&id_of(&w)).await["status"], "pending");
    }
    // CoinsPaid answers again, and has no record: the job goes back in line, is looked up
    // again, and only then sent with the same foreign_id.
    app.sim.set_lookup_answer_raw(None);
    assert_eq!(
        app.reconciler.run_once().await.unwrap(),
        [Check::Resubmitted]
    );
    app.drain_waiting(Duration::from_secs(10)).await;
    assert_eq!(app.withdrawal(&id_of(&w)).await["status"], "processing");
    assert_eq!(app.sim.submissions().len(), 2);
    app.assert_invariants().await;
}
