//! The simulator's HTTP surface: CoinsPaid's `/v2` endpoints (signed) and `/_simulator`
//! scripting endpoints (unsigned, loopback tooling only).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post, put};
use axum::{Json, Router};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{json, Value};

use super::behavior::SubmitBehavior;
use super::pairs::{self, PairEndpoints};
use super::state::{SimState, SimWithdrawal, Submission};
use super::{delivery, rates, received_currency, SimulatorControl};
use crate::coinspaid::signing::VerifyError;
use crate::coinspaid::wire::{TransactionInfoRequest, WithdrawalRequest};
use crate::coinspaid::{KEY_HEADER, SIGNATURE_HEADER};
use crate::domain::address;
use crate::domain::{Amount, Currency};
use crate::domain::{CurrencyCatalog, CurrencyKind};

type Sim = Arc<SimState>;

pub fn router(control: SimulatorControl) -> Router {
    Router::new()
        .route("/v2/ping", post(ping))
        .route("/v2/currencies/list", post(currencies))
        .route("/v2/currencies/rates", post(rates_list))
        .route("/v2/currencies/pairs", post(pairs_list))
        .route("/v2/exchange/calculate", post(calculate))
        .route("/v2/withdrawal/crypto", post(withdrawal))
        // Documented as GET with a signed JSON body; a POST gets CoinsPaid's 405.
        .route("/v2/transactions/info", get(transaction_info))
        .route("/_simulator/redirected", any(redirected))
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

/// CoinsPaid's documented 403 bodies for a missing or wrong key or signature.
fn unauthorized(why: VerifyError) -> Response {
    let (error, code) = match why {
        VerifyError::MissingKey => ("No key header", "required_header_key"),
        VerifyError::WrongKey => ("Bad key header", "bad_header_key"),
        VerifyError::MissingSignature => ("No signature header", "required_header_signature"),
        VerifyError::MalformedSignature | VerifyError::BadSignature => {
            ("Bad signature header", "bad_header_signature")
        }
    };
    coded_error(StatusCode::FORBIDDEN, error, code)
}

fn coded_error(status: StatusCode, error: &str, code: &str) -> Response {
    (status, Json(json!({"error": error, "code": code}))).into_response()
}

/// The documented answer to a body that is not JSON.
fn bad_content_format() -> Response {
    coded_error(
        StatusCode::BAD_REQUEST,
        "Bad content format",
        "bad_content_format",
    )
}

fn verify(sim: &SimState, headers: &HeaderMap, body: &[u8]) -> Result<(), VerifyError> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    sim.signer
        .verify(header(KEY_HEADER), header(SIGNATURE_HEADER), body)
}

/// Why a signed request was not accepted; rendered the way CoinsPaid renders it.
enum Refused {
    Signature(VerifyError),
    Body,
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        match self {
            Self::Signature(why) => unauthorized(why),
            Self::Body => bad_content_format(),
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
    serde_json::from_slice(body).map_err(|_| Refused::Body)
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
                // The deposit minimum, as documented; withdrawal minimums are not listed.
                "minimum_amount": c.minimum_deposit.map(|m| m.to_string()),
                "deposit_fee_percent": "0",
                "withdrawal_fee_percent": "0.005",
                "precision": c.precision,
            })
        })
        .collect();
    Json(json!({"data": data})).into_response()
}

/// The optional filters of a pair listing.
#[derive(Deserialize)]
struct PairFilter {
    currency_from: Option<String>,
    currency_to: Option<String>,
}

async fn rates_list(State(sim): State<Sim>, headers: HeaderMap, body: Bytes) -> Response {
    let answers = sim.inner().pair_endpoints == PairEndpoints::Both;
    pair_listing(&sim, answers, &headers, &body)
}

async fn pairs_list(State(sim): State<Sim>, headers: HeaderMap, body: Bytes) -> Response {
    let answers = matches!(
        sim.inner().pair_endpoints,
        PairEndpoints::Both | PairEndpoints::PairsOnly
    );
    pair_listing(&sim, answers, &headers, &body)
}

/// `/v2/currencies/rates` and `/v2/currencies/pairs` answer the same documented shape.
fn pair_listing(sim: &SimState, answers: bool, headers: &HeaderMap, body: &[u8]) -> Response {
    if sim.inner().pair_endpoints == PairEndpoints::Failing {
        return (StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable").into_response();
    }
    if !answers {
        return (StatusCode::NOT_FOUND, "Not Found").into_response();
    }
    let filter: PairFilter = match signed_json(sim, headers, body) {
        Ok(f) => f,
        Err(refused) => return refused.into_response(),
    };
    let inner = sim.inner();
    let known = |code: &Option<String>| {
        code.as_deref()
            .is_none_or(|c| Currency::parse(c).is_some_and(|c| inner.catalog.get(&c).is_some()))
    };
    // The documented 400: each unknown filter named.
    let mut invalid = serde_json::Map::new();
    if !known(&filter.currency_from) {
        invalid.insert(
            "currency_from".into(),
            "The selected currency from is invalid.".into(),
        );
    }
    if !known(&filter.currency_to) {
        invalid.insert(
            "currency_to".into(),
            "The selected currency to is invalid.".into(),
        );
    }
    if !invalid.is_empty() {
        return (StatusCode::BAD_REQUEST, Json(json!({ "errors": invalid }))).into_response();
    }
    Json(pairs::listing(
        &inner.pairs,
        &inner.catalog,
        filter.currency_from.as_deref(),
        filter.currency_to.as_deref(),
    ))
    .into_response()
}

#[derive(Deserialize)]
struct CalculateRequest {
    sender_currency: String,
    receiver_currency: String,
    /// A string in our requests; a number in the docs' example request.
    sender_amount: Value,
}

/// The documented answer: `receiver_amount` is `sender_amount` x `price` (price: receiver
/// units for one sender unit), the fee is charged in the sender currency, and the price is
/// fixed for `fix_period` seconds from `ts_fixed` to `ts_release`.
async fn calculate(State(sim): State<Sim>, headers: HeaderMap, body: Bytes) -> Response {
    let request: CalculateRequest = match signed_json(&sim, &headers, &body) {
        Ok(r) => r,
        Err(refused) => return refused.into_response(),
    };
    // "limitation up to 30 requests per minute from one IP address" (CoinsPaid's API
    // reference); answered with its documented 429 body, which is not valid JSON.
    let over_limit = {
        let mut inner = sim.inner();
        let now = std::time::Instant::now();
        let last_minute = inner
            .calculate_calls
            .iter()
            .filter(|at| now.duration_since(**at) < std::time::Duration::from_secs(60))
            .count();
        inner.calculate_calls.push(now);
        last_minute >= CALCULATE_PER_MINUTE
    };
    if over_limit {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            CALCULATE_429_BODY,
        )
            .into_response();
    }
    let amount_text = match &request.sender_amount {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let Ok(amount) = Amount::parse(&amount_text) else {
        return errors(StatusCode::BAD_REQUEST, "sender_amount", "Invalid amount");
    };
    let (from, to) = (
        request.sender_currency.as_str(),
        request.receiver_currency.as_str(),
    );
    let listed = sim
        .inner()
        .pairs
        .iter()
        .any(|p| p.from == from && p.to == to);
    let quote = rates::convert(amount.value(), from, to).zip(rates::rate(from, to));
    let Some((received, price)) = quote.filter(|_| listed) else {
        return errors(
            StatusCode::BAD_REQUEST,
            "sender_currency",
            "Exchange is unavailable for given currencies",
        );
    };
    let fixed = chrono::Utc::now().timestamp();
    let fix_period = 60;
    Json(json!({"data": {
        "sender_currency": from,
        "sender_amount": amount.to_string(),
        "receiver_currency": to,
        "receiver_amount": received.to_string(),
        "fee_currency": from,
        "fee_amount": rates::fee(amount.value(), from).to_string(),
        "price": price.round_dp(8).to_string(),
        "ts_fixed": fixed,
        "ts_release": fixed + fix_period,
        "fix_period": fix_period,
    }}))
    .into_response()
}

/// CoinsPaid's limit on `/v2/exchange/calculate`, per IP address.
const CALCULATE_PER_MINUTE: usize = 30;

/// The 429 body of coinspaid/docs `api-documentation/api-reference.md`, as documented
/// (tests/fixtures/coinspaid/exchange_calculate_429_gh.txt).
pub(crate) const CALCULATE_429_BODY: &str =
    "{\n  \"errors\": {\n    \"error code: 1015\"\n  }\n}\n";

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

/// The documented 201 answer.
fn accepted(w: &SimWithdrawal) -> Response {
    let r = &w.request;
    let data = json!({
        "id": w.id,
        "foreign_id": w.foreign_id,
        "type": if r.convert_to.is_some() { "withdrawal_exchange" } else { "withdrawal" },
        "status": "processing",
        "amount": r.amount,
        "sender_amount": r.amount,
        "sender_currency": r.currency,
        "receiver_currency": received_currency(r),
        "receiver_amount": w.receiver_amount.to_string(),
    });
    (StatusCode::CREATED, Json(json!({ "data": data }))).into_response()
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
        sim.record(record(false, 403));
        return unauthorized(why);
    }
    let Some(request) = request.clone() else {
        sim.record(record(true, 400));
        return bad_content_format();
    };
    let _in_flight = sim.enter(&request.foreign_id);
    let _call = sim.enter_call();
    // A scripted refusal applies before the foreign_id check: CoinsPaid does not document the
    // order of its checks, so a retry may well be refused for another reason.
    let scripted = sim.next_scripted_refusal();
    if let Some(behavior) = scripted {
        let status = match &behavior {
            SubmitBehavior::Refuse { status, .. } => *status,
            SubmitBehavior::AuthError { code } if code == "bad_content_format" => 400,
            SubmitBehavior::AuthError { .. } => 403,
            SubmitBehavior::Redirect { status } => *status,
            _ => 500,
        };
        sim.record(record(true, status));
        return refusal(behavior);
    }
    if sim.refuses_reuse_of(&request.foreign_id) {
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
        SubmitBehavior::ServerError { status } | SubmitBehavior::Garbage { status, .. } => *status,
        SubmitBehavior::AcceptThenServerError { .. } => 502,
        _ => 201,
    };
    // Recorded on arrival, so a test sees a slow request before its answer.
    sim.record(record(true, planned));
    let create = || sim.create(&request, receiver_amount);
    match behavior {
        refusing @ (SubmitBehavior::Refuse { .. }
        | SubmitBehavior::AuthError { .. }
        | SubmitBehavior::Redirect { .. }) => refusal(refusing),
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

/// `GET /v2/transactions/info`: exactly one of `id` or `foreign_id`; the answer is the
/// transaction object at the top level, as documented, in a randomly drawn documented shape.
async fn transaction_info(State(sim): State<Sim>, headers: HeaderMap, body: Bytes) -> Response {
    let lookup: TransactionInfoRequest = match signed_json(&sim, &headers, &body) {
        Ok(r) => r,
        Err(refused) => return refused.into_response(),
    };
    let _call = sim.enter_call();
    let delay = sim.inner().lookup_delay;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let message = match (&lookup.foreign_id, lookup.id) {
        (None, None) => Some((StatusCode::BAD_REQUEST, "No parameters present")),
        (Some(_), Some(_)) => Some((
            StatusCode::NOT_FOUND,
            "Validation Exception: more than one param is present",
        )),
        _ => None,
    };
    if let Some((status, error)) = message {
        return (status, Json(json!({ "error": error }))).into_response();
    }
    let scripted = {
        let mut inner = sim.inner();
        let next = inner.lookup_answers.pop_front();
        next.or_else(|| inner.lookup_answer.clone())
    };
    if let Some((status, body)) = scripted {
        return (
            status_of(status),
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response();
    }
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
    // What CoinsPaid answers for a transaction it does not know is not documented; payoutd
    // must not read this (or any other) answer as "never created".
    let Some(w) = found else {
        return errors(
            StatusCode::BAD_REQUEST,
            "foreign_id",
            "Transaction not found",
        );
    };
    // Documented: processing and verifying are reported as not_confirmed.
    let status = match w.status.as_str() {
        "processing" => "not_confirmed",
        other => other,
    };
    let mut rng = sim.rng();
    let variant = delivery::Variant::random(&mut *rng);
    Json(delivery::report(&w, status, variant, &mut *rng)).into_response()
}

/// The answer to a scripted refusal.
fn refusal(behavior: SubmitBehavior) -> Response {
    match behavior {
        SubmitBehavior::Refuse {
            status,
            field: Some(field),
            message,
        } => errors(status_of(status), &field, &message),
        SubmitBehavior::Refuse {
            status,
            field: None,
            message,
        } => (status_of(status), Json(json!({ "error": message }))).into_response(),
        SubmitBehavior::AuthError { code } if code == "bad_content_format" => bad_content_format(),
        SubmitBehavior::AuthError { code } => {
            coded_error(StatusCode::FORBIDDEN, "Bad signature header", &code)
        }
        SubmitBehavior::Redirect { status } => (
            status_of(status),
            [(axum::http::header::LOCATION, "/_simulator/redirected")],
        )
            .into_response(),
        other => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("not a refusal: {other:?}"),
        )
            .into_response(),
    }
}

fn status_of(status: u16) -> StatusCode {
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// Where a scripted redirect points. Counts arrivals: payoutd must never come here.
async fn redirected(State(sim): State<Sim>) -> StatusCode {
    sim.inner().redirected += 1;
    StatusCode::OK
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

#[cfg(test)]
mod tests {
    #[test]
    fn the_calculate_429_body_is_the_documented_one() {
        assert_eq!(
            super::CALCULATE_429_BODY,
            include_str!("../../tests/fixtures/coinspaid/exchange_calculate_429_gh.txt")
        );
    }
}
