//! The operator interface through its public API: identity, the approval policy, the website's
//! cancel, the stuck queue and its actions, races against each other and against a late
//! callback on another replica, the pause switch, the merchant-wide cap and the audit trail.

use crate::helpers::*;
use payoutd::simulator::SubmitBehavior;
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn audit_actions(app: &TestApp, id: &str) -> Vec<(String, String)> {
    let (status, body) = app
        .admin_get(&format!("/admin/v1/audit?withdrawal_id={id}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let mut rows: Vec<(String, String)> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["actor"].as_str().unwrap().into(),
                r["action"].as_str().unwrap().into(),
            )
        })
        .collect();
    rows.reverse();
    rows
}

async fn cancel(app: &TestApp, id: &str) -> (StatusCode, Value) {
    app.post_empty(&format!("/v1/withdrawals/{id}/cancel"))
        .await
}

fn threshold(s: &mut payoutd::config::Settings) {
    with_operator(s);
    s.approval.thresholds.insert("EUR".into(), dec("1000"));
}

#[tokio::test]
async fn operator_and_website_tokens_are_never_accepted_on_each_others_interface() {
    let app = spawn_app_with(with_operator).await;
    let as_operator = app
        .http
        .get(app.url("/v1/withdrawals"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(as_operator.status(), StatusCode::UNAUTHORIZED);
    let as_website = app
        .http
        .get(app.url("/admin/v1/stuck"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(as_website.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.admin_get("/admin/v1/stuck").await.0, StatusCode::OK);
    // The operator API is in the OpenAPI document, under its own security scheme.
    let doc: Value = app
        .http
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for path in [
        "/admin/v1/stuck",
        "/admin/v1/withdrawals/{id}/resolve",
        "/admin/v1/pauses/{scope}",
        "/v1/withdrawals/{id}/cancel",
    ] {
        assert!(
            doc["paths"][path].is_object(),
            "{path} missing from /openapi.json"
        );
    }
    assert!(doc["components"]["securitySchemes"]["operator"].is_object());
}

#[tokio::test]
async fn a_large_withdrawal_waits_for_approval_and_is_sent_with_its_foreign_id_once_approved() {
    let app = spawn_app_with(threshold).await;
    app.fund("u1", "EUR", "1500").await;
    let w = app.withdraw_ok(&eur_to_btc("u1", "1000.00")).await;
    assert_eq!(w["status"], "awaiting_approval");
    assert_eq!(
        app.balance("u1", "EUR").await,
        ("500.00".into(), "1000.00".into())
    );
    app.drain().await;
    assert!(
        app.sim.submissions().is_empty(),
        "nothing is sent before approval"
    );
    let (_, stuck) = app.admin_get("/admin/v1/stuck").await;
    assert_eq!(stuck["data"][0]["kind"], "awaiting_approval");
    assert!(stuck["data"][0]["review_reason"]
        .as_str()
        .unwrap()
        .contains("1000 EUR"));

    let id = w["id"].as_str().unwrap();
    let (status, body) = app
        .admin_post(
            &format!("/admin/v1/withdrawals/{id}/approve"),
            &json!({"reason": "known customer"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["withdrawal"]["status"], "processing");
    let sent = app.sim.withdrawals();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].foreign_id, w["foreign_id"].as_str().unwrap());
    assert_eq!(
        audit_actions(&app, id).await,
        vec![
            ("policy".into(), "hold_for_approval".into()),
            ("alice".into(), "approve".into())
        ]
    );
    // The website heard of every status change the approval caused.
    let statuses: Vec<String> = sqlx::query_scalar(
        "SELECT payload->'data'->>'status' FROM notification_outbox WHERE withdrawal_id = $1::uuid ORDER BY id",
    )
    .bind(id)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(statuses, vec!["pending", "processing"]);
    // A small one goes straight out.
    assert_eq!(
        app.withdraw_ok(&eur_to_btc("u1", "100.00")).await["status"],
        "processing"
    );
    app.assert_invariants().await;
}

#[tokio::test]
async fn reject_releases_cancel_releases_and_a_sent_withdrawal_cannot_be_cancelled() {
    let app = spawn_app_with(threshold).await;
    app.fund("u1", "EUR", "3000").await;
    let ids: Vec<String> = {
        let mut ids = Vec::new();
        for _ in 0..3 {
            let w = app.withdraw_ok(&eur_to_btc("u1", "1000.00")).await;
            ids.push(w["id"].as_str().unwrap().to_owned());
        }
        ids
    };
    let (status, body) = app
        .admin_post(
            &format!("/admin/v1/withdrawals/{}/reject", ids[0]),
            &json!({}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("validation_failed")),
        "a rejection needs a reason"
    );
    let (status, body) = app
        .admin_post(
            &format!("/admin/v1/withdrawals/{}/reject", ids[0]),
            &json!({"reason": "address on a deny list"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["withdrawal"]["status"], "rejected");
    assert!(body["withdrawal"]["error"]
        .as_str()
        .unwrap()
        .contains("deny list"));

    let (status, body) = cancel(&app, &ids[1]).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("cancelled"))
    );
    assert_eq!(
        cancel(&app, &ids[1]).await.0,
        StatusCode::OK,
        "cancelling again changes nothing"
    );

    app.admin_post(
        &format!("/admin/v1/withdrawals/{}/approve", ids[2]),
        &json!({}),
    )
    .await;
    let (status, body) = cancel(&app, &ids[2]).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("not_cancellable"))
    );
    assert_eq!(
        app.balance("u1", "EUR").await,
        ("2000.00".into(), "1000.00".into())
    );
    assert_eq!(
        audit_actions(&app, &ids[1]).await[1],
        ("website".into(), "cancel".into())
    );
    app.assert_invariants().await;
}

#[tokio::test]
async fn approve_reject_and_cancel_racing_each_other_have_exactly_one_winner() {
    let app = std::sync::Arc::new(spawn_app_with(threshold).await);
    app.fund("u1", "EUR", "20000").await;
    for _ in 0..12 {
        let w = app.withdraw_ok(&eur_to_btc("u1", "1000.00")).await;
        let id = w["id"].as_str().unwrap().to_owned();
        let results = concurrently(3, |i| {
            let app = app.clone();
            let id = id.clone();
            async move {
                match i {
                    0 => {
                        app.admin_post(&format!("/admin/v1/withdrawals/{id}/approve"), &json!({}))
                            .await
                            .0
                    }
                    1 => {
                        app.admin_post(
                            &format!("/admin/v1/withdrawals/{id}/reject"),
                            &json!({"reason": "race"}),
                        )
                        .await
                        .0
                    }
                    _ => cancel(&app, &id).await.0,
                }
            }
        })
        .await;
        let winners = results.iter().filter(|s| **s == StatusCode::OK).count();
        assert_eq!(winners, 1, "{results:?}");
        assert!(
            results
                .iter()
                .all(|s| *s == StatusCode::OK || *s == StatusCode::CONFLICT),
            "{results:?}"
        );
        let decisions: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM audit_log WHERE withdrawal_id = $1::uuid AND actor <> 'policy'",
        )
        .bind(&id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
        assert_eq!(decisions, 1, "one decision recorded");
    }
    app.assert_invariants().await;
}

#[tokio::test]
async fn a_first_withdrawal_and_a_flagged_user_wait_for_approval() {
    let app = spawn_app_with(|s| {
        with_operator(s);
        s.approval.first_withdrawal = true;
    })
    .await;
    app.fund("u1", "EUR", "500").await;
    let first = app.withdraw_ok(&eur_to_btc("u1", "100.00")).await;
    assert_eq!(first["status"], "awaiting_approval");
    let id = first["id"].as_str().unwrap();
    app.admin_post(&format!("/admin/v1/withdrawals/{id}/approve"), &json!({}))
        .await;
    app.post_callback(&app.callback_for(&app.withdrawal(id).await, "confirmed"))
        .await;
    assert_eq!(app.withdrawal(id).await["status"], "confirmed");
    assert_eq!(
        app.withdraw_ok(&eur_to_btc("u1", "100.00")).await["status"],
        "processing"
    );

    let flagged = app
        .http
        .put(app.url("/v1/users/u1/review-flag"))
        .bearer_auth(TOKEN)
        .json(&json!({"reason": "chargeback on file"}))
        .send()
        .await
        .unwrap();
    assert_eq!(flagged.status(), StatusCode::NO_CONTENT);
    let held = app.withdraw_ok(&eur_to_btc("u1", "100.00")).await;
    assert_eq!(held["status"], "awaiting_approval");
    app.assert_invariants().await;
}

#[tokio::test]
async fn a_resolution_must_agree_with_a_fresh_look_up_unless_overridden() {
    let app = spawn_app_with(with_operator).await;
    let w = app.processing_withdrawal("100.00").await;
    let id = w["id"].as_str().unwrap();
    let path = format!("/admin/v1/withdrawals/{id}/resolve");
    // CoinsPaid still says processing: neither resolution is backed.
    let (status, body) = app
        .admin_post(
            &path,
            &json!({"outcome": "not_paid", "reason": "user says nothing arrived"}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("lookup_disagrees")),
        "{body}"
    );
    let (status, _) = app.admin_post(&path, &json!({"outcome": "paid"})).await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a reason is required"
    );
    assert_eq!(app.balance("u1", "EUR").await.1, "100.00");

    // CoinsPaid now says cancelled: "not paid" agrees and releases.
    assert!(app
        .sim
        .set_status(w["foreign_id"].as_str().unwrap(), "cancelled"));
    let (status, body) = app
        .admin_post(
            &path,
            &json!({"outcome": "not_paid", "reason": "CoinsPaid cancelled it"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["withdrawal"]["status"], "cancelled");
    assert_eq!(body["lookup"]["record"]["provider_status"], "cancelled");
    assert_eq!(
        app.balance("u1", "EUR").await,
        ("100.00".into(), "0.00".into())
    );

    // Override: CoinsPaid says processing, the operator knows it was paid.
    app.fund("u2", "EUR", "50").await;
    let other = app.withdraw_ok(&eur_to_btc("u2", "50.00")).await;
    let oid = other["id"].as_str().unwrap();
    let (status, body) = app
        .admin_post(
            &format!("/admin/v1/withdrawals/{oid}/resolve"),
            &json!({"outcome": "paid", "reason": "txid seen on chain", "override": true}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["withdrawal"]["status"], "confirmed");
    let (_, audit) = app
        .admin_get(&format!("/admin/v1/audit?withdrawal_id={oid}"))
        .await;
    assert_eq!(audit["data"][0]["actor"], "alice");
    assert_eq!(audit["data"][0]["after"]["details"]["override"], true);
    assert_eq!(audit["data"][0]["before"]["status"], "processing");
    app.assert_invariants().await;
}

/// A resolution is refused while a submission attempt holds the job (its answer would land
/// after the settlement); once no attempt runs, the resolution settles and the job goes with it.
#[tokio::test]
async fn a_resolution_waits_for_no_attempt_in_flight_and_takes_the_job_with_it() {
    let app = spawn_app_with(with_operator).await;
    app.fund("u1", "EUR", "100.00").await;
    app.sim
        .push_behavior(SubmitBehavior::ServerError { status: 503 });
    let w = app.withdraw_ok(&eur_to_btc("u1", "100.00")).await;
    assert_eq!(w["status"], "pending");
    let id = w["id"].as_str().unwrap();
    let job = |sql: &'static str| sqlx::query(sql).bind(id).execute(&app.pool);
    // An attempt holds the job: leased, its lease running.
    job("UPDATE submission_jobs SET lease_id = gen_random_uuid(), run_at = now() + interval '1 minute', parked = false
         WHERE withdrawal_id = $1::uuid")
    .await
    .unwrap();
    let path = format!("/admin/v1/withdrawals/{id}/resolve");
    let resolution = json!({"outcome": "not_paid", "reason": "never sent", "override": true});
    let (status, body) = app.admin_post(&path, &resolution).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("submission_in_flight")),
        "{body}"
    );
    assert_eq!(app.withdrawal(id).await["status"], "pending");
    assert_eq!(app.balance("u1", "EUR").await.1, "100.00");

    // The lease ran out: nothing is in flight any more.
    job("UPDATE submission_jobs SET run_at = now() - interval '1 second' WHERE withdrawal_id = $1::uuid")
        .await
        .unwrap();
    let (status, body) = app.admin_post(&path, &resolution).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["withdrawal"]["status"], "cancelled");
    assert_eq!(
        app.balance("u1", "EUR").await,
        ("100.00".into(), "0.00".into())
    );
    let jobs: i64 =
        sqlx::query_scalar("SELECT count(*) FROM submission_jobs WHERE withdrawal_id = $1::uuid")
            .bind(id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(jobs, 0, "the job went with the resolution");
    app.assert_invariants().await;
}

#[tokio::test]
async fn a_resolution_racing_a_late_callback_on_another_replica_settles_once() {
    let apps = spawn_cluster(2, with_operator).await;
    let (a, b) = (&apps[0], &apps[1]);
    a.fund("u1", "EUR", "2000").await;
    for round in 0..10 {
        let w = a.withdraw_ok(&eur_to_btc("u1", "100.00")).await;
        let id = w["id"].as_str().unwrap().to_owned();
        let body = a.callback_for(&w, "confirmed");
        let resolve_path = format!("/admin/v1/withdrawals/{id}/resolve");
        let outcome = if round % 2 == 0 { "not_paid" } else { "paid" };
        let resolution = json!({"outcome": outcome, "reason": "race", "override": true});
        let (resolved, callback) = tokio::join!(
            a.admin_post(&resolve_path, &resolution),
            b.post_callback(&body),
        );
        assert_eq!(callback, StatusCode::OK);
        assert!(
            resolved.0 == StatusCode::OK || resolved.0 == StatusCode::CONFLICT,
            "{resolved:?}"
        );
        let kinds = a.ledger_kinds(&id).await;
        let status = a.withdrawal(&id).await["status"]
            .as_str()
            .unwrap()
            .to_owned();
        match kinds.as_slice() {
            [h, d] if h == "hold" && d == "debit" => assert_eq!(status, "confirmed"),
            [h, r] if h == "hold" && r == "release" => assert_eq!(status, "cancelled"),
            other => panic!("settled other than once: {other:?}"),
        }
        if resolved.0 == StatusCode::CONFLICT {
            assert_eq!(
                resolved.1["code"], "status_conflict",
                "the callback won: {:?}",
                resolved.1
            );
        }
    }
    a.assert_invariants().await;
}

#[tokio::test]
async fn a_pause_holds_submissions_in_the_database_until_resumed() {
    let app = spawn_app_with(with_operator).await;
    let r = app
        .http
        .put(app.url("/admin/v1/pauses/all"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"reason": "CoinsPaid incident"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    app.fund("u1", "EUR", "100").await;
    let w = app.withdraw_ok(&eur_to_btc("u1", "100.00")).await;
    assert_eq!(w["status"], "pending");
    app.drain().await;
    assert!(
        app.sim.submissions().is_empty(),
        "nothing sent while paused"
    );
    let ready: Value = app
        .http
        .get(app.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["submissions_paused"], json!(["*"]));
    assert!(app
        .metrics_text()
        .await
        .contains("payoutd_submissions_paused{scope=\"all\"} 1"));

    let r = app
        .http
        .delete(app.url("/admin/v1/pauses/all"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // A pause of another currency does not hold EUR.
    let r = app
        .http
        .put(app.url("/admin/v1/pauses/BTC"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"reason": "BTC fees spiking"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    app.drain().await;
    assert_eq!(
        app.withdrawal(w["id"].as_str().unwrap()).await["status"],
        "processing"
    );
    let (_, audit) = app.admin_get("/admin/v1/audit").await;
    let actions: Vec<&str> = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, vec!["pause", "resume", "pause"]);
    app.assert_invariants().await;
}

#[tokio::test]
async fn the_merchant_wide_daily_cap_holds_across_users() {
    let app = spawn_app_with(|s| {
        s.merchant_caps.insert("EUR".into(), dec("300"));
    })
    .await;
    for user in ["u1", "u2"] {
        app.fund(user, "EUR", "200").await;
    }
    app.withdraw_ok(&eur_to_btc("u1", "200.00")).await;
    let r = app.withdraw("cap-2", &eur_to_btc("u2", "200.00")).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "limit_exceeded");
    assert!(body["detail"].as_str().unwrap().contains("merchant-wide"));
    app.withdraw_ok(&eur_to_btc("u2", "100.00")).await;
    app.assert_invariants().await;
}

#[tokio::test]
async fn a_parked_submission_is_listed_with_its_reason_and_retry_now_sends_it() {
    let app = spawn_app_with(|s| {
        with_operator(s);
        s.worker.max_attempts = 1;
    })
    .await;
    app.sim
        .push_behavior(SubmitBehavior::ServerError { status: 503 });
    app.fund("u1", "EUR", "100").await;
    let w = app.withdraw_ok(&eur_to_btc("u1", "100.00")).await;
    assert_eq!(w["status"], "pending");
    let id = w["id"].as_str().unwrap();
    let (_, stuck) = app.admin_get("/admin/v1/stuck").await;
    assert_eq!(stuck["data"][0]["kind"], "attempts_exhausted", "{stuck}");
    assert_eq!(stuck["data"][0]["job"]["parked"], true);
    let (status, page) = app.admin_get(&format!("/admin/v1/withdrawals/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["ledger"][0]["kind"], "hold");

    // The 503 may have reached CoinsPaid: a resend waits out the quiet period (the 2 s
    // CoinsPaid timeout), then follows a look-up that finds no record.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (status, body) = app
        .admin_post(&format!("/admin/v1/withdrawals/{id}/retry"), &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["withdrawal"]["status"], "processing");
    let sent: Vec<String> = app
        .sim
        .submissions()
        .iter()
        .filter_map(|s| s.foreign_id.clone())
        .collect();
    assert_eq!(
        sent,
        vec![w["foreign_id"].as_str().unwrap().to_owned(); 2],
        "same foreign_id"
    );
    let (status, body) = app
        .admin_post(&format!("/admin/v1/withdrawals/{id}/lookup"), &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["lookup"]["result"], "in_progress");
    assert_eq!(app.admin_get("/admin/v1/stuck").await.1["data"], json!([]));
    app.assert_invariants().await;
}

#[tokio::test]
async fn the_audit_trail_is_append_only() {
    let app = spawn_app_with(with_operator).await;
    app.http
        .put(app.url("/admin/v1/pauses/all"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"reason": "test"}))
        .send()
        .await
        .unwrap();
    for statement in [
        "UPDATE audit_log SET actor = 'mallory'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
    ] {
        assert!(
            sqlx::query(statement).execute(&app.pool).await.is_err(),
            "{statement} succeeded"
        );
    }
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(count, 1);
}

#[tokio::test]
async fn the_admin_command_approves_through_the_api_as_the_named_operator() {
    let app = spawn_app_with(threshold).await;
    app.fund("u1", "EUR", "1000").await;
    let w = app.withdraw_ok(&eur_to_btc("u1", "1000.00")).await;
    let id = w["id"].as_str().unwrap().to_owned();
    let run = |args: Vec<String>, token: &'static str| {
        let address = app.address.clone();
        tokio::process::Command::new(env!("CARGO_BIN_EXE_payoutd"))
            .arg("admin")
            .args(args)
            .env("PAYOUTD_ADMIN_URL", address)
            .env("PAYOUTD_ADMIN_TOKEN", token)
            .output()
    };
    let refused = run(vec!["stuck".into()], TOKEN).await.unwrap();
    assert_eq!(refused.status.code(), Some(1), "a website token is refused");
    let out = run(
        vec![
            "approve".into(),
            id.clone(),
            "checked".into(),
            "by".into(),
            "phone".into(),
        ],
        ADMIN_TOKEN,
    )
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(app.withdrawal(&id).await["status"], "processing");
    assert_eq!(
        audit_actions(&app, &id).await[1],
        ("alice".into(), "approve".into())
    );
}
