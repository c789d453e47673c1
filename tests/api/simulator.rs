//! The simulator, driven by the service's real CoinsPaid client over loopback: it must
//! behave like CoinsPaid where the service depends on it.

use std::time::Duration;

use payoutd::coinspaid::signing::SecretString;
use payoutd::coinspaid::wire::WithdrawalRequest;
use payoutd::coinspaid::{
    CoinsPaidClient, Credentials, LookupError, ProviderError, Signer, SubmitOutcome,
};
use payoutd::simulator::{Simulator, SimulatorSettings, SubmitBehavior};
use serde_json::{json, Value};

const BTC: &str = "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq";

fn credentials(secret: &str) -> Credentials {
    Credentials {
        key: "sim-key".into(),
        secret: SecretString::new(secret),
    }
}

async fn simulator() -> Simulator {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    Simulator::spawn(
        SimulatorSettings {
            credentials: credentials("sim-secret"),
            callback_url: None,
            callback_delay: Duration::ZERO,
        },
        listener,
    )
    .await
    .unwrap()
}

fn client(sim: &Simulator, secret: &str, timeout: Duration) -> CoinsPaidClient {
    CoinsPaidClient::new(&sim.base_url(), Signer::new(credentials(secret)), timeout).unwrap()
}

fn request(foreign_id: &str) -> WithdrawalRequest {
    WithdrawalRequest {
        foreign_id: foreign_id.into(),
        amount: "100.00".into(),
        currency: "EUR".into(),
        convert_to: Some("BTC".into()),
        address: BTC.into(),
        tag: None,
        end_user_reference: Some("u1".into()),
        ..WithdrawalRequest::default()
    }
}

/// A signed POST the way CoinsPaid expects it, for endpoints the client does not wrap.
async fn signed_post(sim: &Simulator, path: &str, body: &Value) -> (u16, Value) {
    let bytes = serde_json::to_vec(body).unwrap();
    let signer = Signer::new(credentials("sim-secret"));
    let response = reqwest::Client::new()
        .post(format!("{}{path}", sim.base_url()))
        .header("X-Processing-Key", "sim-key")
        .header("X-Processing-Signature", signer.sign(&bytes))
        .header("content-type", "application/json")
        .body(bytes)
        .send()
        .await
        .unwrap();
    (
        response.status().as_u16(),
        response.json().await.unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn accepts_once_and_refuses_a_reused_foreign_id() {
    let sim = simulator().await;
    let client = client(&sim, "sim-secret", Duration::from_secs(2));
    client.ping().await.unwrap();
    let SubmitOutcome::Accepted(data) = client.submit_withdrawal(&request("f-1")).await else {
        panic!("expected acceptance");
    };
    assert_eq!(
        (
            data.foreign_id.as_str(),
            data.kind.as_deref(),
            data.status.as_deref()
        ),
        ("f-1", Some("withdrawal_exchange"), Some("processing"))
    );
    assert_eq!(data.receiver_currency.as_deref(), Some("BTC"));
    assert!(matches!(
        client.submit_withdrawal(&request("f-1")).await,
        SubmitOutcome::AlreadyExists { .. }
    ));
    // Looked up as documented; a fresh withdrawal is reported `not_confirmed`.
    let info = client.transaction_info("f-1").await.unwrap();
    assert_eq!(
        (info.provider_id, info.provider_status.as_str()),
        (Some(data.id), "not_confirmed")
    );
    // An unknown foreign_id: the stand-in's "no record" (CoinsPaid documents none), which
    // only ever allows a resend after the quiet period, never a release.
    assert!(matches!(
        client.transaction_info("f-unknown").await,
        Err(LookupError::NotFound { status: 400, .. })
    ));
    assert_eq!(sim.control().withdrawals().len(), 1);
}

#[tokio::test]
async fn a_wrong_signature_is_refused_with_the_documented_403_and_creates_nothing() {
    let sim = simulator().await;
    let forged = client(&sim, "not-the-secret", Duration::from_secs(2));
    match forged.submit_withdrawal(&request("f-2")).await {
        SubmitOutcome::OursToFix {
            status: 403,
            reason,
        } => {
            assert_eq!(reason, "Bad signature header (bad_header_signature)")
        }
        other => panic!("expected 403, got {other:?}"),
    }
    assert!(forged.ping().await.is_err());
    let subs = sim.control().submissions();
    assert_eq!(subs.len(), 1);
    assert!(!subs[0].signature_valid);
    assert!(sim.control().withdrawals().is_empty());
}

#[tokio::test]
async fn validates_like_coinspaid() {
    let sim = simulator().await;
    let client = client(&sim, "sim-secret", Duration::from_secs(2));
    let cases = [
        (
            WithdrawalRequest {
                address: "0xde0B295669a9FD93d5F28D9Ec85E40f4cb697BAe".into(),
                ..request("v1")
            },
            "address",
        ),
        (
            WithdrawalRequest {
                amount: "1.001".into(),
                ..request("v2")
            },
            "amount",
        ),
        (
            WithdrawalRequest {
                convert_to: None,
                ..request("v3")
            },
            "convert_to",
        ),
        (
            WithdrawalRequest {
                convert_to: Some("XRP".into()),
                address: "rHb9CJAWyB4rj91VRWn96DkukG4bwdtyTh".into(),
                ..request("v4")
            },
            "tag",
        ),
    ];
    for (req, field) in cases {
        match client.submit_withdrawal(&req).await {
            SubmitOutcome::Refused {
                status: 400,
                reason,
            } => assert!(reason.starts_with(field), "{reason}"),
            other => panic!("{field}: expected a refusal, got {other:?}"),
        }
    }
    assert!(sim.control().withdrawals().is_empty());
}

#[tokio::test]
async fn scripted_faults_look_like_coinspaid_faults() {
    let sim = simulator().await;
    let control = sim.control();
    let client = client(&sim, "sim-secret", Duration::from_millis(300));
    control.push_behavior(SubmitBehavior::ServerError { status: 503 });
    control.push_behavior(SubmitBehavior::Slow {
        delay: Duration::from_secs(2),
        callbacks: vec![],
    });
    control.push_behavior(SubmitBehavior::AcceptThenServerError { callbacks: vec![] });
    assert!(matches!(
        client.submit_withdrawal(&request("s-1")).await,
        SubmitOutcome::Unknown(ProviderError::Http { status: 503, .. })
    ));
    assert!(matches!(
        client.submit_withdrawal(&request("s-2")).await,
        SubmitOutcome::Unknown(ProviderError::Transport(_))
    ));
    assert!(matches!(
        client.submit_withdrawal(&request("s-3")).await,
        SubmitOutcome::Unknown(ProviderError::Http { status: 502, .. })
    ));
    // 503 created nothing; the slow and the 502 answers did.
    let created: Vec<String> = control
        .withdrawals()
        .into_iter()
        .map(|w| w.foreign_id)
        .collect();
    assert_eq!(created, ["s-2", "s-3"]);
    assert!(client.transaction_info("s-1").await.is_err());
}

#[tokio::test]
async fn reference_endpoints_and_admin_scripting_over_http() {
    let sim = simulator().await;
    let (status, list) = signed_post(&sim, "/v2/currencies/list", &json!({})).await;
    assert_eq!(status, 200);
    let codes: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["currency"].as_str().unwrap())
        .collect();
    for code in ["BTC", "ETH", "EUR", "LTC", "USD", "USDTT", "XRP"] {
        assert!(codes.contains(&code), "{code} missing from {codes:?}");
    }
    let btc = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["currency"] == "BTC")
        .unwrap();
    assert_eq!(
        (btc["type"].as_str(), btc["precision"].as_u64()),
        (Some("crypto"), Some(8))
    );

    let (status, quote) = signed_post(
        &sim,
        "/v2/exchange/calculate",
        &json!({"sender_currency":"EUR","receiver_currency":"BTC","sender_amount":"100.00"}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(quote["data"]["receiver_currency"], "BTC");
    assert!(quote["data"]["receiver_amount"]
        .as_str()
        .unwrap()
        .starts_with("0.0016"));

    let http = reqwest::Client::new();
    let pushed = http
        .post(format!("{}/_simulator/behaviors", sim.base_url()))
        .json(&json!({"kind":"refuse","status":422,"field":"amount","message":"Insufficient merchant balance"}))
        .send()
        .await
        .unwrap();
    assert_eq!(pushed.status(), 204);
    let client = client(&sim, "sim-secret", Duration::from_secs(2));
    assert!(matches!(
        client.submit_withdrawal(&request("a-1")).await,
        SubmitOutcome::Refused { status: 422, .. }
    ));
    let subs: Value = http
        .get(format!("{}/_simulator/submissions", sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(subs["data"][0]["answered_status"], 422);
}

#[tokio::test]
async fn callbacks_are_signed_and_in_the_documented_shape() {
    let sim = simulator().await;
    let control = sim.control();
    let client = client(&sim, "sim-secret", Duration::from_secs(2));
    assert!(matches!(
        client.submit_withdrawal(&request("c-1")).await,
        SubmitOutcome::Accepted(_)
    ));
    // Every documented variant shows up, and every one parses as a withdrawal report.
    let (mut with_blocks, mut without_blocks, mut string_confirmations, mut number_confirmations) =
        (0, 0, 0, 0);
    for _ in 0..64 {
        let body = control.callback_body("c-1", "confirmed").unwrap();
        let parsed: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            parsed["type"],
            "withdrawal_exchange",
            "seed {}",
            control.seed()
        );
        assert_eq!(parsed["foreign_id"], "c-1");
        if parsed.get("currency_sent").is_some() {
            with_blocks += 1;
            assert_eq!(
                parsed["currency_sent"],
                json!({"currency":"EUR","amount":"100.00"})
            );
            assert_eq!(parsed["currency_received"]["currency"], "BTC");
        } else {
            without_blocks += 1;
        }
        let blockchain = parsed["transactions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["transaction_type"] == "blockchain")
            .unwrap()
            .clone();
        assert_eq!(blockchain["txid"].as_str().unwrap().len(), 64);
        if blockchain["confirmations"].is_string() {
            string_confirmations += 1;
        } else {
            number_confirmations += 1;
        }
        assert!(matches!(
            payoutd::coinspaid::callback::parse(&body).unwrap(),
            payoutd::coinspaid::callback::ParsedCallback::Withdrawal { .. }
        ));
    }
    assert!(
        with_blocks > 0
            && without_blocks > 0
            && string_confirmations > 0
            && number_confirmations > 0,
        "seed {}: {with_blocks} {without_blocks} {string_confirmations} {number_confirmations}",
        control.seed()
    );
    assert!(control.callback_body("nope", "confirmed").is_none());
    assert!(
        control.send_callback("c-1", "confirmed").await.is_err(),
        "no callback URL configured"
    );
}

#[tokio::test]
async fn currency_pair_and_quote_endpoints_answer_the_documented_shapes() {
    let sim = simulator().await;
    let control = sim.control();
    let client = client(&sim, "sim-secret", Duration::from_secs(2));

    // currencies/list: `minimum_amount` is the deposit minimum (BTC 0.0001; withdrawals 0.0002).
    let list = client.currencies_list().await.unwrap();
    let btc = list.iter().find(|c| c.currency == "BTC").unwrap();
    assert_eq!(btc.minimum_amount.unwrap().to_string(), "0.0001");

    // rates and pairs: the same documented shape, filterable, each unknown filter named.
    let rates = client.currencies_rates().await.unwrap();
    let pairs = client.currencies_pairs().await.unwrap();
    assert_eq!(rates.0.len(), pairs.0.len());
    let eur_btc = rates
        .0
        .iter()
        .find(|p| {
            p.currency_from.as_ref().unwrap().currency == "EUR"
                && p.currency_to.as_ref().unwrap().currency == "BTC"
        })
        .unwrap();
    assert_eq!(
        eur_btc
            .currency_from
            .as_ref()
            .unwrap()
            .min_amount
            .unwrap()
            .to_string(),
        "1.00"
    );
    let (status, filtered) = signed_post(
        &sim,
        "/v2/currencies/rates",
        &json!({"currency_from":"BTC","currency_to":"EUR"}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(filtered["data"].as_array().unwrap().len(), 1);
    assert_eq!(
        filtered["data"][0]["currency_from"]["min_amount_deposit_with_exchange"],
        "0.0001"
    );
    let (status, refused) = signed_post(
        &sim,
        "/v2/currencies/pairs",
        &json!({"currency_from":"XYZ"}),
    )
    .await;
    assert_eq!(
        (status, &refused["errors"]["currency_from"]),
        (400, &json!("The selected currency from is invalid."))
    );

    // calculate: price is receiver units for one sender unit; the fix times are given.
    let request = |to: &str| payoutd::coinspaid::wire::ExchangeCalculateRequest {
        sender_currency: "EUR".into(),
        receiver_currency: to.into(),
        sender_amount: "100.00".into(),
    };
    let estimate = client.exchange_calculate(&request("BTC")).await.unwrap();
    assert_eq!(estimate.price.unwrap().to_string(), "0.00001667");
    assert_eq!(estimate.receiver_amount.to_string(), "0.00166666");
    assert_eq!(
        (estimate.fee_currency.as_deref(), estimate.fix_period),
        (Some("EUR"), Some(60))
    );
    assert_eq!(
        estimate.ts_release.unwrap() - estimate.ts_fixed.unwrap(),
        60
    );
    let (status, number_amount) = signed_post(
        &sim,
        "/v2/exchange/calculate",
        &json!({"sender_currency":"EUR","receiver_currency":"BTC","sender_amount":100}),
    )
    .await;
    assert_eq!(
        (status, &number_amount["data"]["sender_amount"]),
        (200, &json!("100"))
    );

    // Scripting: a removed pair is neither listed nor quoted; endpoints can go absent.
    assert!(control.remove_pair("EUR", "ETH"));
    assert!(!control.remove_pair("EUR", "ETH"));
    assert!(matches!(
        client.exchange_calculate(&request("ETH")).await,
        Err(ProviderError::Http { status: 400, .. })
    ));
    assert_eq!(
        client.currencies_rates().await.unwrap().0.len(),
        rates.0.len() - 1
    );
    control.set_pair_endpoints(payoutd::simulator::PairEndpoints::PairsOnly);
    assert!(matches!(
        client.currencies_rates().await,
        Err(ProviderError::Http { status: 404, .. })
    ));
    assert!(client.currencies_pairs().await.is_ok());
    control.set_pair_endpoints(payoutd::simulator::PairEndpoints::Neither);
    assert!(matches!(
        client.currencies_pairs().await,
        Err(ProviderError::Http { status: 404, .. })
    ));
}

#[tokio::test]
async fn malformed_travel_rule_shapes_are_refused_like_coinspaid() {
    let sim = simulator().await;
    let natural =
        json!({"first_name": "Friedrich", "last_name": "Müller", "date_of_birth": "1995-08-17"});
    let legal = json!({"legal_name": "Example GmbH", "country_of_registration": "DEU"});
    let request = |n: usize, travel_rule: Value| {
        let mut body = serde_json::to_value(request(&format!("mica-{n}"))).unwrap();
        for (k, v) in travel_rule.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    let documented = json!({"sender_type": "legal", "sender_data": legal,
        "receiver_type": "natural", "receiver_data": natural});
    let (status, _) = signed_post(&sim, "/v2/withdrawal/crypto", &request(0, documented)).await;
    assert_eq!(status, 201, "the documented example is accepted");
    let own_wallet =
        json!({"sender_type": "natural", "sender_data": natural, "receiver_type": "self"});
    let (status, _) = signed_post(&sim, "/v2/withdrawal/crypto", &request(1, own_wallet)).await;
    assert_eq!(status, 201, "self needs no receiver_data");
    let cases = [
        (
            json!({"sender_type": "natural", "sender_data": legal}),
            "sender_data",
        ),
        (
            json!({"sender_type": "natural", "sender_data": {"first_name": "A", "last_name": "B", "date_of_birth": "17.08.1995"}}),
            "sender_data",
        ),
        (
            json!({"sender_type": "legal", "sender_data": {"legal_name": "X", "country_of_registration": "DE"}}),
            "sender_data",
        ),
        (json!({"sender_type": "legal"}), "sender_data"),
        (
            json!({"sender_type": "robot", "sender_data": legal}),
            "sender_type",
        ),
        (
            json!({"receiver_type": "self", "receiver_data": legal}),
            "receiver_data",
        ),
        (json!({"receiver_data": legal}), "receiver_type"),
    ];
    for (n, (travel_rule, field)) in cases.into_iter().enumerate() {
        let (status, body) = signed_post(
            &sim,
            "/v2/withdrawal/crypto",
            &request(n + 2, travel_rule.clone()),
        )
        .await;
        assert_eq!(status, 400, "{travel_rule}");
        assert!(body["errors"][field].is_string(), "{travel_rule}: {body}");
    }
    assert_eq!(sim.control().withdrawals().len(), 2);
}
