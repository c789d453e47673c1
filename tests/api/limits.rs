//! Withdrawal limits: per withdrawal and per rolling 24 hours, configured per currency and
//! overridable per user, enforced inside the hold transaction even under concurrency.

use std::sync::Arc;

use crate::helpers::*;
use payoutd::config::CurrencyLimits;
use reqwest::StatusCode;
use serde_json::{json, Value};

fn eur_limits(per_withdrawal: &str, per_day: &str) -> impl Fn(&mut payoutd::config::Settings) {
    let limits = CurrencyLimits {
        max_per_withdrawal: Some(dec(per_withdrawal)),
        max_per_day: Some(dec(per_day)),
    };
    move |s| {
        s.limits.insert("EUR".into(), limits.clone());
    }
}

async fn code_of(response: reqwest::Response) -> (StatusCode, String) {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    (status, body["code"].as_str().unwrap_or("").to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_withdrawals_cannot_exceed_the_daily_limit() {
    let app = Arc::new(spawn_app_with(eur_limits("150.00", "500.00")).await);
    app.fund("u1", "EUR", "10000.00").await;
    let statuses = concurrently(20, |i| {
        let app = app.clone();
        async move {
            code_of(
                app.withdraw(&format!("day-{i}"), &eur_to_btc("u1", "100.00"))
                    .await,
            )
            .await
        }
    })
    .await;
    let accepted = statuses
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .count();
    let limited = statuses
        .iter()
        .filter(|(s, c)| *s == StatusCode::UNPROCESSABLE_ENTITY && c == "limit_exceeded")
        .count();
    assert_eq!((accepted, limited), (5, 15), "{statuses:?}");
    assert_eq!(
        app.balance("u1", "EUR").await,
        ("9500.00".into(), "500.00".into())
    );

    // A cancelled withdrawal gives its share of the day back.
    let (_, page) = app.get_json("/v1/withdrawals?user_id=u1&limit=1").await;
    assert_eq!(
        app.post_callback(&app.callback_for(&page["data"][0], "cancelled"))
            .await,
        StatusCode::OK
    );
    assert_eq!(
        app.withdraw("day-again", &eur_to_btc("u1", "100.00"))
            .await
            .status(),
        StatusCode::CREATED
    );
    let (status, code) = code_of(app.withdraw("day-over", &eur_to_btc("u1", "1.00")).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "limit_exceeded")
    );
    app.assert_invariants().await;
}

#[tokio::test]
async fn per_withdrawal_limits_and_per_user_overrides() {
    let app = spawn_app_with(eur_limits("150.00", "500.00")).await;
    app.fund("u1", "EUR", "1000.00").await;
    app.fund("u2", "EUR", "1000.00").await;
    let (status, code) = code_of(app.withdraw("big", &eur_to_btc("u1", "150.01")).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "limit_exceeded")
    );
    assert_eq!(
        app.balance("u1", "EUR").await,
        ("1000.00".into(), "0.00".into()),
        "nothing held"
    );
    assert_eq!(
        app.withdraw("ok", &eur_to_btc("u1", "150.00"))
            .await
            .status(),
        StatusCode::CREATED
    );

    let put = |user: &str, body: Value| {
        let request = app
            .http
            .put(app.url(&format!("/v1/users/{user}/limits/EUR")))
            .bearer_auth(TOKEN)
            .json(&body);
        async move {
            let r = request.send().await.unwrap();
            (r.status(), r.json::<Value>().await.unwrap())
        }
    };
    let (status, limits) = put(
        "u2",
        json!({"max_per_withdrawal": "800.00", "max_per_day": "900.00"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        limits,
        json!({"currency": "EUR", "max_per_withdrawal": "800", "max_per_day": "900"})
    );
    assert_eq!(
        app.withdraw("u2-big", &eur_to_btc("u2", "700.00"))
            .await
            .status(),
        StatusCode::CREATED
    );
    let (_, u1) = app.get_json("/v1/users/u1/limits/EUR").await;
    assert_eq!(u1["max_per_withdrawal"], "150", "overrides are per user");

    let (status, problem) = put("u2", json!({"max_per_day": 900})).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("validation_failed"))
    );
    let (status, problem) = put("u2", json!({"max_per_day": "-1"})).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_amount"))
    );
    let (_, reset) = put(
        "u2",
        json!({"max_per_withdrawal": null, "max_per_day": null}),
    )
    .await;
    assert_eq!(
        reset["max_per_withdrawal"], "150",
        "back to the configured default"
    );
    let (status, _) = app.get_json("/v1/users/u2/limits/DOGE").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    app.assert_invariants().await;
}

#[tokio::test]
async fn without_limits_configured_nothing_is_limited() {
    let app = spawn_app().await;
    let (_, limits) = app.get_json("/v1/users/u1/limits/EUR").await;
    assert_eq!(
        limits,
        json!({"currency": "EUR", "max_per_withdrawal": null, "max_per_day": null})
    );
}
