//! The outbound CoinsPaid client: one reqwest client, bodies serialized once and signed,
//! typed outcomes. It never retries a POST itself (the submission queue owns retries) and
//! never follows a redirect: a signed payout request must not be replayed to another host.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde::Serialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::callback::ProviderDetails;
use super::signing::Signer;
use super::wire::{
    lookup_records, ErrorBody, TransactionInfoRequest, WithdrawalAccepted, WithdrawalRequest,
    REQUEST_FIELDS,
};
use super::{KEY_HEADER, SIGNATURE_HEADER};
use crate::domain::travel_rule::Redactor;

mod catalog;

/// A call that did not produce a usable answer.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// No answer: connection refused or reset, timeout. The request may or may not have landed.
    #[error("transport: {0}")]
    Transport(String),
    /// An HTTP answer we cannot use as a success.
    #[error("HTTP {status}: {body}")]
    Http { status: u16, body: String },
    /// A 3xx. Never followed: a signed request goes to the configured host or nowhere.
    #[error("redirect {status} not followed")]
    Redirect { status: u16 },
    /// A 2xx answer that is not the documented shape.
    #[error("undecodable answer: {0}")]
    Decode(String),
}

impl ProviderError {
    /// The same error with the request's travel-rule values scrubbed from its text.
    fn scrubbed(self, r: &Redactor) -> Self {
        match self {
            Self::Transport(text) => Self::Transport(r.scrub(&text)),
            Self::Http { status, body } => Self::Http {
                status,
                body: r.scrub(&body),
            },
            Self::Decode(text) => Self::Decode(r.scrub(&text)),
            redirect @ Self::Redirect { .. } => redirect,
        }
    }

    fn transport(err: reqwest::Error) -> Self {
        // reqwest's Display may include the URL; it holds no secret (keys travel in headers).
        let kind = if err.is_timeout() {
            "timed out"
        } else if err.is_connect() {
            "connect failed"
        } else {
            "request failed"
        };
        Self::Transport(format!("{kind}: {err}"))
    }
}

/// What `POST /v2/withdrawal/crypto` meant for our withdrawal.
#[derive(Debug)]
pub enum SubmitOutcome {
    /// Created at CoinsPaid.
    Accepted(WithdrawalAccepted),
    /// A 400/422 whose `errors` object names a request field: CoinsPaid refused the
    /// payout itself. Proof that nothing was created only if no earlier attempt had an
    /// unknown outcome; the caller decides.
    Refused { status: u16, reason: String },
    /// Refused because the foreign_id is already known: it may well exist. Never release on this.
    AlreadyExists { reason: String },
    /// CoinsPaid's documented 403 (key or signature) or `bad_content_format`: our configuration
    /// or our bug, not a refusal of the payout. Retried, parked after the last attempt, alerted.
    OursToFix { status: u16, reason: String },
    /// No definitive answer (timeout, 5xx, redirect, rate limit, a 4xx that names no field of
    /// ours, garbage): retry with the same foreign_id.
    Unknown(ProviderError),
}

impl SubmitOutcome {
    /// The same outcome with the request's travel-rule values scrubbed from every text
    /// CoinsPaid sent back (a refusal may quote the sender's name), before anything stores,
    /// logs or notifies it.
    pub fn scrubbed(self, r: &Redactor) -> Self {
        if r.is_empty() {
            return self;
        }
        match self {
            accepted @ Self::Accepted(_) => accepted,
            Self::Refused { status, reason } => Self::Refused {
                status,
                reason: r.scrub(&reason),
            },
            Self::AlreadyExists { reason } => Self::AlreadyExists {
                reason: r.scrub(&reason),
            },
            Self::OursToFix { status, reason } => Self::OursToFix {
                status,
                reason: r.scrub(&reason),
            },
            Self::Unknown(err) => Self::Unknown(err.scrubbed(r)),
        }
    }

    /// A short label for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Accepted(_) => "accepted",
            Self::Refused { .. } => "refused",
            Self::AlreadyExists { .. } => "already_exists",
            Self::OursToFix { .. } => "configuration_error",
            Self::Unknown(ProviderError::Transport(_)) => "transport_error",
            Self::Unknown(ProviderError::Http { .. }) => "http_error",
            Self::Unknown(ProviderError::Redirect { .. }) => "redirect",
            Self::Unknown(ProviderError::Decode(_)) => "decode_error",
        }
    }
}

/// Why `GET /v2/transactions/info` gave no record to act on. Never a decision about money:
/// only [`LookupError::NotFound`] is CoinsPaid's word that it has no record, and even that only
/// allows a resend with the same foreign_id, never a release.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// No answer we can read: transport, 5xx, 3xx, an unreadable body.
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// A 4xx that is not CoinsPaid saying it has no such record: our credentials or address
    /// (403), a rate limit (429), a malformed look-up of ours, a proxy's page. A failed look-up.
    #[error("CoinsPaid answered {status}: {body}")]
    Refused { status: u16, body: String },
    /// A 2xx without exactly one readable withdrawal record for our foreign_id. A failed
    /// look-up: a 2xx is not CoinsPaid's documented way of saying "no record".
    #[error("no usable record in the answer: {0}")]
    Unusable(String),
    /// A `400`/`404`/`422` in CoinsPaid's own error shape (`{"errors": {...}}` or `{"error":
    /// ...}`) that is not one of its documented answers about the look-up request itself. What
    /// CoinsPaid answers for a foreign_id it does not know is not documented; this is the
    /// narrowest reading of "it has no record" (docs/CONTRACT-ADDITIONS.md section 5).
    #[error("CoinsPaid has no record of it ({status}: {body})")]
    NotFound { status: u16, body: String },
}

impl LookupError {
    /// A short label for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Provider(_) => "lookup_failed",
            Self::Refused { .. } => "refused",
            Self::Unusable(_) => "no_usable_record",
            Self::NotFound { .. } => "not_found",
        }
    }

    /// The same error with the withdrawal's travel-rule values scrubbed from CoinsPaid's text,
    /// before anything stores or logs it.
    pub fn scrubbed(self, r: &Redactor) -> Self {
        if r.is_empty() {
            return self;
        }
        match self {
            Self::Provider(err) => Self::Provider(err.scrubbed(r)),
            Self::Refused { status, body } => Self::Refused {
                status,
                body: r.scrub(&body),
            },
            Self::Unusable(why) => Self::Unusable(r.scrub(&why)),
            Self::NotFound { status, body } => Self::NotFound {
                status,
                body: r.scrub(&body),
            },
        }
    }

    /// CoinsPaid said it has no record: the only answer after which a withdrawal whose outcome
    /// is unknown may be sent again. Every other error is a failed look-up, retried later.
    pub fn is_no_record(&self) -> bool {
        matches!(self, Self::NotFound { .. })
    }
}

/// Slots of a client built without [`CoinsPaidClient::with_call_slots`].
const DEFAULT_CALL_SLOTS: usize = 64;

/// Cloned for every submission attempt: each part is shared, not copied.
#[derive(Clone, Debug)]
pub struct CoinsPaidClient {
    http: reqwest::Client,
    base_url: Arc<str>,
    signer: Arc<Signer>,
    timeout: Duration,
    /// The one bound per process on withdrawal work at CoinsPaid: submission attempts (first
    /// ones and the worker's), look-ups and operators' actions each hold a slot while they
    /// call (`worker.max_in_flight`).
    call_slots: Arc<Semaphore>,
}

impl CoinsPaidClient {
    /// `base_url` is the part before `/v2/...`, e.g. `https://app.cryptoprocessing.com/api`.
    pub fn new(base_url: &str, signer: Signer, timeout: Duration) -> Result<Self, ProviderError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("payoutd/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ProviderError::Transport(e.to_string()))?;
        Ok(Self {
            http,
            base_url: base_url.trim_end_matches('/').into(),
            signer: Arc::new(signer),
            timeout,
            call_slots: Arc::new(Semaphore::new(DEFAULT_CALL_SLOTS)),
        })
    }

    /// At most `slots` units of withdrawal work at CoinsPaid at once in this process, whoever
    /// makes them (see [`Self::call_slot`]).
    pub fn with_call_slots(mut self, slots: usize) -> Self {
        self.call_slots = Arc::new(Semaphore::new(slots.max(1)));
        self
    }

    /// The shared bound on withdrawal work at CoinsPaid. Taken once per unit of work (a
    /// submission attempt with its look-ups, one look-up, one operator action), never nested,
    /// so two holders cannot wait for each other. Fair: waiters are served in arrival order.
    pub fn call_slots(&self) -> Arc<Semaphore> {
        self.call_slots.clone()
    }

    /// Waits for a slot of [`Self::call_slots`]; held until dropped.
    pub async fn call_slot(&self) -> OwnedSemaphorePermit {
        self.call_slots
            .clone()
            .acquire_owned()
            .await
            .expect("the call slots are never closed")
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// How long a call may take before its outcome counts as unknown.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// `POST` with a signed JSON body; see [`Self::send`].
    pub(super) async fn post(
        &self,
        endpoint: &'static str,
        body: &impl Serialize,
    ) -> Result<(StatusCode, bytes::Bytes), ProviderError> {
        let bytes = serde_json::to_vec(body).map_err(|e| ProviderError::Decode(e.to_string()))?;
        self.send(Method::POST, endpoint, bytes).await
    }

    /// Signs `bytes` and sends exactly those bytes. A 3xx is an error, never followed.
    async fn send(
        &self,
        method: Method,
        endpoint: &'static str,
        bytes: Vec<u8>,
    ) -> Result<(StatusCode, bytes::Bytes), ProviderError> {
        let signature = self.signer.sign(&bytes);
        let started = Instant::now();
        let result = self
            .http
            .request(method, format!("{}{}", self.base_url, endpoint))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(KEY_HEADER, self.signer.key())
            .header(SIGNATURE_HEADER, signature)
            .body(bytes)
            .send()
            .await;
        let result = match result {
            Ok(response) if response.status().is_redirection() => Err(ProviderError::Redirect {
                status: response.status().as_u16(),
            }),
            Ok(response) => {
                let status = response.status();
                response
                    .bytes()
                    .await
                    .map(|b| (status, b))
                    .map_err(ProviderError::transport)
            }
            Err(err) => Err(ProviderError::transport(err)),
        };
        let outcome = match &result {
            Ok((status, _)) if status.is_success() => "2xx",
            Ok((status, _)) if status.is_client_error() => "4xx",
            Ok(_) => "5xx",
            Err(ProviderError::Redirect { .. }) => "3xx",
            Err(_) => "transport_error",
        };
        metrics::histogram!("payoutd_provider_call_duration_seconds", "endpoint" => endpoint)
            .record(started.elapsed().as_secs_f64());
        metrics::counter!("payoutd_provider_calls_total", "endpoint" => endpoint, "outcome" => outcome)
            .increment(1);
        result
    }

    /// `POST /v2/withdrawal/crypto`, classified for the state machine. Only a refusal in the
    /// documented field-error shape that names a field we sent counts as a refusal. Every
    /// text of the outcome comes back scrubbed of the request's travel-rule values.
    pub async fn submit_withdrawal(&self, request: &WithdrawalRequest) -> SubmitOutcome {
        self.submit_unscrubbed(request)
            .await
            .scrubbed(&request.travel_rule.redactor())
    }

    async fn submit_unscrubbed(&self, request: &WithdrawalRequest) -> SubmitOutcome {
        let bytes = match serde_json::to_vec(request) {
            Ok(bytes) => bytes,
            Err(err) => return SubmitOutcome::Unknown(ProviderError::Decode(err.to_string())),
        };
        let (status, body) = match self
            .send(Method::POST, "/v2/withdrawal/crypto", bytes)
            .await
        {
            Ok(answer) => answer,
            Err(err) => return SubmitOutcome::Unknown(err),
        };
        classify_submit_answer(status, &body, &request.foreign_id)
    }

    /// `GET /v2/transactions/info` with the signed body `{"foreign_id": ...}`, as documented.
    /// Only a withdrawal record naming our foreign_id is returned; anything else is an error.
    pub async fn transaction_info(&self, foreign_id: &str) -> Result<ProviderDetails, LookupError> {
        let request = TransactionInfoRequest {
            foreign_id: Some(foreign_id.to_owned()),
            id: None,
        };
        let bytes =
            serde_json::to_vec(&request).map_err(|e| ProviderError::Decode(e.to_string()))?;
        let (status, body) = self
            .send(Method::GET, "/v2/transactions/info", bytes)
            .await?;
        classify_lookup_answer(status, &body, foreign_id)
    }
}

/// Reads a transactions/info answer. Pure, so every documented and undocumented answer is a
/// unit test: only our one withdrawal record is a record, only [`LookupError::NotFound`] says
/// there is none, and everything else is a failed look-up.
pub fn classify_lookup_answer(
    status: StatusCode,
    body: &[u8],
    foreign_id: &str,
) -> Result<ProviderDetails, LookupError> {
    if status.is_success() {
        let answer: serde_json::Value =
            serde_json::from_slice(body).map_err(|e| ProviderError::Decode(e.to_string()))?;
        return record_for(&answer, foreign_id);
    }
    if !status.is_client_error() {
        return Err(ProviderError::Http {
            status: status.as_u16(),
            body: truncate(body),
        }
        .into());
    }
    let body_text = truncate(body);
    let says_no_record = matches!(status.as_u16(), 400 | 404 | 422)
        && ErrorBody::parse(body).is_some_and(|e| e.says_no_record());
    if says_no_record {
        Err(LookupError::NotFound {
            status: status.as_u16(),
            body: body_text,
        })
    } else {
        Err(LookupError::Refused {
            status: status.as_u16(),
            body: body_text,
        })
    }
}

/// Reads a withdrawal/crypto answer. Pure, so every documented answer is a unit test.
pub fn classify_submit_answer(status: StatusCode, body: &[u8], foreign_id: &str) -> SubmitOutcome {
    let http_error = || ProviderError::Http {
        status: status.as_u16(),
        body: truncate(body),
    };
    if status.is_success() {
        let answer = serde_json::from_slice::<serde_json::Value>(body).ok();
        return match answer.as_ref().and_then(WithdrawalAccepted::from_answer) {
            Some(accepted) if accepted.foreign_id == foreign_id => {
                SubmitOutcome::Accepted(accepted)
            }
            Some(accepted) => SubmitOutcome::Unknown(ProviderError::Decode(format!(
                "the answer names foreign_id {:?}, not ours",
                accepted.foreign_id
            ))),
            None => SubmitOutcome::Unknown(ProviderError::Decode(
                "a 2xx without data.id and data.foreign_id".into(),
            )),
        };
    }
    // A 4xx we cannot read might come from a proxy in front of CoinsPaid rather than
    // CoinsPaid itself; only a refusal in the documented shape may release money.
    let Some(error) = ErrorBody::parse(body).filter(|_| status.is_client_error()) else {
        return SubmitOutcome::Unknown(http_error());
    };
    if error.is_ours_to_fix() {
        return SubmitOutcome::OursToFix {
            status: status.as_u16(),
            reason: error.summary(),
        };
    }
    if !matches!(status.as_u16(), 400 | 422) {
        return SubmitOutcome::Unknown(http_error());
    }
    if error.mentions_foreign_id() {
        return SubmitOutcome::AlreadyExists {
            reason: error.summary(),
        };
    }
    if error.fields().any(|field| REQUEST_FIELDS.contains(&field)) {
        return SubmitOutcome::Refused {
            status: status.as_u16(),
            reason: error.summary(),
        };
    }
    // A refusal that names no request field (the undocumented merchant-balance answer, say)
    // says nothing about this payout: retried, then parked.
    SubmitOutcome::Unknown(http_error())
}

/// The one withdrawal record for `foreign_id` in a look-up answer, read as a top-level object
/// (documented) or enveloped in `data`, an object or a list.
pub fn record_for(
    answer: &serde_json::Value,
    foreign_id: &str,
) -> Result<ProviderDetails, LookupError> {
    let records = lookup_records(answer);
    let total = records.len();
    let mut ours = records
        .into_iter()
        .filter(|r| r.foreign_id.as_deref() == Some(foreign_id) && r.is_withdrawal());
    match (ours.next(), ours.next()) {
        (Some(record), None) if record.status.as_deref().is_some_and(|s| !s.is_empty()) => {
            Ok(record.into())
        }
        (Some(_), None) => Err(LookupError::Unusable(
            "the record for our foreign_id has no readable status".into(),
        )),
        (Some(_), Some(_)) => Err(LookupError::Unusable(
            "more than one withdrawal record names our foreign_id".into(),
        )),
        (None, _) => Err(LookupError::Unusable(format!(
            "none of {total} record(s) is a withdrawal with our foreign_id"
        ))),
    }
}

pub(super) fn truncate(body: &[u8]) -> String {
    const MAX: usize = 512;
    let text = String::from_utf8_lossy(&body[..body.len().min(MAX)]);
    if body.len() > MAX {
        format!("{text}…")
    } else {
        text.into_owned()
    }
}
