//! The outbound CoinsPaid client: one reqwest client, bodies serialized once and signed,
//! typed outcomes. It never retries a POST itself; the submission queue owns retries.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde::Serialize;

use super::signing::Signer;
use super::wire::{
    Envelope, ErrorBody, OneOrMany, TransactionInfo, TransactionInfoRequest, WithdrawalAccepted,
    WithdrawalRequest,
};
use super::{KEY_HEADER, SIGNATURE_HEADER};

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
    /// A 2xx answer that is not the documented shape.
    #[error("undecodable answer: {0}")]
    Decode(String),
}

impl ProviderError {
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
    /// Definitively refused (a 4xx about the request itself): nothing was created.
    Refused { status: u16, reason: String },
    /// Refused because the foreign_id is already known: it may well exist. Never release on this.
    AlreadyExists { reason: String },
    /// No definitive answer (timeout, 5xx, auth or rate limit, garbage): retry with the same foreign_id.
    Unknown(ProviderError),
}

impl SubmitOutcome {
    /// A short label for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Accepted(_) => "accepted",
            Self::Refused { .. } => "refused",
            Self::AlreadyExists { .. } => "already_exists",
            Self::Unknown(ProviderError::Transport(_)) => "transport_error",
            Self::Unknown(ProviderError::Http { .. }) => "http_error",
            Self::Unknown(ProviderError::Decode(_)) => "decode_error",
        }
    }
}

#[derive(Clone, Debug)]
pub struct CoinsPaidClient {
    http: reqwest::Client,
    base_url: String,
    signer: Signer,
}

impl CoinsPaidClient {
    /// `base_url` is the part before `/v2/...`, e.g. `https://app.cryptoprocessing.com/api`.
    pub fn new(base_url: &str, signer: Signer, timeout: Duration) -> Result<Self, ProviderError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("payoutd/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ProviderError::Transport(e.to_string()))?;
        Ok(Self {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            signer,
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Serializes `body` once, signs those bytes, sends those bytes.
    pub(super) async fn post(
        &self,
        endpoint: &'static str,
        body: &impl Serialize,
    ) -> Result<(StatusCode, bytes::Bytes), ProviderError> {
        let bytes = serde_json::to_vec(body).map_err(|e| ProviderError::Decode(e.to_string()))?;
        let signature = self.signer.sign(&bytes);
        let started = Instant::now();
        let result = self
            .http
            .post(format!("{}{}", self.base_url, endpoint))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(KEY_HEADER, self.signer.key())
            .header(SIGNATURE_HEADER, signature)
            .body(bytes)
            .send()
            .await;
        let result = match result {
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
            Err(_) => "transport_error",
        };
        metrics::histogram!("payoutd_provider_call_duration_seconds", "endpoint" => endpoint)
            .record(started.elapsed().as_secs_f64());
        metrics::counter!("payoutd_provider_calls_total", "endpoint" => endpoint, "outcome" => outcome)
            .increment(1);
        result
    }

    /// `POST /v2/withdrawal/crypto`, classified for the state machine.
    pub async fn submit_withdrawal(&self, request: &WithdrawalRequest) -> SubmitOutcome {
        let (status, body) = match self.post("/v2/withdrawal/crypto", request).await {
            Ok(answer) => answer,
            Err(err) => return SubmitOutcome::Unknown(err),
        };
        if status.is_success() {
            return match serde_json::from_slice::<Envelope<WithdrawalAccepted>>(&body) {
                Ok(envelope) => SubmitOutcome::Accepted(envelope.data),
                Err(err) => SubmitOutcome::Unknown(ProviderError::Decode(err.to_string())),
            };
        }
        let http_error = || ProviderError::Http {
            status: status.as_u16(),
            body: truncate(&body),
        };
        if !status.is_client_error() || is_retryable_client_status(status) {
            return SubmitOutcome::Unknown(http_error());
        }
        match serde_json::from_slice::<ErrorBody>(&body) {
            Ok(error) if error.mentions_foreign_id() => SubmitOutcome::AlreadyExists {
                reason: error.summary(),
            },
            Ok(error) => SubmitOutcome::Refused {
                status: status.as_u16(),
                reason: error.summary(),
            },
            // A 4xx we cannot read might come from a proxy in front of CoinsPaid rather than
            // CoinsPaid itself; only a refusal in the documented shape may release money.
            Err(_) => SubmitOutcome::Unknown(http_error()),
        }
    }

    /// `POST /v2/transactions/info` by our foreign id. `Ok(None)`: CoinsPaid does not know it.
    pub async fn transaction_info(
        &self,
        foreign_id: &str,
    ) -> Result<Option<TransactionInfo>, ProviderError> {
        let request = TransactionInfoRequest {
            foreign_id: Some(foreign_id.to_owned()),
            id: None,
        };
        let (status, body) = self.post("/v2/transactions/info", &request).await?;
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(ProviderError::Http {
                status: status.as_u16(),
                body: truncate(&body),
            });
        }
        serde_json::from_slice::<Envelope<OneOrMany<TransactionInfo>>>(&body)
            .map(|e| e.data.into_first())
            .map_err(|e| ProviderError::Decode(e.to_string()))
    }
}

/// 4xx answers that say nothing about the withdrawal itself: our credentials (401/403), a
/// timeout at a proxy (408), rate limiting (429). Nothing was created, but the request is fine:
/// retry rather than refuse the user's payout.
fn is_retryable_client_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 401 | 403 | 408 | 425 | 429)
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
