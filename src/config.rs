//! Settings: `config/default.toml`, then `config/$PAYOUTD_ENV.toml`, then the environment.
//! Validated once at start; the rest of the program only sees a valid [`Settings`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rust_decimal::Decimal;
use serde::Deserialize;

use crate::coinspaid::signing::SecretString;
use crate::domain::travel_rule::{TravelRule, TravelRuleInput, TravelRulePolicy};
use crate::domain::{Amount, Currency};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    Development,
    Production,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub env: Environment,
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub coinspaid: CoinsPaidSettings,
    pub worker: WorkerSettings,
    pub log: LogSettings,
    pub simulator: SimulatorConfig,
    pub reconciler: ReconcilerSettings,
    pub notify: NotifySettings,
    pub currencies: CurrencySettings,
    pub travel_rule: TravelRuleSettings,
    /// Default withdrawal limits per currency code; per-user overrides live in the database.
    pub limits: HashMap<String, CurrencyLimits>,
    /// The smallest withdrawal per paying currency code, as decimal strings, over the minimums
    /// CoinsPaid documents (see `CurrencyCatalog::builtin`). Read them with
    /// [`Settings::withdrawal_minimums`].
    pub withdrawal_minimums: HashMap<String, String>,
    pub metrics: MetricsSettings,
    pub abuse: AbuseSettings,
    pub retention: RetentionSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    pub listen_addr: SocketAddr,
    /// Bearer tokens the website backend may use. Empty in development means "use the dev token".
    pub api_tokens: Vec<SecretString>,
    pub request_timeout_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSettings {
    /// May carry a password, hence secret.
    pub url: SecretString,
    pub max_connections: u32,
    pub acquire_timeout_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CoinsPaidSettings {
    /// Base URL; the service calls `{api_url}/v2/...`. Empty: embedded simulator (development only).
    pub api_url: String,
    pub api_key: String,
    pub api_secret: SecretString,
    pub timeout_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkerSettings {
    /// Run the submission worker in this process (turn off for API-only replicas).
    pub enabled: bool,
    pub poll_interval_ms: u64,
    /// After this many failed attempts a submission parks: still held, visible in metrics.
    pub max_attempts: i32,
    /// How long a worker owns a submission; must exceed the provider timeout.
    pub lease_secs: u64,
    pub backoff_base_ms: u64,
    pub backoff_max_secs: u64,
}

/// Looks up withdrawals CoinsPaid has not called back about, well inside its ~24 h of
/// callback retries.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReconcilerSettings {
    pub enabled: bool,
    pub interval_secs: u64,
    /// A pending or processing withdrawal this long without a change is looked up.
    pub min_age_secs: u64,
    /// Wait before looking the same withdrawal up again.
    pub recheck_secs: u64,
    pub batch: i64,
}

impl Default for ReconcilerSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            interval_secs: 60,
            min_age_secs: 1_800,
            recheck_secs: 1_800,
            batch: 100,
        }
    }
}

/// Signed status-change notifications to the website backend.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotifySettings {
    /// Run the delivery loop in this process (with a URL set).
    pub enabled: bool,
    /// Empty: notifications are stored but not sent.
    pub url: String,
    /// HMAC-SHA256 key shared with the website.
    pub secret: SecretString,
    pub timeout_secs: u64,
    pub poll_interval_ms: u64,
    pub backoff_max_secs: u64,
}

impl Default for NotifySettings {
    fn default() -> Self {
        Self {
            enabled: true,
            url: String::new(),
            secret: SecretString::default(),
            timeout_secs: 10,
            poll_interval_ms: 500,
            backoff_max_secs: 3_600,
        }
    }
}

/// Rate limits (0: off) and the callback route's allow-list.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AbuseSettings {
    /// Callback requests per second per source address, and the burst above it.
    pub callback_per_second: u32,
    pub callback_burst: u32,
    /// `/v1` requests per second per bearer token, and the burst above it.
    pub api_per_second: u32,
    pub api_burst: u32,
    /// CIDRs (or addresses) callbacks are accepted from; empty: any.
    pub callback_allow: Vec<String>,
    /// Proxies whose `X-Forwarded-For` is believed (CIDRs or addresses); empty: none.
    pub trusted_proxies: Vec<String>,
}

impl Default for AbuseSettings {
    fn default() -> Self {
        Self {
            callback_per_second: 500,
            callback_burst: 2_000,
            api_per_second: 5_000,
            api_burst: 10_000,
            callback_allow: Vec::new(),
            trusted_proxies: Vec::new(),
        }
    }
}

/// How long rows that only record the past are kept. Ledger entries and withdrawals are
/// never deleted.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionSettings {
    /// How often the deletion runs (0: not in this process).
    pub interval_secs: u64,
    pub callbacks_days: u32,
    /// Delivered notifications (and, with no notification URL, undelivered ones).
    pub notifications_days: u32,
    /// At least 24: a client retrying within a day must still get its replay.
    pub idempotency_key_hours: u32,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        Self {
            interval_secs: 3_600,
            callbacks_days: 90,
            notifications_days: 30,
            idempotency_key_hours: 72,
        }
    }
}

/// `GET /metrics`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsSettings {
    /// The database-derived gauges are read at most this often per process (0: every scrape).
    pub db_gauges_interval_secs: u64,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        Self {
            db_gauges_interval_secs: 15,
        }
    }
}

/// The currency list is loaded from CoinsPaid's `/v2/currencies/list` and refreshed.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CurrencySettings {
    pub refresh_secs: u64,
}

impl Default for CurrencySettings {
    fn default() -> Self {
        Self {
            refresh_secs: 3_600,
        }
    }
}

/// MiCA travel-rule data (`sender_*`, `receiver_*` of `POST /v1/withdrawals`): the merchant's
/// defaults for either party, whether the data is required, and how long it is kept.
#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
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

impl Default for TravelRuleSettings {
    fn default() -> Self {
        Self {
            required: false,
            default_sender_type: None,
            default_sender_data: None,
            default_receiver_type: None,
            default_receiver_data: None,
            retention_days: 30,
            purge_interval_secs: 3_600,
        }
    }
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

/// Limits for one currency; absent means unlimited.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CurrencyLimits {
    pub max_per_withdrawal: Option<Decimal>,
    /// Over any rolling 24 hours, counting withdrawals that were not cancelled or rejected.
    pub max_per_day: Option<Decimal>,
}

/// The CoinsPaid simulator: embedded in development without CoinsPaid settings, or run alone
/// with `payoutd simulator`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimulatorConfig {
    pub listen_addr: SocketAddr,
    /// Wait before each callback, so a demo shows `processing` before `confirmed`.
    pub callback_delay_ms: u64,
    /// Where `payoutd simulator` posts callbacks (the embedded one always calls its own service).
    pub callback_url: String,
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        Self {
            listen_addr: SocketAddr::from(([127, 0, 0, 1], 8090)),
            callback_delay_ms: 2_000,
            callback_url: "http://127.0.0.1:8080/v1/callbacks/coinspaid".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    /// `pretty` in development, `json` in production unless set.
    pub format: Option<LogFormat>,
    /// An `EnvFilter` directive; `RUST_LOG` wins when set.
    pub filter: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            env: Environment::Development,
            server: ServerSettings::default(),
            database: DatabaseSettings::default(),
            coinspaid: CoinsPaidSettings::default(),
            worker: WorkerSettings::default(),
            log: LogSettings::default(),
            simulator: SimulatorConfig::default(),
            reconciler: ReconcilerSettings::default(),
            notify: NotifySettings::default(),
            currencies: CurrencySettings::default(),
            travel_rule: TravelRuleSettings::default(),
            limits: HashMap::new(),
            withdrawal_minimums: HashMap::new(),
            metrics: MetricsSettings::default(),
            abuse: AbuseSettings::default(),
            retention: RetentionSettings::default(),
        }
    }
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            listen_addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            api_tokens: Vec::new(),
            request_timeout_secs: 30,
        }
    }
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: SecretString::new("postgres://postgres@127.0.0.1:5432/payoutd"),
            max_connections: 16,
            acquire_timeout_secs: 5,
        }
    }
}

impl Default for CoinsPaidSettings {
    fn default() -> Self {
        Self {
            api_url: String::new(),
            api_key: String::new(),
            api_secret: SecretString::default(),
            timeout_secs: 15,
        }
    }
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            poll_interval_ms: 500,
            max_attempts: 25,
            lease_secs: 120,
            backoff_base_ms: 1_000,
            backoff_max_secs: 600,
        }
    }
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: None,
            filter: "info,payoutd=info,sqlx=warn".into(),
        }
    }
}

/// The well-known token used in development when none is configured. Printed at start.
pub const DEV_API_TOKEN: &str = "payoutd-dev-token";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// Where the service sends withdrawals.
#[derive(Debug, Clone)]
pub enum ProviderMode {
    CoinsPaid,
    /// Development without CoinsPaid settings: an in-process simulator.
    EmbeddedSimulator,
}

/// Environment variable -> TOML key, as named in the contract.
const ENV_KEYS: &[(&str, &str)] = &[
    ("PAYOUTD_ENV", "env"),
    ("DATABASE_URL", "database.url"),
    ("PAYOUTD_LISTEN_ADDR", "server.listen_addr"),
    ("PAYOUTD_API_TOKENS", "server.api_tokens"),
    ("COINSPAID_API_URL", "coinspaid.api_url"),
    ("COINSPAID_API_KEY", "coinspaid.api_key"),
    ("COINSPAID_API_SECRET", "coinspaid.api_secret"),
    ("PAYOUTD_LOG_FORMAT", "log.format"),
    ("PAYOUTD_WORKER_ENABLED", "worker.enabled"),
    ("PAYOUTD_NOTIFY_URL", "notify.url"),
    ("PAYOUTD_NOTIFY_SECRET", "notify.secret"),
    ("PAYOUTD_SIMULATOR_LISTEN_ADDR", "simulator.listen_addr"),
    ("PAYOUTD_SIMULATOR_CALLBACK_URL", "simulator.callback_url"),
    (
        "PAYOUTD_SIMULATOR_CALLBACK_DELAY_MS",
        "simulator.callback_delay_ms",
    ),
];

impl Settings {
    /// Loads from `./config` (or `$PAYOUTD_CONFIG_DIR`) and the process environment.
    pub fn load() -> Result<Self, ConfigError> {
        let dir = std::env::var_os("PAYOUTD_CONFIG_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("config"));
        Self::load_from(&dir, |name| std::env::var(name).ok())
    }

    /// The loading rules with the environment passed in, so tests need not touch the process env.
    pub fn load_from(
        dir: &Path,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut table = read_table(&dir.join("default.toml"))?;
        let env_name = env("PAYOUTD_ENV")
            .or_else(|| table.get("env").and_then(|v| v.as_str()).map(str::to_owned))
            .unwrap_or_else(|| "development".into());
        if !matches!(env_name.as_str(), "development" | "production") {
            return Err(ConfigError::Invalid(format!(
                "PAYOUTD_ENV must be development or production, not {env_name:?}"
            )));
        }
        merge(
            &mut table,
            read_table(&dir.join(format!("{env_name}.toml")))?,
        );
        for (var, key) in ENV_KEYS {
            if let Some(value) = env(var) {
                set_path(&mut table, key, env_value(key, &value));
            }
        }
        let settings: Settings = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Invalid(e.message().to_owned()))?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |m: &str| Err(ConfigError::Invalid(m.to_owned()));
        let cp = &self.coinspaid;
        let any_coinspaid =
            !cp.api_url.is_empty() || !cp.api_key.is_empty() || !cp.api_secret.is_empty();
        let all_coinspaid =
            !cp.api_url.is_empty() && !cp.api_key.is_empty() && !cp.api_secret.is_empty();
        if any_coinspaid && !all_coinspaid {
            return invalid(
                "COINSPAID_API_URL, COINSPAID_API_KEY and COINSPAID_API_SECRET go together",
            );
        }
        let is_http = cp.api_url.starts_with("https://") || cp.api_url.starts_with("http://");
        if !cp.api_url.is_empty() && !is_http {
            return invalid("COINSPAID_API_URL must be an http(s) URL");
        }
        if self.env == Environment::Production {
            if !all_coinspaid {
                return invalid("production needs COINSPAID_API_URL, COINSPAID_API_KEY and COINSPAID_API_SECRET");
            }
            if !cp.api_url.starts_with("https://") {
                return invalid("production needs an https COINSPAID_API_URL");
            }
            if self.server.api_tokens.is_empty() {
                return invalid("production needs PAYOUTD_API_TOKENS");
            }
        }
        if self.server.api_tokens.iter().any(|t| t.expose().len() < 16) {
            return invalid("every API token must be at least 16 characters");
        }
        if self.worker.lease_secs <= cp.timeout_secs {
            return invalid("worker.lease_secs must exceed coinspaid.timeout_secs");
        }
        if !self.notify.url.is_empty() && self.notify.secret.expose().len() < 16 {
            return invalid(
                "PAYOUTD_NOTIFY_URL needs a PAYOUTD_NOTIFY_SECRET of at least 16 characters",
            );
        }
        if self.reconciler.batch < 1 || self.reconciler.interval_secs == 0 {
            return invalid("reconciler.batch and reconciler.interval_secs must be positive");
        }
        if self.worker.max_attempts < 1 || self.database.max_connections < 2 {
            return invalid("worker.max_attempts must be >= 1 and database.max_connections >= 2");
        }
        for (code, text) in &self.withdrawal_minimums {
            parse_minimum(code, text).map_err(ConfigError::Invalid)?;
        }
        if self.travel_rule.retention_days == 0 {
            return invalid("travel_rule.retention_days must be at least 1");
        }
        self.travel_rule.policy(chrono::Utc::now().date_naive())?;
        for (key, list) in [
            ("abuse.callback_allow", &self.abuse.callback_allow),
            ("abuse.trusted_proxies", &self.abuse.trusted_proxies),
        ] {
            for net in list {
                crate::api::abuse::parse_net(net)
                    .map_err(|e| ConfigError::Invalid(format!("{key}: {e}")))?;
            }
        }
        if self.retention.idempotency_key_hours < 24
            || self.retention.callbacks_days == 0
            || self.retention.notifications_days == 0
        {
            return invalid("retention.idempotency_key_hours must be at least 24, retention.callbacks_days and retention.notifications_days at least 1");
        }
        Ok(())
    }

    /// `[withdrawal_minimums]`, parsed (validated at load, so nothing is dropped here).
    pub fn withdrawal_minimums(&self) -> HashMap<Currency, Decimal> {
        self.withdrawal_minimums
            .iter()
            .filter_map(|(code, text)| parse_minimum(code, text).ok())
            .collect()
    }

    pub fn provider_mode(&self) -> ProviderMode {
        if self.coinspaid.api_url.is_empty() {
            ProviderMode::EmbeddedSimulator
        } else {
            ProviderMode::CoinsPaid
        }
    }

    /// The bearer tokens in force: the configured ones, or the dev token in development.
    pub fn effective_api_tokens(&self) -> Vec<SecretString> {
        if self.server.api_tokens.is_empty() && self.env == Environment::Development {
            vec![SecretString::new(DEV_API_TOKEN)]
        } else {
            self.server.api_tokens.clone()
        }
    }

    pub fn log_format(&self) -> LogFormat {
        self.log.format.unwrap_or(match self.env {
            Environment::Development => LogFormat::Pretty,
            Environment::Production => LogFormat::Json,
        })
    }

    pub fn provider_timeout(&self) -> Duration {
        Duration::from_secs(self.coinspaid.timeout_secs)
    }
}

/// One `[withdrawal_minimums]` entry: an uppercase currency code and a positive decimal string
/// (a TOML number is refused by the type: a float cannot carry money exactly).
fn parse_minimum(code: &str, text: &str) -> Result<(Currency, Decimal), String> {
    let currency = Currency::parse(code).ok_or_else(|| {
        format!("withdrawal_minimums: {code:?} is not an uppercase currency code")
    })?;
    let amount =
        Amount::parse(text).map_err(|e| format!("withdrawal_minimums.{code}: {text:?}: {e}"))?;
    Ok((currency, amount.value()))
}

fn read_table(path: &Path) -> Result<toml::Table, ConfigError> {
    match std::fs::read_to_string(path) {
        Ok(text) => text
            .parse::<toml::Table>()
            .map_err(|e| ConfigError::Invalid(format!("{}: {}", path.display(), e.message()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(toml::Table::new()),
        Err(source) => Err(ConfigError::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

fn merge(base: &mut toml::Table, overlay: toml::Table) {
    for (key, value) in overlay {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

fn set_path(table: &mut toml::Table, dotted: &str, value: toml::Value) {
    let mut parts: Vec<&str> = dotted.split('.').collect();
    let last = parts.pop().expect("keys are non-empty");
    let mut current = table;
    for part in parts {
        let entry = current
            .entry(part)
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if !entry.is_table() {
            *entry = toml::Value::Table(toml::Table::new());
        }
        current = entry.as_table_mut().expect("just made a table");
    }
    current.insert(last.to_owned(), value);
}

/// Environment values are strings; a few keys need another TOML type.
fn env_value(key: &str, raw: &str) -> toml::Value {
    match key {
        "server.api_tokens" => toml::Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(|t| toml::Value::String(t.to_owned()))
                .collect(),
        ),
        "worker.enabled" => toml::Value::Boolean(matches!(raw, "1" | "true" | "yes")),
        // Left a string when not a number, so the error names the key.
        "simulator.callback_delay_ms" => raw
            .parse::<i64>()
            .map(toml::Value::Integer)
            .unwrap_or_else(|_| toml::Value::String(raw.to_owned())),
        _ => toml::Value::String(raw.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn load(files: &[(&str, &str)], env: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let dir = std::env::temp_dir().join(format!("payoutd-config-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        for (name, text) in files {
            std::fs::write(dir.join(name), text).unwrap();
        }
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let result = Settings::load_from(&dir, |k| env.get(k).cloned());
        std::fs::remove_dir_all(&dir).unwrap();
        result
    }

    #[test]
    fn defaults_are_a_development_setup_with_the_simulator() {
        let s = load(&[], &[]).unwrap();
        assert_eq!(s.env, Environment::Development);
        assert!(matches!(s.provider_mode(), ProviderMode::EmbeddedSimulator));
        assert_eq!(s.effective_api_tokens()[0].expose(), DEV_API_TOKEN);
        assert_eq!(s.log_format(), LogFormat::Pretty);
    }

    #[test]
    fn files_then_environment_override_in_order() {
        let s = load(
            &[
                (
                    "default.toml",
                    "[server]\nlisten_addr = \"127.0.0.1:1000\"\n[worker]\nmax_attempts = 3\n",
                ),
                (
                    "development.toml",
                    "[server]\nlisten_addr = \"127.0.0.1:2000\"\n",
                ),
            ],
            &[
                ("PAYOUTD_API_TOKENS", "aaaaaaaaaaaaaaaa, bbbbbbbbbbbbbbbb"),
                ("DATABASE_URL", "postgres://x/y"),
            ],
        )
        .unwrap();
        assert_eq!(s.server.listen_addr.port(), 2000);
        assert_eq!(s.worker.max_attempts, 3);
        assert_eq!(s.server.api_tokens.len(), 2);
        assert_eq!(s.database.url.expose(), "postgres://x/y");
    }

    #[test]
    fn production_refuses_to_start_without_real_settings() {
        let err = load(&[], &[("PAYOUTD_ENV", "production")]).unwrap_err();
        assert!(err.to_string().contains("COINSPAID_API_URL"), "{err}");
        let ok = load(
            &[],
            &[
                ("PAYOUTD_ENV", "production"),
                ("COINSPAID_API_URL", "https://app.cryptoprocessing.com/api"),
                ("COINSPAID_API_KEY", "k"),
                ("COINSPAID_API_SECRET", "s"),
                ("PAYOUTD_API_TOKENS", "0123456789abcdef0123"),
            ],
        )
        .unwrap();
        assert!(matches!(ok.provider_mode(), ProviderMode::CoinsPaid));
        assert_eq!(ok.log_format(), LogFormat::Json);
        let no_tokens = load(
            &[],
            &[
                ("PAYOUTD_ENV", "production"),
                ("COINSPAID_API_URL", "https://x"),
                ("COINSPAID_API_KEY", "k"),
                ("COINSPAID_API_SECRET", "s"),
            ],
        );
        assert!(no_tokens.is_err());
    }

    #[test]
    fn half_configured_coinspaid_and_unknown_keys_are_errors() {
        assert!(load(&[], &[("COINSPAID_API_URL", "http://127.0.0.1:9")]).is_err());
        assert!(load(&[("default.toml", "[server]\nlisten = 1\n")], &[]).is_err());
        assert!(load(&[], &[("PAYOUTD_ENV", "staging")]).is_err());
    }

    #[test]
    fn withdrawal_minimums_are_decimal_strings_keyed_by_currency_code() {
        let s = load(
            &[(
                "default.toml",
                "[withdrawal_minimums]\nBTC = \"0.001\"\nUSDTT = \"10\"\n",
            )],
            &[],
        )
        .unwrap();
        let minimums = s.withdrawal_minimums();
        assert_eq!(
            minimums[&Currency::parse("BTC").unwrap()].to_string(),
            "0.001"
        );
        assert_eq!(minimums.len(), 2);
        for bad in [
            "[withdrawal_minimums]\nBTC = 0.001\n",
            "[withdrawal_minimums]\nBTC = \"-1\"\n",
            "[withdrawal_minimums]\nBTC = \"0\"\n",
            "[withdrawal_minimums]\nbtc = \"1\"\n",
        ] {
            assert!(load(&[("default.toml", bad)], &[]).is_err(), "{bad}");
        }
    }

    #[test]
    fn travel_rule_defaults_are_parsed_at_start_and_a_bad_one_names_its_key() {
        let s = load(
            &[(
                "default.toml",
                "[travel_rule]\nrequired = true\ndefault_sender_type = \"legal\"\n\
                 default_sender_data = { legal_name = \"Example GmbH\", country_of_registration = \"DEU\" }\n\
                 default_receiver_type = \"self\"\n",
            )],
            &[],
        )
        .unwrap();
        let policy = s
            .travel_rule
            .policy(chrono::Utc::now().date_naive())
            .unwrap();
        assert!(policy.required);
        assert_eq!(policy.default_sender.unwrap().kind(), "legal");
        assert_eq!(policy.default_receiver.unwrap().kind(), "self");
        assert!(!format!("{s:?}").contains("Example GmbH"));

        let bad = load(
            &[(
                "default.toml",
                "[travel_rule]\ndefault_sender_type = \"legal\"\n\
                 default_sender_data = { legal_name = \"Example GmbH\", country_of_registration = \"Germany\" }\n",
            )],
            &[],
        )
        .unwrap_err();
        assert!(
            bad.to_string()
                .contains("travel_rule.default_sender_data.country_of_registration"),
            "{bad}"
        );
        let data_alone = load(
            &[(
                "default.toml",
                "[travel_rule]\ndefault_receiver_data = { legal_name = \"X\" }\n",
            )],
            &[],
        )
        .unwrap_err();
        assert!(
            data_alone
                .to_string()
                .contains("travel_rule.default_receiver_type"),
            "{data_alone}"
        );
        assert!(load(
            &[("default.toml", "[travel_rule]\nretention_days = 0\n")],
            &[]
        )
        .is_err());
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let s = load(
            &[],
            &[
                ("COINSPAID_API_URL", "http://x"),
                ("COINSPAID_API_KEY", "k"),
                ("COINSPAID_API_SECRET", "very-secret-value"),
            ],
        )
        .unwrap();
        assert!(!format!("{s:?}").contains("very-secret-value"));
    }
}
