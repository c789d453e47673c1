//! The simulator's HTTP surface: CoinsPaid's `/v2` endpoints (signed) and `/_simulator`
//! scripting endpoints (unsigned, loopback tooling only).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{json, Value};

use super::behavior::SubmitBehavior;
use super::state::{SimState, SimWithdrawal, Submission};
use super::{delivery, rates, received_currency, SimulatorControl};
use crate::coinspaid::signing::VerifyError;
use crate::coinspaid::wire::{
    CurrencyAmount, Envelope, TransactionInfo, TransactionInfoRequest, WithdrawalAccepted,
    WithdrawalRequest,
};
use crate::coinspaid::{KEY_HEADER, SIGNATURE_HEADER};
use crate::domain::address;
use crate::domain::currency::{CurrencyCatalog, CurrencyKind};
use crate::domain::{Amount, Currency};

type Sim = Arc<SimState>;

pub fn router(control: SimulatorControl) -> Router {
    Router::new()
        .route("/v2/ping", post(ping))
        .route("/v2/currencies/list", post(currencies))
        .route("/v2/currencies/pairs", post(pairs))
        .route("/v2/exchange/calculate", post(calculate))
        .route("/v2/withdrawal/crypto", post(withdrawal))
        .route(
            "/v2/transactions/info",
            post(transaction_info).get(transaction_info),
        )
        .route("/_simulator/behaviors", post(push_behavior))
        .route("/_simulator/default-behavior", put(set_default))
        .route("/_simulator/withdrawals", get(list_withdrawals))
        .route("/_simulator/submissions", get(list_submissions))
        .route("/_simulator/callbacks", post(send_callback))
        .with_state(control.state)
}

fn errors(status: StatusCode, field: &str, message: &str) -> Response {
    (status, Json(json!({"errors": {field: message}}))).into_response()
}

/// CoinsPaid's answer to a bad key or signature.
fn unauthorized(why: VerifyError) -> Response {
    let code = match why {
        VerifyError::MissingKey | VerifyError::WrongKey => "bad_header_key",
        _ => "bad_header_signature",
    };
    (
        StatusCode::UNAUTHORIZED,
        Json(json!({"error": "Bad signature header", "code": code})),
    )
        .into_response()
}

fn verify(sim: &SimState, headers: &HeaderMap, body: &[u8]) -> Result<(), VerifyError> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    sim.signer
        .verify(header(KEY_HEADER), header(SIGNATURE_HEADER), body)
}

/// Why a signed request was not accepted; rendered the way CoinsPaid renders it.
enum Refused {
    Signature(VerifyError),
    Body(String),
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        match self {
            Self::Signature(why) => unauthorized(why),
            Self::Body(message) => errors(StatusCode::BAD_REQUEST, "body", &message),
        }
    }
}

/// Verifies the signature, then parses the body (`{}` when empty).
fn signed_json<T: for<'de> Deserialize<'de>>(
    sim: &SimState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<T, Refused> {
    verify(sim, headers, body).map_err(Refused::Signature)?;
    let body = if body.is_empty() {
        b"{}".as_slice()
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| Refused::Body(e.to_string()))
}

async fn ping(State(sim): State<Sim>, headers: HeaderMap, body: Bytes) -> Response {
    match verify(&sim, &headers, &body) {
        Ok(()) => "OK".into_response(),
        Err(why) => unauthorized(why),
    }
}

async fn currencies(State(sim): State<Sim>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(refused) = signed_json::<Value>(&sim, &headers, &body) {
        return refused.into_response();
    }
    let mut list: Vec<_> = sim.inner().catalog.all().cloned().collect();
    list.sort_by(|a, b| a.currency.cmp(&b.currency));
    let data: Vec<Value> = list
        .iter()
        .enumerate()
        .map(|(i, c)| {
            json!({
                "id": i + 1,
                "type": if c.kind == CurrencyKind::Crypto { "crypto" } else { "fiat" },
                "currency": c.currency,
                "minimum_amount": c.minimum_withdrawal.to_string(),
                "deposit_fee_percent": "0",
                "withdrawal_fee_percent": "0.005",
                "precision": c.precision,
            })
        })
        .collect();
    Json(json!({"data": data})).into_response()
}

async fn pairs(State(sim): State<Sim>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(refused) = signed_json::<Value>(&sim, &headers, &body) {
        return refused.into_response();
    }
    let catalog = CurrencyCatalog::builtin();
    let mut data = Vec::new();
    for from in catalog.all().filter(|c| c.kind == CurrencyKind::Fiat) {
        for to in catalog.all().filter(|c| c.kind == CurrencyKind::Crypto) {
            let (f, t) = (from.currency.as_str(), to.currency.as_str());
            if let Some(rate) = rates::rate(f, t) {
                data.push(json!({
                    "currency_from": {"currency": f, "type": "fiat", "min_amount": from.minimum_withdrawal.to_string()},
                    "currency_to": {"currency": t, "type": "crypto"},
                    "rate_from": "1",
                    "rate_to": rate.round_dp(12).normalize().to_string(),
                }));
            }
        }
    }
    Json(json!({"data": data})).into_response()
}

#[derive(Deserialize)]
struct CalculateRequest {
    sender_currency: String,
    receiver_currency: String,
    sender_amount: String,
}

async fn calculate(State(sim): State<Sim>, headers: HeaderMap, body: Bytes) -> Response {
    let request: CalculateRequest = match signed_json(&sim, &headers, &body) {
        Ok(r) => r,
        Err(refused) => return refused.into_response(),
    };
    let Ok(amount) = Amount::parse(&request.sender_amount) else {
        return errors(StatusCode::BAD_REQUEST, "sender_amount", "Invalid amount");
    };
    let (from, to) = (
        request.sender_currency.as_str(),
        request.receiver_currency.as_str(),
    );
    let Some(received) = rates::convert(amount.value(), from, to) else {
        return errors(
            StatusCode::BAD_REQUEST,
            "receiver_currency",
            "Pair is not supported",
        );
    };
    let fee = rates::fee(received, to);
    Json(json!({"data": {
        "sender_currency": from,
        "sender_amount": amount.to_string(),
        "receiver_currency": to,
        "receiver_amount": (received - fee).to_string(),
        "fee_currency": to,
        "fee_amount": fee.to_string(),
        "price": rates::rate(to, from).map(|r| r.round_dp(8).normalize().to_string()),
        "ts": chrono::Utc::now().timestamp(),
    }}))
    .into_response()
}

/// CoinsPaid's own checks, as a 400 `(field, message)`.
fn validate(
    request: &WithdrawalRequest,
    catalog: &CurrencyCatalog,
) -> Result<Decimal, (&'static str, String)> {
    let info = |code: &str, field| {
        Currency::parse(code)
            .and_then(|c| catalog.get(&c).cloned())
            .ok_or((field, format!("Currency {code} is not supported")))
    };
    let paying = info(&request.currency, "currency")?;
    let receiving = match &request.convert_to {
        Some(code) => info(code, "convert_to")?,
        None if paying.kind == CurrencyKind::Fiat => {
            return Err(("convert_to", "Fiat withdrawals need convert_to".into()))
        }
        None => paying.clone(),
    };
    let amount = Amount::parse(&request.amount)
        .and_then(|a| a.check_precision(paying.currency.as_str(), paying.precision))
        .map_err(|e| ("amount", e.to_string()))?;
    if !address::looks_valid(receiving.currency.as_str(), &request.address) {
        return Err(("address", "Invalid address".into()));
    }
    if receiving.tag_required && request.tag.as_deref().is_none_or(str::is_empty) {
        return Err(("tag", format!("Tag is required for {}", receiving.currency)));
    }
    if request
        .end_user_reference
        .as_deref()
        .is_none_or(str::is_empty)
    {
        return Err((
            "end_user_reference",
            "The end user reference field is required.".into(),
        ));
    }
    super::travel_rule::check(&request.travel_rule)?;
    rates::convert(
        amount.value(),
        paying.currency.as_str(),
        receiving.currency.as_str(),
    )
    .ok_or(("convert_to", "Pair is not supported".into()))
}

fn accepted(w: &SimWithdrawal) -> Response {
    let r = &w.request;
    let data = WithdrawalAccepted {
        id: w.id,
        foreign_id: w.foreign_id.clone(),
        kind: if r.convert_to.is_some() {
            "withdrawal_exchange"
        } else {
            "withdrawal"
        }
        .into(),
        status: "processing".into(),
        amount: r.amount.parse().ok(),
        sender_amount: r.amount.parse().ok(),
        sender_currency: Some(r.currency.clone()),
        receiver_amount: Some(w.receiver_amount),
        receiver_currency: Some(received_currency(r).to_owned()),
    };
    Json(Envelope { data }).into_response()
}

async fn withdrawal(State(sim): State<Sim>, headers: HeaderMap, body: Bytes) -> Response {
    let request: Option<WithdrawalRequest> = serde_json::from_slice(&body).ok();
    let record = |signature_valid: bool, status: u16| Submission {
        foreign_id: request.as_ref().map(|r| r.foreign_id.clone()),
        request: request.clone(),
        raw_body: body.to_vec(),
        signature_valid,
        answered_status: status,
    };
    if let Err(why) = verify(&sim, &headers, &body) {
        sim.record(record(false, 401));
        return unauthorized(why);
    }
    let Some(request) = request.clone() else {
        sim.record(record(true, 400));
        return errors(StatusCode::BAD_REQUEST, "body", "Invalid JSON");
    };
    let _in_flight = sim.enter(&request.foreign_id);
    if sim.knows(&request.foreign_id) {
        sim.record(record(true, 400));
        return errors(
            StatusCode::BAD_REQUEST,
            "foreign_id",
            "The foreign id has already been taken.",
        );
    }
    let catalog = sim.inner().catalog.clone();
    let receiver_amount = match validate(&request, &catalog) {
        Ok(amount) => amount,
        Err((field, message)) => {
            sim.record(record(true, 400));
            return errors(StatusCode::BAD_REQUEST, field, &message);
        }
    };
    let behavior = sim.next_behavior();
    let planned = match &behavior {
        SubmitBehavior::Refuse { status, .. }
        | SubmitBehavior::ServerError { status }
        | SubmitBehavior::Garbage { status, .. } => *status,
        SubmitBehavior::AcceptThenServerError { .. } => 502,
        _ => 200,
    };
    // Recorded on arrival, so a test sees a slow request before its answer.
    sim.record(record(true, planned));
    let create = || sim.create(&request, receiver_amount);
    let status_of = |s: u16| StatusCode::from_u16(s).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match behavior {
        SubmitBehavior::Refuse {
            status,
            field,
            message,
        } => errors(status_of(status), &field, &message),
        SubmitBehavior::ServerError { status } => {
            (status_of(status), "Internal Server Error").into_response()
        }
        SubmitBehavior::Garbage { status, body } => (status_of(status), body).into_response(),
        SubmitBehavior::Accept { callbacks } => match create() {
            Some(w) => {
                delivery::schedule(sim.clone(), w.foreign_id.clone(), callbacks);
                accepted(&w)
            }
            None => errors(
                StatusCode::BAD_REQUEST,
                "foreign_id",
                "The foreign id has already been taken.",
            ),
        },
        SubmitBehavior::AcceptCallbackFirst { callbacks } => match create() {
            Some(w) => {
                let mut rest = callbacks.into_iter();
                if let Some(first) = rest.next() {
                    let _ = delivery::deliver(&sim, &w.foreign_id, &first).await;
                }
                delivery::schedule(sim.clone(), w.foreign_id.clone(), rest.collect());
                accepted(&w)
            }
            None => errors(
                StatusCode::BAD_REQUEST,
                "foreign_id",
                "The foreign id has already been taken.",
            ),
        },
        SubmitBehavior::Slow { delay, callbacks } => match create() {
            Some(w) => {
                delivery::schedule(sim.clone(), w.foreign_id.clone(), callbacks);
                tokio::time::sleep(delay).await;
                accepted(&w)
            }
            None => errors(
                StatusCode::BAD_REQUEST,
                "foreign_id",
                "The foreign id has already been taken.",
            ),
        },
        SubmitBehavior::AcceptThenServerError { callbacks } => {
            if let Some(w) = create() {
                delivery::schedule(sim.clone(), w.foreign_id.clone(), callbacks);
            }
            (StatusCode::BAD_GATEWAY, "Bad Gateway").into_response()
        }
    }
}

async fn transaction_info(State(sim): State<Sim>, headers: HeaderMap, body: Bytes) -> Response {
    let lookup: TransactionInfoRequest = match signed_json(&sim, &headers, &body) {
        Ok(r) => r,
        Err(refused) => return refused.into_response(),
    };
    let found = {
        let inner = sim.inner();
        inner
            .withdrawals
            .values()
            .find(|w| {
                lookup.foreign_id.as_deref() == Some(w.foreign_id.as_str())
                    || lookup.id == Some(w.id)
            })
            .cloned()
    };
    let Some(w) = found else {
        return errors(StatusCode::NOT_FOUND, "foreign_id", "Transaction not found");
    };
    let receive_in = received_currency(&w.request).to_owned();
    let data = TransactionInfo {
        id: w.id,
        foreign_id: Some(w.foreign_id.clone()),
        kind: if w.request.convert_to.is_some() {
            "withdrawal_exchange"
        } else {
            "withdrawal"
        }
        .into(),
        status: w.status.clone(),
        currency_sent: w.request.amount.parse().ok().map(|amount| CurrencyAmount {
            currency: w.request.currency.clone(),
            amount,
        }),
        currency_received: Some(CurrencyAmount {
            currency: receive_in,
            amount: w.receiver_amount,
        }),
        transactions: Vec::new(),
        fees: Vec::new(),
    };
    Json(Envelope { data }).into_response()
}

async fn push_behavior(State(sim): State<Sim>, Json(behavior): Json<SubmitBehavior>) -> StatusCode {
    sim.inner().behaviors.push_back(behavior);
    StatusCode::NO_CONTENT
}

async fn set_default(State(sim): State<Sim>, Json(behavior): Json<SubmitBehavior>) -> StatusCode {
    sim.inner().default_behavior = behavior;
    StatusCode::NO_CONTENT
}

async fn list_withdrawals(State(sim): State<Sim>) -> Json<Value> {
    let inner = sim.inner();
    let mut all: Vec<&SimWithdrawal> = inner.withdrawals.values().collect();
    all.sort_by_key(|w| w.id);
    Json(json!({"data": all.iter().map(|w| json!({
        "id": w.id, "foreign_id": w.foreign_id, "status": w.status,
        "amount": w.request.amount, "currency": w.request.currency,
        "convert_to": w.request.convert_to, "receiver_amount": w.receiver_amount.to_string(),
    })).collect::<Vec<_>>()}))
}

async fn list_submissions(State(sim): State<Sim>) -> Json<Value> {
    let inner = sim.inner();
    Json(json!({"data": inner.submissions.iter().map(|s| json!({
        "foreign_id": s.foreign_id, "signature_valid": s.signature_valid, "answered_status": s.answered_status,
    })).collect::<Vec<_>>()}))
}

#[derive(Deserialize)]
struct SendCallback {
    foreign_id: String,
    status: String,
}

async fn send_callback(State(sim): State<Sim>, Json(request): Json<SendCallback>) -> Response {
    match delivery::deliver(&sim, &request.foreign_id, &request.status).await {
        Ok(answered) => Json(json!({"answered": answered})).into_response(),
        Err(err) => (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": err.to_string()})),
        )
            .into_response(),
    }
}
