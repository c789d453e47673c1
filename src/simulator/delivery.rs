//! Building and posting signed withdrawal callbacks in CoinsPaid's documented shape.

use std::sync::Arc;

use rand::Rng;

use super::state::{Delivery, SimState, SimWithdrawal};
use super::{rates, received_currency, SimulatorError};
use crate::coinspaid::wire::{Callback, CryptoAddress, CurrencyAmount, Fee, Transaction};
use crate::coinspaid::{KEY_HEADER, SIGNATURE_HEADER};

fn random_txid() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    hex::encode(bytes)
}

/// The callback body for `withdrawal` reporting `status`, serialized once.
pub fn callback_body(withdrawal: &SimWithdrawal, status: &str) -> Vec<u8> {
    let request = &withdrawal.request;
    let receive_in = received_currency(request).to_owned();
    let confirmed = status == "confirmed";
    let sent_amount = request.amount.parse().unwrap_or_default();
    let callback = Callback {
        id: withdrawal.id,
        kind: if request.convert_to.is_some() {
            "withdrawal_exchange"
        } else {
            "withdrawal"
        }
        .into(),
        status: status.into(),
        foreign_id: Some(withdrawal.foreign_id.clone()),
        end_user_reference: request.end_user_reference.clone(),
        crypto_address: Some(CryptoAddress {
            id: Some(withdrawal.id % 100_000),
            currency: receive_in.clone(),
            address: request.address.clone(),
            tag: request.tag.clone(),
        }),
        currency_sent: Some(CurrencyAmount {
            currency: request.currency.clone(),
            amount: sent_amount,
        }),
        currency_received: Some(CurrencyAmount {
            currency: receive_in.clone(),
            amount: withdrawal.receiver_amount,
        }),
        transactions: if confirmed {
            vec![Transaction {
                id: Some(withdrawal.id),
                currency: Some(receive_in.clone()),
                transaction_type: Some("blockchain".into()),
                kind: Some("withdrawal".into()),
                address: Some(request.address.clone()),
                tag: request.tag.clone(),
                amount: Some(withdrawal.receiver_amount),
                txid: Some(random_txid()),
                confirmations: Some(3),
            }]
        } else {
            Vec::new()
        },
        fees: vec![
            Fee {
                kind: "mining".into(),
                currency: receive_in.clone(),
                amount: rates::fee(withdrawal.receiver_amount, &receive_in)
                    / rust_decimal::Decimal::TEN,
            },
            Fee {
                kind: "withdrawal".into(),
                currency: request.currency.clone(),
                amount: rates::fee(sent_amount, &request.currency),
            },
        ],
        error: Some(match status {
            "cancelled" => "Cancelled by the provider".into(),
            "declined" => "Declined by the merchant's team".into(),
            _ => String::new(),
        }),
    };
    serde_json::to_vec(&callback).expect("callbacks always serialize")
}

/// Posts one callback now and records the delivery.
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
        (callback_body(withdrawal, status), url)
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

/// Posts `statuses` in order in the background, each after the callback delay.
pub fn schedule(state: Arc<SimState>, foreign_id: String, statuses: Vec<String>) {
    if statuses.is_empty() {
        return;
    }
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
