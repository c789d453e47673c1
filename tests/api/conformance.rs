//! CoinsPaid's own documentation is the oracle: every documented body in
//! tests/fixtures/coinspaid/ (index.json names each one's source page) is read the way payoutd
//! reads it in production, and every documented withdrawal callback is driven through the HTTP
//! API against a withdrawal made to match it.

use std::path::{Path, PathBuf};

use crate::helpers::*;
use payoutd::coinspaid::callback::{self, ParsedCallback};
use payoutd::coinspaid::client::{classify_lookup_answer, classify_submit_answer, record_for};
use payoutd::coinspaid::wire::{CurrencyListEntry, Envelope, ExchangeEstimate, PairList};
use payoutd::coinspaid::SubmitOutcome;
use payoutd::domain::address;
use payoutd::domain::withdrawal::ProviderStatus;
use payoutd::domain::{Currency, CurrencyCatalog, CurrencyInfo, CurrencyKind};
use payoutd::simulator::SimPair;
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Debug, Deserialize)]
struct Fixture {
    file: String,
    kind: String,
    http_status: Option<u16>,
    provider_status: Option<String>,
    source: String,
}

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/coinspaid")
}

fn fixtures() -> Vec<Fixture> {
    let index = std::fs::read(fixtures_dir().join("index.json")).unwrap();
    serde_json::from_slice(&index).unwrap()
}

fn bytes_of(fixture: &Fixture) -> Vec<u8> {
    std::fs::read(fixtures_dir().join(&fixture.file)).unwrap()
}

fn json_of(fixture: &Fixture) -> Value {
    serde_json::from_slice(&bytes_of(fixture)).unwrap_or_else(|e| panic!("{}: {e}", fixture.file))
}

#[test]
fn every_fixture_is_indexed_with_its_source() {
    let listed: Vec<String> = fixtures().into_iter().map(|f| f.file).collect();
    for entry in std::fs::read_dir(fixtures_dir()).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name != "index.json" && name != "README.md" {
            assert!(listed.contains(&name), "{name} is not in index.json");
        }
    }
    for fixture in fixtures() {
        // docs.alphapo.net documents the same API under another brand (app.alphapo.net).
        assert!(
            fixture.source.contains("cryptoprocessing.com")
                || fixture.source.contains("docs.alphapo.net")
                || fixture.source.starts_with("coinspaid/docs"),
            "{}: source {:?} is not CoinsPaid's documentation",
            fixture.file,
            fixture.source
        );
    }
}

/// One test reads every documented body as payoutd reads that kind of body.
#[test]
fn every_documented_body_is_read_as_payoutd_reads_it() {
    let mut kinds_seen = std::collections::BTreeSet::new();
    for fixture in fixtures() {
        let bytes = bytes_of(&fixture);
        let status = StatusCode::from_u16(fixture.http_status.unwrap_or(200)).unwrap();
        let name = &fixture.file;
        kinds_seen.insert(fixture.kind.clone());
        match fixture.kind.as_str() {
            "withdrawal_callback" => {
                let ParsedCallback::Withdrawal { details, .. } = callback::parse(&bytes).unwrap()
                else {
                    panic!("{name}: not read as a withdrawal callback");
                };
                assert_eq!(
                    Some(&details.provider_status),
                    fixture.provider_status.as_ref()
                );
                assert!(
                    details.unreadable.is_empty(),
                    "{name}: {:?}",
                    details.unreadable
                );
                assert_ne!(details.status(), ProviderStatus::Unrecognized, "{name}");
            }
            "other_callback" => assert!(
                matches!(
                    callback::parse(&bytes).unwrap(),
                    ParsedCallback::Ignored { .. }
                ),
                "{name}: a non-withdrawal callback must be acknowledged and ignored"
            ),
            "withdrawal_created" => {
                let foreign_id = json_of(&fixture)["data"]["foreign_id"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                let created = StatusCode::from_u16(fixture.http_status.unwrap_or(201)).unwrap();
                assert!(
                    matches!(
                        classify_submit_answer(created, &bytes, &foreign_id),
                        SubmitOutcome::Accepted(_)
                    ),
                    "{name}"
                );
                // The same answer naming another foreign_id is not ours to record.
                assert!(matches!(
                    classify_submit_answer(created, &bytes, "pd-other"),
                    SubmitOutcome::Unknown(_)
                ));
            }
            "withdrawal_error" => {
                let outcome = classify_submit_answer(status, &bytes, "pd-1");
                assert!(
                    matches!(outcome, SubmitOutcome::Refused { .. }),
                    "{name}: {outcome:?}"
                );
            }
            // A refusal that names our foreign_id, whatever else it says (v1's `error_code`
            // included): the payout may exist, so it is looked up, never released on.
            "withdrawal_error_maybe_created" => {
                let outcome = classify_submit_answer(status, &bytes, "pd-1");
                assert!(
                    matches!(outcome, SubmitOutcome::AlreadyExists { .. }),
                    "{name}: {outcome:?}"
                );
            }
            // A success that does not name our foreign_id cannot be recorded as ours: unknown.
            "withdrawal_created_unmatched" => {
                let outcome = classify_submit_answer(status, &bytes, "pd-1");
                assert!(
                    matches!(outcome, SubmitOutcome::Unknown(_)),
                    "{name}: {outcome:?}"
                );
            }
            "withdrawal_callback_v1" => {
                let ParsedCallback::Withdrawal { details, .. } = callback::parse(&bytes).unwrap()
                else {
                    panic!("{name}: not read as a withdrawal callback");
                };
                assert_eq!(
                    Some(&details.provider_status),
                    fixture.provider_status.as_ref()
                );
                assert_eq!(details.provider_id, Some(1127738), "{name}");
            }
            "auth_error" | "format_error" => {
                let outcome = classify_submit_answer(status, &bytes, "pd-1");
                assert!(
                    matches!(outcome, SubmitOutcome::OursToFix { .. }),
                    "{name}: {outcome:?}"
                );
            }
            "rate_limit_error" => {
                let outcome = classify_submit_answer(status, &bytes, "pd-1");
                assert!(
                    matches!(outcome, SubmitOutcome::Unknown(_)),
                    "{name}: {outcome:?}"
                );
            }
            "transaction_info" => {
                let answer = json_of(&fixture);
                let foreign_id = answer["foreign_id"].as_str().map(str::to_owned);
                match (answer["type"].as_str(), foreign_id) {
                    (Some("withdrawal"), Some(foreign_id)) => {
                        let details = record_for(&answer, &foreign_id).unwrap();
                        assert_eq!(
                            Some(&details.provider_status),
                            fixture.provider_status.as_ref()
                        );
                        // The same record enveloped, or in a list, reads the same.
                        for wrapped in [
                            json!({"data": answer}),
                            json!([answer]),
                            json!({"data": [answer]}),
                        ] {
                            assert_eq!(
                                record_for(&wrapped, &foreign_id).unwrap(),
                                details,
                                "{name}"
                            );
                        }
                        // Another foreign_id's record is never acted on.
                        assert!(record_for(&answer, "pd-someone-else").is_err());
                    }
                    // A deposit's record is never taken for a withdrawal's.
                    _ => assert!(record_for(&answer, "12345").is_err(), "{name}"),
                }
            }
            "transaction_info_error" => {}
            "currencies_list" => {
                let list: Envelope<Vec<CurrencyListEntry>> =
                    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
                assert!(!list.data.is_empty(), "{name}");
            }
            "currencies_rates" | "currencies_pairs" if status.is_success() => {
                let pairs: Envelope<PairList> =
                    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
                assert!(
                    pairs
                        .data
                        .0
                        .iter()
                        .any(|p| p.currency_from.is_some() && p.currency_to.is_some()),
                    "{name}: no pair read"
                );
            }
            "exchange_calculate" if status.is_success() => {
                let estimate: Envelope<ExchangeEstimate> =
                    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
                assert!(estimate.data.price.is_some(), "{name}");
            }
            // Reference data payoutd reads elsewhere (pairs, rates) or not at all (balances):
            // documented, kept, valid JSON.
            _ => {
                let _: Value =
                    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
            }
        }
    }
    for kind in [
        "withdrawal_callback",
        "other_callback",
        "withdrawal_created",
        "withdrawal_error",
        "withdrawal_error_maybe_created",
        "withdrawal_created_unmatched",
        "auth_error",
        "transaction_info",
    ] {
        assert!(kinds_seen.contains(kind), "no {kind} fixture");
    }
}

/// Where a documented callback's payout goes, as payoutd would have requested it.
struct Shape {
    currency: String,
    convert_to: Option<String>,
    amount: String,
    address: String,
}

fn shape_of(body: &Value) -> Shape {
    let crypto = &body["crypto_address"];
    let exchange = body["type"].as_str().unwrap().contains("exchange");
    let sent = body["currency_sent"]["currency"].as_str();
    let currency = sent.or(crypto["currency"].as_str()).unwrap().to_owned();
    let convert_to = exchange.then(|| {
        crypto["convert_to"]
            .as_str()
            .or(body["currency_received"]["currency"].as_str())
            .or(crypto["currency"].as_str())
            .unwrap()
            .to_owned()
    });
    let blockchain = body["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["transaction_type"] == "blockchain")
        .unwrap();
    let amount = match &body["currency_sent"]["amount"] {
        Value::String(s) => s.clone(),
        _ => match &blockchain["amount"] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        },
    };
    let receiving = convert_to.clone().unwrap_or_else(|| currency.clone());
    let documented = crypto["address"].as_str().unwrap();
    // Placeholder addresses ("12345") are replaced by one a real withdrawal could have.
    let address = if address::looks_valid(&receiving, documented) {
        documented.to_owned()
    } else {
        match receiving.as_str() {
            "BTC" => BTC_ADDRESS.to_owned(),
            _ => "0x2D6CA312567986C08CC4eF3F706136D1c9eF0321".to_owned(),
        }
    };
    Shape {
        currency,
        convert_to,
        amount,
        address,
    }
}

/// The documented body with only its identifiers and a placeholder address replaced.
fn with_our_identifiers(
    mut body: Value,
    foreign_id: &str,
    provider_id: i64,
    shape: &Shape,
) -> Vec<u8> {
    let documented_address = body["crypto_address"]["address"].clone();
    body["id"] = json!(provider_id);
    body["foreign_id"] = json!(foreign_id);
    body["crypto_address"]["address"] = json!(shape.address);
    for t in body["transactions"].as_array_mut().unwrap() {
        if t.get("address") == Some(&documented_address) {
            t["address"] = json!(shape.address);
        }
    }
    serde_json::to_vec(&body).unwrap()
}

/// The documented examples pay out amounts as small as 0.0000001 BTC.
fn low_minimums(settings: &mut payoutd::config::Settings) {
    for code in ["BTC", "ETH", "EUR", "NNM"] {
        settings
            .withdrawal_minimums
            .insert(code.into(), "0.00000001".into());
    }
}

/// The currencies the documented examples use, with minimums low enough for their amounts.
fn documented_catalog() -> CurrencyCatalog {
    let mut all: Vec<CurrencyInfo> = CurrencyCatalog::builtin()
        .all()
        .cloned()
        .map(|mut c| {
            c.minimum_withdrawal = dec("0.00000001");
            c
        })
        .collect();
    all.push(CurrencyInfo {
        currency: Currency::parse("NNM").unwrap(),
        kind: CurrencyKind::Crypto,
        precision: 8,
        minimum_withdrawal: dec("0.00000001"),
        minimum_deposit: None,
        tag_required: false,
    });
    CurrencyCatalog::new(all)
}

/// CoinsPaid lists the documented examples' currencies and their BTC -> ETH conversion.
async fn use_documented_currencies(app: &TestApp) {
    app.sim.set_catalog(documented_catalog());
    let mut pairs = app.sim.pairs();
    pairs.push(SimPair::new("BTC", "ETH", dec("0.00000001")));
    app.sim.set_pairs(pairs);
    app.currencies.refresh().await.unwrap();
}

/// Drives one documented callback body (and a replay of it) against a matching withdrawal;
/// returns the withdrawal's id and the ledger kinds after the first delivery.
async fn drive(
    app: &TestApp,
    name: &str,
    documented: Value,
    statuses: &[&str],
) -> (Value, Vec<String>) {
    let shape = shape_of(&documented);
    let user = format!("user-{}", name.replace(['.', '_'], "-"));
    app.fund(&user, &shape.currency, &shape.amount).await;
    let w = app
        .withdraw_ok(&json!({
            "user_id": user, "amount": shape.amount, "currency": shape.currency,
            "convert_to": shape.convert_to, "address": shape.address,
        }))
        .await;
    assert_eq!(w["status"], "processing", "{name}: {w}");
    let foreign_id = w["foreign_id"].as_str().unwrap();
    let provider_id = w["provider_id"].as_i64().unwrap();
    for status in statuses {
        let mut body = documented.clone();
        body["status"] = json!(status);
        let bytes = with_our_identifiers(body, foreign_id, provider_id, &shape);
        assert_eq!(
            app.post_callback(&bytes).await,
            StatusCode::OK,
            "{name} {status}"
        );
        // CoinsPaid retries and duplicates: the same body again moves nothing.
        let before = app.ledger_kinds(w["id"].as_str().unwrap()).await;
        assert_eq!(
            app.post_callback(&bytes).await,
            StatusCode::OK,
            "{name} {status} replay"
        );
        assert_eq!(
            app.ledger_kinds(w["id"].as_str().unwrap()).await,
            before,
            "{name}: replay moved money"
        );
    }
    let after = app.withdrawal(w["id"].as_str().unwrap()).await;
    assert_eq!(after["anomaly"], Value::Null, "{name}: {after}");
    let kinds = app.ledger_kinds(w["id"].as_str().unwrap()).await;
    let (available, held) = app.balance(&user, &shape.currency).await;
    match after["status"].as_str().unwrap() {
        "confirmed" => assert_eq!(
            (dec(&available), dec(&held)),
            (dec("0"), dec("0")),
            "{name}"
        ),
        "cancelled" => assert_eq!(
            (dec(&available), dec(&held)),
            (dec(&shape.amount), dec("0")),
            "{name}"
        ),
        _ => assert_eq!(
            (dec(&available), dec(&held)),
            (dec("0"), dec(&shape.amount)),
            "{name}"
        ),
    }
    (after, kinds)
}

#[tokio::test]
async fn every_documented_withdrawal_callback_settles_as_documented() {
    let app = spawn_app_with(low_minimums).await;
    use_documented_currencies(&app).await;
    let callbacks: Vec<Fixture> = fixtures()
        .into_iter()
        .filter(|f| f.kind == "withdrawal_callback")
        .collect();
    assert!(callbacks.len() >= 7);
    for fixture in &callbacks {
        let documented = json_of(fixture);
        let status = fixture.provider_status.clone().unwrap();
        let (after, kinds) = drive(&app, &fixture.file, documented, &[&status]).await;
        let expected: (&str, &[&str]) = match status.as_str() {
            "confirmed" => ("confirmed", &["hold", "debit"]),
            "cancelled" | "declined" => ("cancelled", &["hold", "release"]),
            _ => ("processing", &["hold"]),
        };
        assert_eq!(
            after["status"].as_str().unwrap(),
            expected.0,
            "{}",
            fixture.file
        );
        assert_eq!(kinds, expected.1, "{}", fixture.file);
        assert_eq!(after["provider_status"], json!(status));
    }
    app.assert_invariants().await;
}

/// The current docs' Pending and Declined bodies could not be read (see the fixtures README);
/// CoinsPaid's test case "withdrawal declined by the owner" sends `pending`, then `declined`.
/// Both are driven here through the documented cancelled body with its status word changed.
#[tokio::test]
async fn pending_holds_then_declined_releases_once() {
    let app = spawn_app_with(low_minimums).await;
    use_documented_currencies(&app).await;
    let cancelled = fixtures()
        .into_iter()
        .find(|f| f.file == "gh_cancelled.json")
        .unwrap();
    let documented = json_of(&cancelled);
    let (after, kinds) = drive(&app, "pending", documented.clone(), &["pending"]).await;
    assert_eq!(after["status"], "processing");
    assert_eq!(kinds, ["hold"]);
    assert_eq!(after["provider_status"], "pending");
    let (after, kinds) = drive(&app, "declined", documented, &["pending", "declined"]).await;
    assert_eq!(after["status"], "cancelled");
    assert_eq!(kinds, ["hold", "release"]);
    app.assert_invariants().await;
}

/// A look-up answer is our record, CoinsPaid's word that it has none, or a failed look-up
/// that is tried again: only the second lets a withdrawal whose outcome is unknown be sent
/// again, and nothing here ever releases money.
#[test]
fn look_up_answers_are_a_record_no_record_or_a_failed_look_up() {
    let fixture = |file: &str| std::fs::read(fixtures_dir().join(file)).unwrap();
    let undocumented = |file: &str| {
        std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/coinspaid-undocumented")
                .join(file),
        )
        .unwrap()
    };
    let classify = |status: u16, body: &[u8]| {
        classify_lookup_answer(StatusCode::from_u16(status).unwrap(), body, "pd-1")
    };
    for (status, body) in [
        (
            400,
            undocumented("transactions_info_400_unknown_foreign_id.json"),
        ),
        (404, br#"{"error": "Transaction not found"}"#.to_vec()),
        (
            422,
            br#"{"errors": {"foreign_id": ["not found"]}}"#.to_vec(),
        ),
    ] {
        let answer = classify(status, &body);
        assert!(
            matches!(&answer, Err(e) if e.is_no_record()),
            "{status} {}: {answer:?}",
            String::from_utf8_lossy(&body)
        );
    }
    for (status, body) in [
        (429, fixture("exchange_calculate_429_gh.txt")),
        (403, fixture("error_403_bad_header_key.json")),
        (403, fixture("error_403_bad_header_signature.json")),
        (400, fixture("error_400_bad_content_format.json")),
        // Documented answers about the look-up request itself.
        (400, br#"{"error": "No parameters present"}"#.to_vec()),
        (
            404,
            br#"{"error": "Validation Exception: more than one param is present"}"#.to_vec(),
        ),
        // A proxy's page, an empty object, other statuses.
        (404, b"<html><body>Not Found</body></html>".to_vec()),
        (400, b"{}".to_vec()),
        (401, br#"{"error": "Unauthorized"}"#.to_vec()),
        (409, br#"{"error": "Conflict"}"#.to_vec()),
        (500, br#"{"error": "Server Error"}"#.to_vec()),
        (503, Vec::new()),
        // A 2xx is never CoinsPaid's way of saying "no record".
        (200, br#"{"data": []}"#.to_vec()),
        (200, b"not json".to_vec()),
        (
            200,
            br#"{"id": 1, "foreign_id": "pd-other", "type": "withdrawal", "status": "cancelled"}"#
                .to_vec(),
        ),
    ] {
        let answer = classify(status, &body);
        assert!(
            matches!(&answer, Err(e) if !e.is_no_record()),
            "{status} {}: {answer:?}",
            String::from_utf8_lossy(&body)
        );
    }
    let ours = br#"{"id": 7, "foreign_id": "pd-1", "type": "withdrawal", "status": "cancelled"}"#;
    assert_eq!(
        classify(200, ours).unwrap().provider_status,
        "cancelled",
        "our record, read as documented"
    );
}
