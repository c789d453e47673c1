//! Operators see every anomaly: the stuck list pages through everything that needs a person,
//! finished withdrawals with an unacknowledged anomaly included, and an acknowledgement
//! (audited) takes one off the list until another anomaly is recorded.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

/// Every id the stuck list gives, following `next_cursor` with pages of `limit`.
async fn all_stuck(app: &TestApp, limit: usize) -> Vec<(String, String)> {
    let mut seen = Vec::new();
    let mut path = format!("/admin/v1/stuck?limit={limit}");
    for _ in 0..20 {
        let (status, page) = app.admin_get(&path).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let data = page["data"].as_array().unwrap();
        assert!(data.len() <= limit);
        seen.extend(data.iter().map(|i| {
            (
                i["withdrawal"]["id"].as_str().unwrap().to_owned(),
                i["kind"].as_str().unwrap().to_owned(),
            )
        }));
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/admin/v1/stuck?limit={limit}&cursor={cursor}"),
            None => return seen,
        }
    }
    panic!("the stuck list did not end");
}

async fn acknowledge(app: &TestApp, id: &str, body: &Value) -> (StatusCode, Value) {
    app.admin_post(&format!("/admin/v1/withdrawals/{id}/acknowledge"), body)
        .await
}

#[tokio::test]
async fn an_anomaly_on_a_finished_withdrawal_is_listed_until_acknowledged_and_again_after_another()
{
    let app = spawn_app_with(with_operator).await;
    let w = app.rejected_then_confirmed("u1").await;
    let id = id_of(&w);
    assert_eq!(app.ledger_kinds(&id).await, ["hold", "release"]);
    assert_eq!(
        all_stuck(&app, 50).await,
        vec![(id.clone(), "anomaly".into())]
    );

    // A reason is required; an unknown id is 404.
    assert_eq!(
        acknowledge(&app, &id, &json!({})).await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let (status, body) = acknowledge(&app, &id, &json!({"reason": "  "})).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("validation_failed"))
    );
    let unknown = uuid::Uuid::now_v7().to_string();
    let (status, body) = acknowledge(&app, &unknown, &json!({"reason": "x"})).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );

    let (status, body) = acknowledge(
        &app,
        &id,
        &json!({"reason": "CoinsPaid support: test callback, nothing paid (ticket 7)"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["withdrawal"]["status"], "rejected");
    assert_eq!(all_stuck(&app, 50).await, vec![]);
    // Acknowledged once; a second acknowledgement has nothing to acknowledge.
    let (status, body) = acknowledge(&app, &id, &json!({"reason": "again"})).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("nothing_to_acknowledge"))
    );
    let (_, page) = app.admin_get(&format!("/admin/v1/withdrawals/{id}")).await;
    assert_eq!(page["kind"], "none");
    assert_eq!(page["anomaly_acknowledged_by"], "alice");
    assert_eq!(page["anomaly_unacknowledged"], false);

    // Audited: who, why, the anomaly it was about.
    let (_, audit) = app
        .admin_get(&format!("/admin/v1/audit?withdrawal_id={id}"))
        .await;
    let rows = audit["data"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{audit}");
    assert_eq!(
        (&rows[0]["actor"], &rows[0]["action"], &rows[0]["reason"]),
        (
            &json!("alice"),
            &json!("acknowledge"),
            &json!("CoinsPaid support: test callback, nothing paid (ticket 7)")
        )
    );
    assert_eq!(rows[0]["before"]["anomaly"], w["anomaly"]);

    // The same contradiction again, after the acknowledgement: a person must look again.
    assert_eq!(
        app.post_callback(&app.callback_for(&w, "confirmed")).await,
        StatusCode::OK
    );
    assert_eq!(
        all_stuck(&app, 50).await,
        vec![(id.clone(), "anomaly".into())]
    );
    let (status, _) = acknowledge(&app, &id, &json!({"reason": "same ticket"})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(all_stuck(&app, 50).await, vec![]);
    assert_eq!(
        app.ledger_kinds(&id).await,
        ["hold", "release"],
        "no money moved"
    );
    app.assert_invariants().await;
}

#[tokio::test]
async fn following_next_cursor_past_a_full_page_awaiting_approval_reaches_the_anomaly() {
    let app = spawn_app_with(|s| {
        with_operator(s);
        s.approval.thresholds.insert("EUR".into(), dec("1000"));
    })
    .await;
    app.fund("big", "EUR", "5000").await;
    let mut awaiting = Vec::new();
    for _ in 0..5 {
        let w = app.withdraw_ok(&eur_to_btc("big", "1000.00")).await;
        assert_eq!(w["status"], "awaiting_approval");
        awaiting.push(id_of(&w));
    }
    // Newer than every one awaiting approval: oldest first, it is on the last page.
    let anomaly = id_of(&app.rejected_then_confirmed("u1").await);

    let (_, first) = app.admin_get("/admin/v1/stuck?limit=2").await;
    assert_eq!(first["data"].as_array().unwrap().len(), 2);
    assert!(first["next_cursor"].is_string(), "{first}");
    let mut expected: Vec<(String, String)> = awaiting
        .iter()
        .map(|id| (id.clone(), "awaiting_approval".into()))
        .collect();
    expected.push((anomaly, "anomaly".into()));
    assert_eq!(all_stuck(&app, 2).await, expected);
    assert_eq!(all_stuck(&app, 200).await, expected);

    // Misspelt or unknown parameters are named, not ignored.
    let (status, body) = app.admin_get("/admin/v1/stuck?limt=2&kind=anomaly").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["code"], "validation_failed");
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains("limt") && detail.contains("kind"),
        "{detail}"
    );
    let (status, _) = app.admin_get("/admin/v1/stuck?cursor=nope").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn the_admin_command_acknowledges_an_anomaly_as_the_named_operator() {
    let app = spawn_app_with(with_operator).await;
    let id = id_of(&app.rejected_then_confirmed("u1").await);
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_payoutd"))
        .args(["admin", "acknowledge", &id, "handled", "by", "phone"])
        .env("PAYOUTD_ADMIN_URL", &app.address)
        .env("PAYOUTD_ADMIN_TOKEN", ADMIN_TOKEN)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, audit) = app
        .admin_get(&format!("/admin/v1/audit?withdrawal_id={id}"))
        .await;
    assert_eq!(audit["data"][0]["action"], "acknowledge");
    assert_eq!(audit["data"][0]["reason"], "handled by phone");
    assert_eq!(all_stuck(&app, 50).await, vec![]);
}
