//! MiCA travel-rule data on `POST /v1/withdrawals`: passed to CoinsPaid exactly as given and
//! byte for byte the same on every retry, merchant defaults, the required setting, one
//! `validation_failed` per malformed field, idempotency, never shown back, purged after
//! retention.

use crate::helpers::{eur_to_btc, spawn_app, spawn_app_with, test_settings};
use payoutd::app::Application;
use payoutd::simulator::SubmitBehavior;
use payoutd::withdrawals::travel_rule::Purger;
use reqwest::StatusCode;
use serde_json::{json, Value};

fn natural() -> Value {
    json!({"first_name": "Friedrich", "last_name": "Müller", "date_of_birth": "1995-08-17",
           "email": "friedrich@example.com"})
}

fn legal() -> Value {
    json!({"legal_name": "Example GmbH", "country_of_registration": "DEU"})
}

/// The personal values above, which must never come back out of the service.
const PERSONAL: &[&str] = &[
    "Friedrich",
    "Müller",
    "M\\u00fcller",
    "1995-08-17",
    "friedrich@example.com",
    "Example GmbH",
];

/// `eur_to_btc` with extra top-level fields.
fn body_with(user: &str, extra: Value) -> Value {
    let mut body = eur_to_btc(user, "100.00");
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

fn with_both(user: &str) -> Value {
    body_with(
        user,
        json!({"sender_type": "natural", "sender_data": natural(),
               "receiver_type": "legal", "receiver_data": legal()}),
    )
}

/// What CoinsPaid received for this foreign_id, each attempt parsed, plus the raw bytes.
fn sent(app: &crate::helpers::TestApp, foreign_id: &str) -> Vec<(Vec<u8>, Value)> {
    app.sim
        .submissions()
        .into_iter()
        .filter(|s| s.foreign_id.as_deref() == Some(foreign_id))
        .map(|s| {
            let parsed = serde_json::from_slice(&s.raw_body).unwrap();
            (s.raw_body, parsed)
        })
        .collect()
}

fn assert_no_personal_data(what: &str, text: &str) {
    for value in PERSONAL {
        assert!(!text.contains(value), "{what} shows {value}: {text}");
    }
}

#[tokio::test]
async fn travel_rule_fields_reach_coinspaid_exactly_as_given_and_are_never_shown_back() {
    let app = spawn_app().await;
    app.fund("u1", "EUR", "100.00").await;
    let w = app.withdraw_ok(&with_both("u1")).await;
    assert_eq!(w["status"], "processing");

    let attempts = sent(&app, w["foreign_id"].as_str().unwrap());
    assert_eq!(attempts.len(), 1);
    let body = &attempts[0].1;
    assert_eq!(body["sender_type"], "natural");
    assert_eq!(body["sender_data"], natural());
    assert_eq!(body["receiver_type"], "legal");
    assert_eq!(body["receiver_data"], legal());

    let id = w["id"].as_str().unwrap();
    assert_no_personal_data("the create answer", &w.to_string());
    assert_no_personal_data("GET", &app.withdrawal(id).await.to_string());
    let (_, listing) = app.get_json("/v1/withdrawals?user_id=u1").await;
    assert_no_personal_data("the listing", &listing.to_string());
    assert_no_personal_data("/metrics", &app.metrics_text().await);
    let stored: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM withdrawals WHERE id = $1::uuid AND row_to_json(withdrawals)::text LIKE '%Friedrich%'",
    )
    .bind(id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        stored, 0,
        "the withdrawal row itself holds no travel-rule data"
    );
    let (_, doc) = app.get_json("/openapi.json").await;
    let properties = &doc["components"]["schemas"]["WithdrawalRequest"]["properties"];
    for field in [
        "sender_type",
        "sender_data",
        "receiver_type",
        "receiver_data",
    ] {
        assert!(
            properties.get(field).is_some(),
            "the OpenAPI request body documents {field}"
        );
    }
}

#[tokio::test]
async fn a_retry_sends_the_same_bytes() {
    let app = spawn_app().await;
    app.fund("u1", "EUR", "100.00").await;
    app.sim
        .push_behavior(SubmitBehavior::ServerError { status: 503 });
    let w = app.withdraw_ok(&with_both("u1")).await;
    assert_eq!(w["status"], "pending");
    // Looked up first (no record), sent again once the quiet period has passed.
    app.drain_waiting(std::time::Duration::from_secs(10)).await;
    let id = w["id"].as_str().unwrap();
    assert_eq!(app.withdrawal(id).await["status"], "processing");

    let attempts = sent(&app, w["foreign_id"].as_str().unwrap());
    assert_eq!(attempts.len(), 2);
    assert_eq!(
        attempts[0].0, attempts[1].0,
        "every attempt sends identical bytes"
    );
    assert_eq!(attempts[1].1["sender_data"], natural());
}

#[tokio::test]
async fn withdrawals_without_travel_rule_data_send_none_of_its_fields() {
    let app = spawn_app().await;
    app.fund("u1", "EUR", "100.00").await;
    let w = app.withdraw_ok(&eur_to_btc("u1", "100.00")).await;
    let (raw, _) = &sent(&app, w["foreign_id"].as_str().unwrap())[0];
    let text = String::from_utf8_lossy(raw);
    assert!(
        !text.contains("sender_") && !text.contains("receiver_"),
        "{text}"
    );
}

#[tokio::test]
async fn configured_defaults_stand_in_for_absent_parties() {
    let app = spawn_app_with(|s| {
        s.travel_rule.default_sender_type = Some("legal".into());
        s.travel_rule.default_sender_data = legal().as_object().cloned();
        s.travel_rule.default_receiver_type = Some("self".into());
    })
    .await;
    app.fund("u1", "EUR", "200.00").await;

    let defaulted = app.withdraw_ok(&eur_to_btc("u1", "100.00")).await;
    let (_, body) = &sent(&app, defaulted["foreign_id"].as_str().unwrap())[0];
    assert_eq!(body["sender_type"], "legal");
    assert_eq!(body["sender_data"], legal());
    assert_eq!(body["receiver_type"], "self");
    assert!(
        body.get("receiver_data").is_none(),
        "self sends no receiver_data"
    );

    let stated = app
        .withdraw_ok(&body_with(
            "u1",
            json!({"sender_type": "natural", "sender_data": natural()}),
        ))
        .await;
    let (_, body) = &sent(&app, stated["foreign_id"].as_str().unwrap())[0];
    assert_eq!(
        body["sender_type"], "natural",
        "a stated party wins over the default"
    );
    assert_eq!(body["sender_data"], natural());
    assert_eq!(body["receiver_type"], "self");
}

#[tokio::test]
async fn the_required_setting_refuses_a_withdrawal_without_sender_or_receiver() {
    let app = spawn_app_with(|s| s.travel_rule.required = true).await;
    app.fund("u1", "EUR", "100.00").await;
    for (body, field) in [
        (eur_to_btc("u1", "100.00"), "sender_type:"),
        (
            body_with(
                "u1",
                json!({"sender_type": "natural", "sender_data": natural()}),
            ),
            "receiver_type:",
        ),
    ] {
        let r = app.withdraw("required", &body).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let problem: Value = r.json().await.unwrap();
        assert_eq!(problem["code"], "validation_failed");
        assert!(
            problem["detail"].as_str().unwrap().starts_with(field),
            "{problem}"
        );
    }
    assert_eq!(
        app.balance("u1", "EUR").await,
        ("100.00".into(), "0.00".into())
    );
    let own_wallet = body_with(
        "u1",
        json!({"sender_type": "natural", "sender_data": natural(), "receiver_type": "self"}),
    );
    let w = app.withdraw_ok(&own_wallet).await;
    assert_eq!(w["status"], "processing");
}

#[tokio::test]
async fn each_malformed_travel_rule_field_is_refused_by_name_with_nothing_held() {
    let app = spawn_app().await;
    app.fund("u1", "EUR", "100.00").await;
    let natural_with = |key: &str, value: Value| {
        let mut data = natural();
        data[key] = value;
        json!({"sender_type": "natural", "sender_data": data})
    };
    let cases = [
        (
            json!({"sender_type": "robot", "sender_data": natural()}),
            "sender_type:",
        ),
        (
            json!({"sender_type": 1, "sender_data": natural()}),
            "sender_type:",
        ),
        (json!({"sender_data": natural()}), "sender_type:"),
        (json!({"sender_type": "natural"}), "sender_data:"),
        (
            json!({"sender_type": "natural", "sender_data": "Friedrich"}),
            "sender_data:",
        ),
        (
            natural_with("first_name", json!("")),
            "sender_data.first_name:",
        ),
        (
            natural_with("last_name", json!(null)),
            "sender_data.last_name:",
        ),
        (
            natural_with("date_of_birth", json!("17.08.1995")),
            "sender_data.date_of_birth:",
        ),
        (
            natural_with("date_of_birth", json!("2999-01-01")),
            "sender_data.date_of_birth:",
        ),
        (natural_with("email", json!("nobody")), "sender_data.email:"),
        (
            natural_with("passport", json!("X1")),
            "sender_data.passport:",
        ),
        (
            json!({"receiver_type": "legal", "receiver_data": {"legal_name": "Example GmbH", "country_of_registration": "Germany"}}),
            "receiver_data.country_of_registration:",
        ),
        (
            json!({"receiver_type": "legal", "receiver_data": {"country_of_registration": "DEU"}}),
            "receiver_data.legal_name:",
        ),
        (
            json!({"receiver_type": "self", "receiver_data": legal()}),
            "receiver_data:",
        ),
        (json!({"receiver_type": "legal"}), "receiver_data:"),
        (
            json!({"receiver_type": "friend", "receiver_data": legal()}),
            "receiver_type:",
        ),
    ];
    for (i, (extra, field)) in cases.into_iter().enumerate() {
        let r = app
            .withdraw(&format!("bad-{i}"), &body_with("u1", extra.clone()))
            .await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{extra}");
        let problem: Value = r.json().await.unwrap();
        assert_eq!(problem["code"], "validation_failed", "{extra}");
        let detail = problem["detail"].as_str().unwrap();
        assert!(
            detail.starts_with(field),
            "{extra}: {detail:?} should name {field}"
        );
        assert_no_personal_data("a refusal", detail);
        assert!(
            !detail.contains("2999") && !detail.contains("Germany"),
            "{detail}"
        );
    }
    assert_eq!(
        app.balance("u1", "EUR").await,
        ("100.00".into(), "0.00".into())
    );
    assert!(app.sim.submissions().is_empty());
}

#[tokio::test]
async fn the_same_key_with_different_travel_rule_data_is_a_conflict() {
    let app = spawn_app().await;
    app.fund("u1", "EUR", "300.00").await;
    let first = with_both("u1");
    assert_eq!(
        app.withdraw("mica-key", &first).await.status(),
        StatusCode::CREATED
    );
    assert_eq!(
        app.withdraw("mica-key", &first).await.status(),
        StatusCode::OK
    );
    let mut other = first.clone();
    other["sender_data"]["first_name"] = json!("Fritz");
    let r = app.withdraw("mica-key", &other).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let problem: Value = r.json().await.unwrap();
    assert_eq!(problem["code"], "idempotency_key_reused");
    let mut own_wallet = first.clone();
    own_wallet["receiver_type"] = json!("self");
    own_wallet.as_object_mut().unwrap().remove("receiver_data");
    assert_eq!(
        app.withdraw("mica-key", &own_wallet).await.status(),
        StatusCode::CONFLICT
    );
    assert_eq!(
        app.balance("u1", "EUR").await,
        ("200.00".into(), "100.00".into())
    );
}

async fn stored_data(app: &crate::helpers::TestApp, id: &str) -> bool {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM withdrawal_travel_rules WHERE withdrawal_id = $1::uuid)",
    )
    .bind(id)
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn purge_deletes_old_terminal_data_and_keeps_open_and_recent_ones() {
    // The test drives the purge itself; the loop is off so it cannot get there first.
    let app = spawn_app_with(|s| s.travel_rule.purge_interval_secs = 0).await;
    app.fund("u1", "EUR", "300.00").await;
    let old_confirmed = app.withdraw_ok(&with_both("u1")).await;
    let recent_confirmed = app.withdraw_ok(&with_both("u1")).await;
    let old_open = app.withdraw_ok(&with_both("u1")).await;
    for w in [&old_confirmed, &recent_confirmed] {
        let foreign_id = w["foreign_id"].as_str().unwrap();
        assert_eq!(
            app.sim
                .send_callback(foreign_id, "confirmed")
                .await
                .unwrap(),
            200
        );
    }
    let id = |w: &Value| w["id"].as_str().unwrap().to_owned();
    // Forty days ago, past the thirty of retention.
    sqlx::query(
        "UPDATE withdrawals SET updated_at = now() - interval '40 days' WHERE id = ANY($1::uuid[])",
    )
    .bind(vec![id(&old_confirmed), id(&old_open)])
    .execute(&app.pool)
    .await
    .unwrap();

    let purger = Purger::new(app.pool.clone(), 30);
    assert_eq!(purger.purge_once().await.unwrap(), 1);
    assert!(
        !stored_data(&app, &id(&old_confirmed)).await,
        "old terminal data is deleted"
    );
    assert!(
        stored_data(&app, &id(&recent_confirmed)).await,
        "recent terminal data is kept"
    );
    assert!(
        stored_data(&app, &id(&old_open)).await,
        "an open withdrawal keeps its data"
    );
    assert_eq!(purger.purge_once().await.unwrap(), 0);
    assert_eq!(
        app.withdrawal(&id(&old_confirmed)).await["status"],
        "confirmed"
    );
    app.assert_invariants().await;
}

#[tokio::test]
async fn a_bad_travel_rule_default_refuses_to_start_and_names_the_key() {
    let mut settings = test_settings("never_created", "http://127.0.0.1:9");
    settings.travel_rule.default_receiver_type = Some("natural".into());
    settings.travel_rule.default_receiver_data =
        json!({"first_name": "A", "last_name": "B", "date_of_birth": "1995-13-01"})
            .as_object()
            .cloned();
    let Err(err) = Application::build(settings).await else {
        panic!("a bad default must refuse to start");
    };
    let message = err.to_string();
    assert!(
        message.contains("travel_rule.default_receiver_data.date_of_birth"),
        "{message}"
    );
    assert!(!message.contains("1995-13-01"), "{message}");
}

/// Fails if `text` holds any personal value above, in any case.
fn assert_scrubbed(what: &str, text: &str) {
    let lower = text.to_lowercase();
    for value in PERSONAL {
        assert!(
            !lower.contains(&value.to_lowercase()),
            "{what} holds {value}: {text}"
        );
    }
}

/// Every row of every table of the test's database, as text (bytes read as UTF-8).
async fn everything_stored(app: &crate::helpers::TestApp) -> String {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables
         WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let mut all = String::new();
    for table in tables {
        let rows: Option<String> = sqlx::query_scalar(&format!(
            "SELECT string_agg(row_to_json(t)::text, E'\\n') FROM {table} t"
        ))
        .fetch_one(&app.pool)
        .await
        .unwrap();
        all += &rows.unwrap_or_default();
    }
    let bodies: Vec<Vec<u8>> = sqlx::query_scalar("SELECT raw_body FROM callbacks")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    for body in bodies {
        all += &String::from_utf8_lossy(&body);
    }
    all
}

#[tokio::test]
async fn provider_text_quoting_travel_rule_data_is_scrubbed_on_arrival_and_purged_for_good() {
    let app = spawn_app_with(|s| s.travel_rule.purge_interval_secs = 0).await;
    app.fund("u1", "EUR", "300.00").await;

    // A refusal that quotes the sender: rejected, its reason scrubbed wherever it goes.
    app.sim.push_behavior(SubmitBehavior::Refuse {
        status: 400,
        field: Some("address".into()),
        message: "sender müller (date of birth 1995-08-17) may not withdraw here".into(),
    });
    let refused = app.withdraw_ok(&with_both("u1")).await;
    assert_eq!(refused["status"], "rejected", "{refused}");
    let error = refused["error"].as_str().unwrap();
    assert!(
        error.contains("sender [redacted] (date of birth [redacted])"),
        "{error}"
    );
    assert_scrubbed("the API's error", error);

    // An answer we cannot read as a decision, quoting the receiver: its body becomes the
    // job's last error, scrubbed.
    app.sim.push_behavior(SubmitBehavior::Refuse {
        status: 400,
        field: None,
        message: "receiver EXAMPLE GMBH is not whitelisted for friedrich@example.com".into(),
    });
    let unknown = app.withdraw_ok(&with_both("u1")).await;
    assert_eq!(unknown["status"], "pending", "{unknown}");
    let last_error: String =
        sqlx::query_scalar("SELECT last_error FROM submission_jobs WHERE withdrawal_id = $1::uuid")
            .bind(unknown["id"].as_str().unwrap())
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(last_error.contains("receiver [redacted]"), "{last_error}");

    // A callback whose error quotes the sender: applied, the text scrubbed before it is stored.
    let mut callback: Value =
        serde_json::from_slice(&app.callback_for(&unknown, "cancelled")).unwrap();
    callback["error"] = json!("Declined: FRIEDRICH MÜLLER failed screening");
    let callback = serde_json::to_vec(&callback).unwrap();
    assert_eq!(app.post_callback(&callback).await, StatusCode::OK);
    let cancelled = app.withdrawal(unknown["id"].as_str().unwrap()).await;
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
    assert_eq!(
        cancelled["error"],
        "Declined: [redacted] [redacted] failed screening"
    );

    // Nothing stored holds a value but the travel-rule table and the callback as received.
    let payloads: Vec<Value> = sqlx::query_scalar("SELECT payload FROM notification_outbox")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert!(payloads.iter().any(|p| p["data"]["error"]
        .as_str()
        .is_some_and(|e| e.contains("[redacted]"))));
    for (what, sql) in [
        ("withdrawals", "SELECT string_agg(row_to_json(w)::text, '') FROM withdrawals w"),
        ("notification_outbox", "SELECT string_agg(payload::text || coalesce(last_error, ''), '') FROM notification_outbox"),
        ("submission_jobs", "SELECT string_agg(row_to_json(j)::text, '') FROM submission_jobs j"),
        ("audit_log", "SELECT string_agg(row_to_json(a)::text, '') FROM audit_log a"),
        ("callbacks' verdicts", "SELECT string_agg(coalesce(detail, ''), '') FROM callbacks"),
    ] {
        let text: Option<String> = sqlx::query_scalar(sql).fetch_one(&app.pool).await.unwrap();
        assert_scrubbed(what, &text.unwrap_or_default());
    }

    // Past retention the values are scrubbed from what still quotes them, then deleted.
    sqlx::query("UPDATE withdrawals SET updated_at = now() - interval '40 days'")
        .execute(&app.pool)
        .await
        .unwrap();
    assert_eq!(
        Purger::new(app.pool.clone(), 30)
            .purge_once()
            .await
            .unwrap(),
        2
    );
    assert_scrubbed(
        "the database after the purge",
        &everything_stored(&app).await,
    );
    let kept: Vec<u8> = sqlx::query_scalar("SELECT raw_body FROM callbacks WHERE foreign_id = $1")
        .bind(unknown["foreign_id"].as_str().unwrap())
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let kept: Value = serde_json::from_slice(&kept).expect("the stored body is still JSON");
    assert_eq!(
        kept["error"],
        "Declined: [redacted] [redacted] failed screening"
    );
    assert_eq!(kept["status"], "cancelled");
    app.assert_invariants().await;
}
