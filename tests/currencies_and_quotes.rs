//! The currency list comes from CoinsPaid and drives validation; quotes are CoinsPaid's
//! estimates, validated like a withdrawal.

mod common;

use common::*;
use payoutd::domain::currency::{CurrencyCatalog, CurrencyInfo};
use payoutd::domain::Currency;
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn quote(app: &TestApp, body: Value) -> (StatusCode, Value) {
    let r = app
        .http
        .post(app.url("/v1/quotes"))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status(), r.json().await.unwrap())
}

#[tokio::test]
async fn the_currency_list_is_coinspaids_and_validation_follows_it() {
    let app = spawn_app().await;
    let (status, list) = app.get_json("/v1/currencies").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        list["source"], "coinspaid",
        "loaded from the provider at start"
    );
    let codes: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["currency"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["BTC", "ETH", "EUR", "LTC", "USD", "USDTT", "XRP"]);
    let xrp = &list["data"][6];
    assert_eq!(
        (xrp["type"].as_str(), xrp["tag_required"].as_bool()),
        (Some("crypto"), Some(true))
    );

    // CoinsPaid raises the BTC minimum and drops LTC; after a refresh payoutd follows.
    let builtin = CurrencyCatalog::builtin();
    let changed = CurrencyCatalog::new(builtin.all().filter(|c| c.currency.as_str() != "LTC").map(
        |c| {
            let mut c: CurrencyInfo = c.clone();
            if c.currency == Currency::parse("BTC").unwrap() {
                c.minimum_withdrawal = dec("0.01");
            }
            c
        },
    ));
    app.sim.set_catalog(changed);
    assert_eq!(app.currencies.refresh().await.unwrap(), 6);
    let (_, list) = app.get_json("/v1/currencies").await;
    assert_eq!(list["data"][0]["minimum_withdrawal"], "0.01");
    assert!(list["refreshed_at"].is_string());

    app.fund("u1", "BTC", "1.00000000").await;
    let below = app
        .withdraw(
            "k1",
            &json!({"user_id":"u1","amount":"0.005","currency":"BTC","address":BTC_ADDRESS}),
        )
        .await;
    assert_eq!(below.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        below.json::<Value>().await.unwrap()["code"],
        "below_minimum"
    );
    let dropped = app.withdraw("k2", &json!({"user_id":"u1","amount":"10.00","currency":"EUR","convert_to":"LTC","address":"ltc1qg42tkwuuxefutzxezdkdel39gfstuap288mfea"})).await;
    assert_eq!(
        dropped.json::<Value>().await.unwrap()["code"],
        "unsupported_currency"
    );
    assert_eq!(
        app.withdraw(
            "k3",
            &json!({"user_id":"u1","amount":"0.02","currency":"BTC","address":BTC_ADDRESS})
        )
        .await
        .status(),
        StatusCode::CREATED
    );
    app.assert_invariants().await;
}

#[tokio::test]
async fn quotes_are_coinspaids_estimate_after_the_same_checks_as_a_withdrawal() {
    let app = spawn_app().await;
    let (status, q) = quote(
        &app,
        json!({"amount":"100.00","currency":"EUR","convert_to":"BTC"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{q}");
    assert_eq!(
        (
            q["amount"].as_str(),
            q["currency"].as_str(),
            q["convert_to"].as_str()
        ),
        (Some("100.00"), Some("EUR"), Some("BTC"))
    );
    let receive: rust_decimal::Decimal = q["receive_amount"].as_str().unwrap().parse().unwrap();
    assert!(receive > dec("0.0016") && receive < dec("0.0017"), "{q}");
    assert_eq!(
        q["receive_amount"]
            .as_str()
            .unwrap()
            .split('.')
            .nth(1)
            .unwrap()
            .len(),
        8,
        "BTC precision"
    );
    assert!(q["quoted_at"].is_string());

    for (body, code) in [
        (
            json!({"amount":100,"currency":"EUR","convert_to":"BTC"}),
            "invalid_amount",
        ),
        (
            json!({"amount":"1.001","currency":"EUR","convert_to":"BTC"}),
            "invalid_amount",
        ),
        (
            json!({"amount":"100","currency":"EUR","convert_to":"USD"}),
            "unsupported_pair",
        ),
        (
            json!({"amount":"100","currency":"XYZ","convert_to":"BTC"}),
            "unsupported_currency",
        ),
        (
            json!({"amount":"100","currency":"EUR"}),
            "validation_failed",
        ),
    ] {
        let (status, problem) = quote(&app, body.clone()).await;
        assert_eq!(
            (status, problem["code"].as_str().unwrap()),
            (StatusCode::UNPROCESSABLE_ENTITY, code),
            "{body}"
        );
    }
    assert!(app.sim.submissions().is_empty(), "a quote creates nothing");

    let down = spawn_app_with(|s| s.coinspaid.api_url = "http://127.0.0.1:9".into()).await;
    let (status, problem) = quote(
        &down,
        json!({"amount":"100.00","currency":"EUR","convert_to":"BTC"}),
    )
    .await;
    assert_eq!(
        (status, problem["code"].as_str().unwrap()),
        (StatusCode::BAD_GATEWAY, "provider_unavailable")
    );
    let (_, list) = down.get_json("/v1/currencies").await;
    assert_eq!(
        list["source"], "builtin",
        "CoinsPaid unreachable at start: the built-in list serves"
    );
}
