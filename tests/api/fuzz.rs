//! Property tests over random and mutated input: the parsers never panic, the HTTP edge never
//! answers 500 for a client's mistake, and no money moves without a valid signature.

use crate::helpers::*;
use payoutd::coinspaid::callback;
use payoutd::domain::Amount;
use payoutd::domain::CurrencyCatalog;
use payoutd::withdrawals::create::request::{validate, WithdrawalInput};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use rust_decimal::Decimal;
use serde_json::{json, Value};

/// Byte-level mutations of a valid body: overwrite, truncate.
fn mutated(base: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    (
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
        prop::option::of(any::<prop::sample::Index>()),
    )
        .prop_map(move |(edits, cut)| {
            let mut body = base.clone();
            for (at, byte) in edits {
                let i = at.index(body.len());
                body[i] = byte;
            }
            if let Some(cut) = cut {
                body.truncate(cut.index(body.len() + 1));
            }
            body
        })
}

fn any_body(base: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![prop::collection::vec(any::<u8>(), 0..300), mutated(base)]
}

/// A JSON value of any type, biased towards what a field might plausibly hold.
fn field_value(plausible: &'static [&'static str]) -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        3 => prop::sample::select(plausible).prop_map(|s| Some(json!(s))),
        1 => ".{0,20}".prop_map(|s| Some(json!(s))),
        1 => any::<f64>().prop_map(|n| Some(json!(n))),
        1 => any::<i64>().prop_map(|n| Some(json!(n))),
        1 => Just(Some(Value::Null)),
        1 => Just(Some(json!([1, "x"]))),
        1 => Just(None),
    ]
}

fn withdrawal_body() -> impl Strategy<Value = Value> {
    (
        field_value(&["u1", "u2", "", "a b"]),
        field_value(&[
            "10.00",
            "0.01",
            "1e3",
            "-5",
            "99999999999999999999",
            "5.555",
            "100000.00",
        ]),
        field_value(&["EUR", "BTC", "XRP", "eur", "DOGE"]),
        field_value(&["BTC", "ETH", "USD", "EUR", "XRP"]),
        field_value(&[
            BTC_ADDRESS,
            "0xde0B295669a9FD93d5F28D9Ec85E40f4cb697BAe",
            "rHb9CJAWyB4rj91VRWn96DkukG4bwdtyTh",
            "x",
        ]),
        field_value(&["12345", ""]),
        prop::option::of(Just(json!(true))),
    )
        .prop_map(
            |(user, amount, currency, convert_to, address, tag, extra)| {
                let mut body = serde_json::Map::new();
                for (key, value) in [
                    ("user_id", user),
                    ("amount", amount),
                    ("currency", currency),
                    ("convert_to", convert_to),
                    ("address", address),
                    ("tag", tag),
                    ("surprise", extra),
                ] {
                    if let Some(v) = value {
                        body.insert(key.into(), v);
                    }
                }
                Value::Object(body)
            },
        )
}

proptest! {
    #![proptest_config(Config { cases: 2000, ..Config::default() })]

    #[test]
    fn amount_parsing_never_panics_and_round_trips(text in ".{0,40}|[0-9]{1,20}(\\.[0-9]{0,20})?") {
        if let Ok(amount) = Amount::parse(&text) {
            prop_assert!(amount.value() > Decimal::ZERO);
            prop_assert_eq!(Amount::parse(&amount.to_string()).unwrap(), amount);
        }
    }

    #[test]
    fn callback_parsing_never_panics(body in any_body(callback_body("pd-x", "confirmed", 1))) {
        let _ = callback::parse(&body);
    }

    #[test]
    fn withdrawal_validation_never_panics(user in ".{0,10}", amount in ".{0,12}", currency in "[A-Z]{0,6}", convert_to in prop::option::of("[A-Z]{0,6}"), address in ".{0,50}", tag in prop::option::of(".{0,8}")) {
        let input = WithdrawalInput { user_id: user, amount, currency, convert_to, address, tag, end_user_reference: None, reference: None, travel_rule: Default::default() };
        let _ = validate(&input, &CurrencyCatalog::builtin(), &Default::default());
    }
}

async fn ledger_total(app: &TestApp) -> (i64, Option<Decimal>) {
    sqlx::query_as("SELECT count(*), sum(amount) FROM ledger_entries")
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

/// HTTP properties share one application; proptest drives the cases, tokio runs them.
#[test]
fn the_http_edge_never_fails_a_client_and_never_trusts_an_unsigned_callback() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let app = runtime.block_on(async {
        let app = spawn_app().await;
        app.fund("u1", "EUR", "1000.00").await;
        app.fund("u1", "XRP", "1000").await;
        app
    });
    let w = runtime.block_on(app.withdraw_ok(&eur_to_btc("u1", "10.00")));
    let fid = w["foreign_id"].as_str().unwrap().to_owned();
    let valid = callback_body(&fid, "confirmed", 1);
    let mut runner = TestRunner::new(Config {
        cases: 300,
        ..Config::default()
    });

    // Unsigned, forged or tampered callbacks: always 401, and the ledger does not move.
    let before = runtime.block_on(ledger_total(&app));
    let forged = (
        any_body(valid.clone()),
        prop::option::of("[0-9a-f]{128}"),
        any::<bool>(),
    );
    runner
        .run(&forged, |(body, signature, with_key)| {
            let key = with_key.then_some(KEY);
            let status = runtime.block_on(app.post_callback_raw(&body, key, signature.as_deref()));
            prop_assert!(
                status == 401 || status == 413,
                "forged callback got {status}"
            );
            Ok(())
        })
        .unwrap();
    assert_eq!(
        runtime.block_on(ledger_total(&app)),
        before,
        "money moved without a valid signature"
    );

    // Correctly signed but mangled bodies: acknowledged or refused as invalid, never a 500.
    runner
        .run(&mutated(valid.clone()), |body| {
            let status = runtime.block_on(app.post_callback(&body));
            prop_assert!(
                status == 200 || status == 400,
                "signed callback got {status}"
            );
            Ok(())
        })
        .unwrap();

    // Random withdrawal requests: a client mistake is a 4xx, never a 500.
    runner
        .run(&(withdrawal_body(), "[a-z0-9-]{1,12}"), |(body, key)| {
            let response = runtime.block_on(app.withdraw(&key, &body));
            let status = response.status().as_u16();
            prop_assert!(
                [200, 201, 400, 409, 422].contains(&status),
                "withdrawal {body} got {status}"
            );
            if status >= 400 {
                let problem: Value = runtime.block_on(response.json()).unwrap();
                prop_assert!(problem["code"].is_string());
            }
            Ok(())
        })
        .unwrap();

    // Arbitrary bytes as a credit body.
    runner
        .run(&prop::collection::vec(any::<u8>(), 0..200), |body| {
            let response = runtime
                .block_on(
                    app.http
                        .post(app.url("/v1/users/u9/credits"))
                        .bearer_auth(TOKEN)
                        .body(body)
                        .send(),
                )
                .unwrap();
            prop_assert!(
                response.status().is_client_error(),
                "credit got {}",
                response.status()
            );
            Ok(())
        })
        .unwrap();

    runtime.block_on(app.assert_invariants());
}
