//! The currency list and the pair list come from CoinsPaid and drive validation; withdrawal
//! minimums come from configuration and CoinsPaid's documented defaults, never from the
//! deposit minimum; quotes are CoinsPaid's estimates, passed through in its own terms.

use crate::helpers::*;
use payoutd::domain::Currency;
use payoutd::domain::{CurrencyCatalog, CurrencyInfo};
use payoutd::simulator::{PairEndpoints, SimPair};
use reqwest::StatusCode;
use serde_json::{json, Value};

const ETH_ADDRESS: &str = "0xde0B295669a9FD93d5F28D9Ec85E40f4cb697BAe";

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

async fn code_of(r: reqwest::Response) -> (StatusCode, String) {
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    (status, body["code"].as_str().unwrap_or_default().to_owned())
}

fn currency<'a>(list: &'a Value, code: &str) -> &'a Value {
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["currency"] == code)
        .unwrap_or_else(|| panic!("{code} not listed: {list}"))
}

fn listed_pairs(list: &Value) -> Vec<(String, String, String)> {
    list["pairs"]
        .as_array()
        .map(|pairs| {
            pairs
                .iter()
                .map(|p| {
                    (
                        p["currency"].as_str().unwrap().to_owned(),
                        p["convert_to"].as_str().unwrap().to_owned(),
                        p["min_amount"].as_str().unwrap().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The simulator's catalogue with `edit` applied to every currency.
fn sim_catalog(edit: impl Fn(&mut CurrencyInfo)) -> CurrencyCatalog {
    CurrencyCatalog::new(CurrencyCatalog::builtin().all().map(|c| {
        let mut c = c.clone();
        edit(&mut c);
        c
    }))
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
    assert_eq!(list["pairs_source"], "coinspaid_rates");
    let codes: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["currency"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["BTC", "ETH", "EUR", "LTC", "USD", "USDTT", "XRP"]);
    let xrp = currency(&list, "XRP");
    assert_eq!(
        (xrp["type"].as_str(), xrp["tag_required"].as_bool()),
        (Some("crypto"), Some(true))
    );

    // CoinsPaid drops LTC and lists a far higher BTC *deposit* minimum; after a refresh payoutd
    // follows the list, and the withdrawal minimum stays the documented one.
    let is = |c: &CurrencyInfo, code: &str| c.currency == Currency::parse(code).unwrap();
    let changed = sim_catalog(|c| {
        if is(c, "BTC") {
            c.minimum_deposit = Some(dec("0.5"));
        }
    });
    app.sim.set_catalog(CurrencyCatalog::new(
        changed.all().filter(|c| !is(c, "LTC")).cloned(),
    ));
    assert_eq!(app.currencies.refresh().await.unwrap(), 6);
    let (_, list) = app.get_json("/v1/currencies").await;
    let btc = currency(&list, "BTC");
    assert_eq!(
        (
            btc["minimum_withdrawal"].as_str(),
            btc["minimum_deposit"].as_str()
        ),
        (Some("0.0002"), Some("0.5"))
    );
    assert!(list["refreshed_at"].is_string());

    app.fund("u1", "BTC", "1.00000000").await;
    let plain_btc = |amount: &str| json!({"user_id":"u1","amount":amount,"currency":"BTC","address":BTC_ADDRESS});
    assert_eq!(
        code_of(app.withdraw("k1", &plain_btc("0.00015")).await).await,
        (StatusCode::UNPROCESSABLE_ENTITY, "below_minimum".into()),
        "under CoinsPaid's documented withdrawal minimum (0.0002)"
    );
    let dropped = app.withdraw("k2", &json!({"user_id":"u1","amount":"10.00","currency":"EUR","convert_to":"LTC","address":"ltc1qg42tkwuuxefutzxezdkdel39gfstuap288mfea"})).await;
    assert_eq!(code_of(dropped).await.1, "unsupported_currency");
    assert_eq!(
        app.withdraw("k3", &plain_btc("0.001")).await.status(),
        StatusCode::CREATED,
        "far under the deposit minimum, over the withdrawal minimum"
    );
    app.assert_invariants().await;
}

#[tokio::test]
async fn withdrawal_minimums_come_from_configuration_never_from_the_deposit_minimum() {
    let app = spawn_app_with(|s| {
        s.withdrawal_minimums.insert("BTC".into(), "0.001".into());
        s.withdrawal_minimums.insert("EUR".into(), "50".into());
    })
    .await;
    let (_, list) = app.get_json("/v1/currencies").await;
    let btc = currency(&list, "BTC");
    assert_eq!(
        (
            btc["minimum_withdrawal"].as_str(),
            btc["minimum_deposit"].as_str()
        ),
        (Some("0.001"), Some("0.0001")),
        "the configured withdrawal minimum beside CoinsPaid's listed deposit minimum"
    );
    assert_eq!(currency(&list, "ETH")["minimum_withdrawal"], "0.01");

    app.fund("u1", "BTC", "1.00000000").await;
    app.fund("u1", "EUR", "100.00").await;
    let below = app
        .withdraw(
            "k1",
            &json!({"user_id":"u1","amount":"0.0005","currency":"BTC","address":BTC_ADDRESS}),
        )
        .await;
    assert_eq!(below.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let problem: Value = below.json().await.unwrap();
    assert_eq!(problem["code"], "below_minimum");
    assert!(
        problem["detail"].as_str().unwrap().contains("0.001 BTC"),
        "{problem}"
    );
    let (status, q) = quote(
        &app,
        json!({"amount":"20.00","currency":"EUR","convert_to":"BTC"}),
    )
    .await;
    assert_eq!(
        (status, q["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("below_minimum"))
    );
    assert_eq!(
        app.withdraw(
            "k2",
            &json!({"user_id":"u1","amount":"0.001","currency":"BTC","address":BTC_ADDRESS})
        )
        .await
        .status(),
        StatusCode::CREATED
    );
    assert_eq!(app.sim.submissions().len(), 1, "the refusals sent nothing");
    assert_eq!(
        app.balance("u1", "EUR").await,
        ("100.00".into(), "0.00".into())
    );
    app.assert_invariants().await;
}

#[tokio::test]
async fn a_pair_coinspaid_does_not_list_is_unsupported_and_a_pair_minimum_applies() {
    let app = spawn_app().await;
    assert!(app.sim.remove_pair("EUR", "ETH"));
    let pairs = app
        .sim
        .pairs()
        .into_iter()
        .map(|p| match (p.from.as_str(), p.to.as_str()) {
            ("EUR", "BTC") => SimPair::new("EUR", "BTC", dec("25.00000000")),
            _ => p,
        })
        .collect();
    app.sim.set_pairs(pairs);
    app.currencies.refresh().await.unwrap();

    let (_, list) = app.get_json("/v1/currencies").await;
    let listed = listed_pairs(&list);
    assert!(
        listed.contains(&("EUR".into(), "BTC".into(), "25".into())),
        "{listed:?}"
    );
    assert!(!listed.iter().any(|(f, t, _)| f == "EUR" && t == "ETH"));

    app.fund("u1", "EUR", "100.00").await;
    let to_eth = json!({"user_id":"u1","amount":"30.00","currency":"EUR","convert_to":"ETH","address":ETH_ADDRESS});
    assert_eq!(
        code_of(app.withdraw("k1", &to_eth).await).await,
        (StatusCode::UNPROCESSABLE_ENTITY, "unsupported_pair".into()),
        "ETH is a currency, but CoinsPaid lists no EUR -> ETH pair"
    );
    let (status, q) = quote(
        &app,
        json!({"amount":"30.00","currency":"EUR","convert_to":"ETH"}),
    )
    .await;
    assert_eq!(
        (status, q["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("unsupported_pair"))
    );
    assert_eq!(
        code_of(app.withdraw("k2", &eur_to_btc("u1", "10.00")).await).await,
        (StatusCode::UNPROCESSABLE_ENTITY, "below_minimum".into()),
        "under the pair's min_amount"
    );
    assert!(app.sim.submissions().is_empty(), "nothing sent");
    assert_eq!(
        app.balance("u1", "EUR").await,
        ("100.00".into(), "0.00".into())
    );
    app.withdraw_ok(&eur_to_btc("u1", "25.00")).await;
    app.assert_invariants().await;
}

#[tokio::test]
async fn without_a_pair_list_the_builtin_rule_serves_and_says_so() {
    let app = spawn_app().await;
    app.sim.remove_pair("EUR", "ETH");
    app.fund("u1", "EUR", "100.00").await;
    let to_eth = |amount: &str| json!({"user_id":"u1","amount":amount,"currency":"EUR","convert_to":"ETH","address":ETH_ADDRESS});

    // An older CoinsPaid: rates answers 404, pairs answers.
    app.sim.set_pair_endpoints(PairEndpoints::PairsOnly);
    app.currencies.refresh().await.unwrap();
    let (_, list) = app.get_json("/v1/currencies").await;
    assert_eq!(list["pairs_source"], "coinspaid_pairs");
    assert_eq!(
        code_of(app.withdraw("k1", &to_eth("10.00")).await).await.1,
        "unsupported_pair"
    );

    // A list that fails to load keeps the one in force.
    app.sim.set_pair_endpoints(PairEndpoints::Failing);
    app.currencies.refresh().await.unwrap();
    let (_, list) = app.get_json("/v1/currencies").await;
    assert_eq!(list["pairs_source"], "coinspaid_pairs");

    // Neither endpoint exists: the built-in rule, said so, and withdrawals still go through.
    app.sim.set_pair_endpoints(PairEndpoints::Neither);
    app.currencies.refresh().await.unwrap();
    let (_, list) = app.get_json("/v1/currencies").await;
    assert_eq!(
        (list["pairs_source"].as_str(), &list["pairs"]),
        (Some("builtin"), &Value::Null)
    );
    assert_eq!(list["source"], "coinspaid", "the currency list still loads");
    app.withdraw_ok(&to_eth("10.00")).await;
    app.withdraw_ok(&eur_to_btc("u1", "10.00")).await;
    assert_eq!(
        code_of(
            app.withdraw(
                "k2",
                &json!({"user_id":"u1","amount":"10.00","currency":"EUR","convert_to":"USD","address":BTC_ADDRESS})
            )
            .await
        )
        .await
        .1,
        "unsupported_pair",
        "the built-in rule still delivers only crypto"
    );
    app.assert_invariants().await;
}

#[tokio::test]
async fn quotes_pass_through_coinspaids_price_direction_and_fix_times() {
    let app = spawn_app().await;
    let before = chrono::Utc::now().timestamp();
    let (status, q) = quote(
        &app,
        json!({"amount":"100.00","currency":"EUR","convert_to":"BTC"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{q}");
    // 1 BTC = 60000 EUR in the simulator: one EUR buys 0.00001667 BTC (receiver units for one
    // sender unit), not 60000.
    assert_eq!(q["price"], "0.00001667", "{q}");
    let receive: rust_decimal::Decimal = q["receive_amount"].as_str().unwrap().parse().unwrap();
    let price: rust_decimal::Decimal = q["price"].as_str().unwrap().parse().unwrap();
    assert!((dec("100") * price - receive).abs() < dec("0.00001"), "{q}");
    let fixed = q["ts_fixed"].as_i64().unwrap();
    assert!(
        fixed >= before && fixed <= chrono::Utc::now().timestamp(),
        "{q}"
    );
    assert_eq!(q["fix_period"], 60);
    assert_eq!(q["ts_release"].as_i64(), Some(fixed + 60));
    assert_eq!(
        q["quoted_at"],
        chrono::DateTime::from_timestamp(fixed, 0)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    assert_eq!(
        (q["fee_currency"].as_str(), q["fee_amount"].as_str()),
        (Some("EUR"), Some("0.50")),
        "the fee as CoinsPaid gives it"
    );
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

    let down =
        spawn_app_with(|s| s.coinspaid.api_url = Some("http://127.0.0.1:9".parse().unwrap())).await;
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
        (list["source"].as_str(), list["pairs_source"].as_str()),
        (Some("builtin"), Some("builtin")),
        "CoinsPaid unreachable at start: the built-in list and pair rule serve"
    );
}

#[tokio::test]
async fn amounts_are_held_exactly_as_written_or_refused() {
    let app = spawn_app().await;
    // CoinsPaid lists ETH with 18 decimals: 10 integer digits are left.
    app.sim.set_catalog(sim_catalog(|c| {
        if c.currency == Currency::parse("ETH").unwrap() {
            c.precision = 18;
        }
    }));
    app.currencies.refresh().await.unwrap();

    let exact = "1234567890.123456789012345678"; // 28 digits
    let r = app.credit("u1", "ETH", exact, "dep-1").await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let credited: Value = r.json().await.unwrap();
    assert_eq!(credited["entry"]["amount"], exact, "{credited}");
    assert_eq!(credited["balance"]["available"], exact);

    for (i, amount) in [
        "123456789012345.123456789012345678", // 33 digits: rust_decimal would keep 28
        "12345678901.123456789012345678",     // 29 digits
        "12345678901",                        // 11 integer digits for an 18-decimal currency
    ]
    .into_iter()
    .enumerate()
    {
        assert_eq!(
            code_of(app.credit("u1", "ETH", amount, &format!("dep-x{i}")).await).await,
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_amount".into()),
            "credit {amount}"
        );
        let body = json!({"user_id":"u1","amount":amount,"currency":"ETH","address":ETH_ADDRESS});
        assert_eq!(
            code_of(app.withdraw(&format!("k-x{i}"), &body).await).await,
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_amount".into()),
            "withdraw {amount}"
        );
    }
    assert!(app.sim.submissions().is_empty(), "nothing sent");

    let small = "0.123456789012345678";
    let w = app
        .withdraw_ok(&json!({"user_id":"u1","amount":small,"currency":"ETH","address":ETH_ADDRESS}))
        .await;
    assert_eq!(w["amount"], small);
    let sent = app.sim.submissions()[0].request.clone().unwrap();
    assert_eq!(sent.amount, small, "sent to CoinsPaid exactly as written");
    assert_eq!(
        app.balance("u1", "ETH").await,
        ("1234567890.000000000000000000".into(), small.into())
    );
    app.assert_invariants().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_quotes_over_two_replicas_stay_within_coinspaids_budget() {
    let apps = std::sync::Arc::new(
        spawn_cluster(2, |s| {
            s.quotes.calculate_per_minute = 4;
        })
        .await,
    );
    // Two amount bands (64..128 and 128..256 EUR), asked at once through both replicas.
    let answers = concurrently(100, |i| {
        let apps = apps.clone();
        async move {
            let amount = if i % 2 == 0 {
                "100.00".to_owned()
            } else {
                format!("{}.00", 130 + i)
            };
            let (status, q) = quote(
                &apps[i % 2],
                json!({"amount": amount, "currency": "EUR", "convert_to": "BTC"}),
            )
            .await;
            (status, q)
        }
    })
    .await;
    for (status, q) in &answers {
        assert_eq!(*status, StatusCode::OK, "{q}");
        assert!(q["source"] == "fresh" || q["source"] == "recent", "{q}");
    }
    let fresh = answers
        .iter()
        .filter(|(_, q)| q["source"] == "fresh")
        .count();
    let calls = apps[0].sim.calculate_calls();
    assert!(
        (2..=4).contains(&calls),
        "{calls} calls to /v2/exchange/calculate"
    );
    assert_eq!(
        fresh, calls,
        "each call answered exactly one quote as fresh"
    );
    // A recent estimate is CoinsPaid's for its own amount, scaled to the one asked.
    let exact = answers
        .iter()
        .find(|(_, q)| q["amount"] == "100.00" && q["source"] == "fresh")
        .or_else(|| answers.iter().find(|(_, q)| q["amount"] == "100.00"))
        .unwrap();
    assert!(exact.1["receive_amount"]
        .as_str()
        .unwrap()
        .starts_with("0.00"));

    // New bands spend what is left of the budget; then the answer is 429 with Retry-After,
    // never a 502, and no call is made.
    let mut refused = None;
    for euros in [3, 5, 9, 17, 33] {
        let response = apps[1]
            .http
            .post(apps[1].url("/v1/quotes"))
            .bearer_auth(TOKEN)
            .json(&json!({"amount": format!("{euros}.00"), "currency": "EUR", "convert_to": "BTC"}))
            .send()
            .await
            .unwrap();
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            refused = Some(response);
            break;
        }
        assert_eq!(response.status(), StatusCode::OK);
    }
    let refused = refused.expect("the budget of 4 calls a minute ran out");
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let (_, code) = code_of(refused).await;
    assert_eq!(code, "rate_limited");
    assert_eq!(apps[0].sim.calculate_calls(), 4, "never beyond the budget");
    // A band with an estimate is still answered, as recent.
    let (status, q) = quote(
        &apps[1],
        json!({"amount": "110.00", "currency": "EUR", "convert_to": "BTC"}),
    )
    .await;
    assert_eq!(
        (status, q["source"].as_str()),
        (StatusCode::OK, Some("recent")),
        "{q}"
    );
}
