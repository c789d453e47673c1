//! The sections whose code has no better home for them (or would import this module back).
//! No defaults here: they are in `config/default.toml`.

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;
use serde::{Deserialize, Deserializer};
use url::Url;

use super::ConfigError;
use crate::coinspaid::signing::SecretString;
use crate::domain::travel_rule::{TravelRule, TravelRuleInput, TravelRulePolicy};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub listen_addr: SocketAddr,
    /// Bearer tokens the website backend may use. Empty in development means "use the dev token".
    pub api_tokens: Vec<SecretString>,
    pub request_timeout_secs: u64,
    /// A connection must send a whole request head within this, the first one and each next
    /// one on a kept-alive connection; else it is closed (slow or idle clients).
    pub header_read_timeout_secs: u64,
    /// Client connections open at once (lowered to fit `ulimit -n`); more wait to be accepted.
    pub max_connections: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoinsPaidSettings {
    /// Base URL; the service calls `{api_url}/v2/...`. Unset: embedded simulator (development
    /// only).
    #[serde(default, deserialize_with = "optional_url")]
    pub api_url: Option<Url>,
    // The key and the secrets are set in the environment only; absent: empty.
    #[serde(default)]
    pub api_key: String,
    #[serde(default)]
    pub api_secret: SecretString,
    /// The key pair being replaced, still accepted together on callbacks during a change-over
    /// (never used to send). CoinsPaid gives a new pair a new key, so both are needed: set
    /// both or neither. Empty: none.
    #[serde(default)]
    pub api_key_previous: String,
    #[serde(default)]
    pub api_secret_previous: SecretString,
    pub timeout_secs: u64,
}

/// Rate limits (0: off) and the callback route's allow-list.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AbuseSettings {
    /// Callbacks that fail verification, per second per source address, and the burst above
    /// it (a verified callback is never limited).
    pub callback_per_second: u32,
    pub callback_burst: u32,
    /// `/v1` requests per second per configured bearer token, and the burst above it.
    pub api_per_second: u32,
    pub api_burst: u32,
    /// `/v1` requests with a missing or unknown token, per second per source address (all
    /// such tokens share the address's bucket), and the burst above it.
    pub unauthenticated_per_second: u32,
    pub unauthenticated_burst: u32,
    /// CIDRs (or addresses) callbacks are accepted from; empty: any.
    #[serde(deserialize_with = "networks")]
    pub callback_allow: Vec<IpNet>,
    /// Proxies whose `X-Forwarded-For` is believed (CIDRs or addresses); empty: none.
    #[serde(deserialize_with = "networks")]
    pub trusted_proxies: Vec<IpNet>,
}

/// `GET /metrics`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSettings {
    /// The database-derived gauges are read at most this often per process (0: every scrape).
    pub db_gauges_interval_secs: u64,
}

/// The currency list is loaded from CoinsPaid's `/v2/currencies/list` and refreshed.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CurrencySettings {
    pub refresh_secs: u64,
}

/// MiCA travel-rule data (`sender_*`, `receiver_*` of `POST /v1/withdrawals`): the merchant's
/// defaults for either party, whether the data is required, and how long it is kept.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TravelRuleSettings {
    /// A withdrawal whose sender or receiver is neither given nor defaulted is refused.
    pub required: bool,
    /// Stands in for a request without sender_type/sender_data, e.g. `legal` with the
    /// merchant's company when the merchant itself is the sender.
    pub default_sender_type: Option<String>,
    pub default_sender_data: Option<serde_json::Map<String, serde_json::Value>>,
    /// Stands in for a request without receiver_type/receiver_data, e.g. `self`.
    pub default_receiver_type: Option<String>,
    pub default_receiver_data: Option<serde_json::Map<String, serde_json::Value>>,
    /// Days a withdrawal's travel-rule data is kept after it became terminal.
    pub retention_days: u32,
    /// How often the purge loop runs (0: not in this process).
    pub purge_interval_secs: u64,
}

/// The defaults may be a person's data: only their types are shown.
impl std::fmt::Debug for TravelRuleSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TravelRuleSettings")
            .field("required", &self.required)
            .field("default_sender_type", &self.default_sender_type)
            .field("default_receiver_type", &self.default_receiver_type)
            .field("retention_days", &self.retention_days)
            .field("purge_interval_secs", &self.purge_interval_secs)
            .finish_non_exhaustive()
    }
}

impl TravelRuleSettings {
    /// The defaults parsed like a request's fields; an error names the configuration key.
    pub fn policy(&self, today: chrono::NaiveDate) -> Result<TravelRulePolicy, ConfigError> {
        let defaults = TravelRule::parse(
            &TravelRuleInput {
                sender_type: self.default_sender_type.clone(),
                sender_data: self.default_sender_data.clone(),
                receiver_type: self.default_receiver_type.clone(),
                receiver_data: self.default_receiver_data.clone(),
            },
            today,
        )
        .map_err(|e| {
            ConfigError::Invalid(format!("travel_rule.default_{}: {}", e.field, e.message))
        })?;
        Ok(TravelRulePolicy {
            required: self.required,
            default_sender: defaults.sender,
            default_receiver: defaults.receiver,
        })
    }
}

/// The CoinsPaid simulator: embedded in development without CoinsPaid settings, or run alone
/// with `payoutd simulator`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimulatorConfig {
    pub listen_addr: SocketAddr,
    /// Wait before each callback, so a demo shows `processing` before `confirmed`.
    pub callback_delay_ms: u64,
    /// Where `payoutd simulator` posts callbacks (the embedded one always calls its own service).
    #[serde(deserialize_with = "url")]
    pub callback_url: Url,
}

/// A URL; the error never quotes the text (a URL may carry a password).
fn url<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Url, D::Error> {
    let text = String::deserialize(deserializer)?;
    Url::parse(&text).map_err(|e| serde::de::Error::custom(format!("not a URL: {e}")))
}

pub(crate) fn optional_url<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Url>, D::Error> {
    url(deserializer).map(Some)
}

/// CIDRs (`10.0.0.0/8`) or single addresses (`203.0.113.7`, taken as `/32` or `/128`).
fn networks<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<IpNet>, D::Error> {
    Vec::<String>::deserialize(deserializer)?
        .iter()
        .map(|text| {
            let text = text.trim();
            text.parse::<IpNet>()
                .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    serde::de::Error::custom(format!("{text:?} is not an IP address or CIDR"))
                })
        })
        .collect()
}

/// Signed status-change notifications to the website backend.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifySettings {
    /// Run the delivery loop in this process (with a URL set).
    pub enabled: bool,
    /// Unset: notifications are stored but not sent.
    #[serde(default, deserialize_with = "optional_url")]
    pub url: Option<Url>,
    /// Standard Webhooks secrets shared with the website: `whsec_<base64>`, comma-separated,
    /// current first; each signs every notification (see [`crate::standard_webhooks`]).
    /// Set in the environment only; absent: empty.
    #[serde(default)]
    pub secret: SecretString,
    pub timeout_secs: u64,
    pub poll_interval_ms: u64,
    pub backoff_max_secs: u64,
}
