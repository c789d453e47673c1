//! Building and posting signed withdrawal callbacks in CoinsPaid's documented shapes.
//!
//! CoinsPaid's documentation shows several shapes of the same callback (see
//! tests/fixtures/coinspaid/): `confirmations` as `3` or `"0"`, `currency_sent` and
//! `currency_received` present or absent, `crypto_address` naming the paying currency with
//! `convert_to` or only the crypto sent, bare numbers in an exchange's `transactions`, `fees`
//! empty or not. Every callback the simulator posts draws one of those variants from its
//! seeded generator, so no test passes for one shape only.

use std::sync::Arc;

use rand::Rng;
use serde_json::{json, Value};

use super::state::{Delivery, SimState, SimWithdrawal};
use super::{rates, received_currency, SimulatorError};
use crate::coinspaid::{KEY_HEADER, SIGNATURE_HEADER};

/// Which documented shape a report takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Variant {
    /// `"confirmations": "0"` (most examples) rather than `3`.
    pub string_confirmations: bool,
    /// `currency_sent`/`currency_received` present (older docs) or absent (newer).
    pub amount_blocks: bool,
    /// Exchange: `crypto_address` in the paying currency with `convert_to` (older docs), and
    /// the exchange leg in `transactions` with bare numbers; else the newer shape.
    pub older_exchange: bool,
    pub end_user_reference: bool,
    pub fees: bool,
}

impl Variant {
    pub fn random(rng: &mut impl Rng) -> Self {
        Self {
            string_confirmations: rng.random(),
            amount_blocks: rng.random(),
            older_exchange: rng.random(),
            end_user_reference: rng.random(),
            fees: rng.random(),
        }
    }
}

fn random_txid(rng: &mut impl Rng) -> String {
    let bytes: [u8; 32] = rng.random();
    hex::encode(bytes)
}

/// A decimal as the bare JSON number of the older exchange example.
fn bare(amount: &rust_decimal::Decimal) -> Value {
    amount
        .to_string()
        .parse::<serde_json::Number>()
        .map(Value::Number)
        .unwrap_or_else(|_| Value::String(amount.to_string()))
}

/// The report of `withdrawal` with `status`, shaped as `variant`: the body of a callback and of
/// a `/v2/transactions/info` answer alike.
pub fn report(
    withdrawal: &SimWithdrawal,
    status: &str,
    variant: Variant,
    rng: &mut impl Rng,
) -> Value {
    let request = &withdrawal.request;
    let receive_in = received_currency(request).to_owned();
    let exchange = request.convert_to.is_some();
    let sent: rust_decimal::Decimal = request.amount.parse().unwrap_or_default();
    let received = withdrawal.receiver_amount;
    let confirmed = status == "confirmed";
    let mut body = json!({
        "id": withdrawal.id,
        "foreign_id": withdrawal.foreign_id,
        "type": if exchange { "withdrawal_exchange" } else { "withdrawal" },
        "crypto_address": if exchange && variant.older_exchange {
            json!({"id": withdrawal.id % 100_000, "currency": request.currency,
                   "convert_to": receive_in, "address": request.address, "tag": request.tag})
        } else {
            json!({"id": withdrawal.id % 100_000, "currency": receive_in,
                   "address": request.address, "tag": request.tag})
        },
    });
    let object = body.as_object_mut().expect("built as an object");
    if variant.end_user_reference {
        if let Some(reference) = &request.end_user_reference {
            object.insert("end_user_reference".into(), json!(reference));
        }
    }
    if variant.amount_blocks {
        object.insert(
            "currency_sent".into(),
            json!({"currency": request.currency, "amount": sent.to_string()}),
        );
        object.insert(
            "currency_received".into(),
            json!({"currency": receive_in, "amount": received.to_string()}),
        );
    }
    let numbers = exchange && variant.older_exchange;
    let amount = |value: &rust_decimal::Decimal| {
        if numbers {
            bare(value)
        } else {
            json!(value.to_string())
        }
    };
    let mut transactions = Vec::new();
    if exchange {
        transactions.push(json!({
            "id": withdrawal.id * 10 + 1, "currency": request.currency, "currency_to": receive_in,
            "transaction_type": "exchange", "type": "exchange",
            "amount": amount(&sent), "amount_to": amount(&received),
        }));
    }
    transactions.push(json!({
        "id": withdrawal.id * 10 + 2, "currency": receive_in, "transaction_type": "blockchain",
        "type": "withdrawal", "address": request.address, "tag": request.tag,
        "amount": amount(&received),
        "txid": if confirmed { json!(random_txid(rng)) } else { Value::Null },
        "confirmations": match (confirmed, variant.string_confirmations) {
            (true, false) => json!(3),
            (_, true) => json!("0"),
            (false, false) => json!(0),
        },
    }));
    object.insert("transactions".into(), Value::Array(transactions));
    let fees = if variant.fees && confirmed {
        json!([
            {"type": "mining", "currency": receive_in,
             "amount": (rates::fee(received, &receive_in) / rust_decimal::Decimal::TEN).to_string()},
            {"type": "withdrawal", "currency": request.currency,
             "amount": rates::fee(sent, &request.currency).to_string()},
        ])
    } else {
        json!([])
    };
    object.insert("fees".into(), fees);
    let error = match status {
        "cancelled" => "Invalid params: expected a hex-encoded hash with 0x prefix.",
        "declined" => "Declined by the merchant's team",
        _ => "",
    };
    object.insert("error".into(), json!(error));
    object.insert("status".into(), json!(status));
    body
}

/// The callback body for `withdrawal` reporting `status`, serialized once.
pub fn callback_body(
    withdrawal: &SimWithdrawal,
    status: &str,
    variant: Variant,
    rng: &mut impl Rng,
) -> Vec<u8> {
    serde_json::to_vec(&report(withdrawal, status, variant, rng)).expect("JSON values serialize")
}

/// Posts one callback now, in a randomly drawn documented shape, and records the delivery.
pub async fn deliver(
    state: &SimState,
    foreign_id: &str,
    status: &str,
) -> Result<u16, SimulatorError> {
    let (body, url) = {
        let mut inner = state.inner();
        let url = inner
            .callback_url
            .clone()
            .ok_or(SimulatorError::NoCallbackUrl)?;
        let withdrawal = inner
            .withdrawals
            .get_mut(foreign_id)
            .ok_or(SimulatorError::UnknownForeignId)?;
        withdrawal.status = status.to_owned();
        let withdrawal = withdrawal.clone();
        let mut rng = state.rng();
        let variant = Variant::random(&mut *rng);
        (callback_body(&withdrawal, status, variant, &mut *rng), url)
    };
    let signature = state.signer.sign(&body);
    let result = state
        .http
        .post(&url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(KEY_HEADER, state.signer.key())
        .header(SIGNATURE_HEADER, signature)
        .body(body)
        .send()
        .await;
    let answered = result.as_ref().ok().map(|r| r.status().as_u16());
    state.inner().deliveries.push(Delivery {
        foreign_id: foreign_id.to_owned(),
        status: status.to_owned(),
        answered,
    });
    match result {
        Ok(response) => Ok(response.status().as_u16()),
        Err(err) => {
            tracing::warn!(%foreign_id, %status, error = %err, "simulator: callback delivery failed");
            Err(SimulatorError::Transport(err.to_string()))
        }
    }
}

/// A `declined` payout is first reported `pending` in CoinsPaid's own test case ("declined by
/// the owner"), but need not be: half the time a `pending` is put before a bare `declined`.
fn with_review(statuses: Vec<String>, rng: &mut impl Rng) -> Vec<String> {
    let mut out = Vec::with_capacity(statuses.len() + 1);
    for status in statuses {
        let reviewed = out.last().is_some_and(|s: &String| s == "pending");
        if status == "declined" && !reviewed && rng.random() {
            out.push("pending".to_owned());
        }
        out.push(status);
    }
    out
}

/// Posts `statuses` in order in the background, each after the callback delay.
pub fn schedule(state: Arc<SimState>, foreign_id: String, statuses: Vec<String>) {
    if statuses.is_empty() {
        return;
    }
    let statuses = with_review(statuses, &mut *state.rng());
    state.callbacks_scheduled(statuses.len());
    tokio::spawn(async move {
        for status in statuses {
            let delay = state.inner().callback_delay;
            tokio::time::sleep(delay).await;
            // Failures are logged and recorded; CoinsPaid's own retries are not simulated.
            let _ = deliver(&state, &foreign_id, &status).await;
            state.callback_done();
        }
    });
}
