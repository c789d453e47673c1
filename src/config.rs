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
    /// Operator tokens (`PAYOUTD_ADMIN_TOKENS`).
    pub admin: crate::operators::settings::AdminSettings,
    /// Which new withdrawals wait for an operator's approval.
    pub approval: crate::operators::settings::ApprovalSettings,
    /// Per currency: at most this much requested across all users in any rolling 24 hours.
    pub merchant_caps: HashMap<String, Decimal>,
    pub metrics: MetricsSettings,
    pub abuse: AbuseSettings,
    pub retention: RetentionSettings,
    /// Group commit of creates, CoinsPaid's acceptances and callbacks (`[batching]`).
    pub batching: crate::batch::BatchSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
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
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSettings {
    /// May carry a password, hence secret.
    pub url: SecretString,
    pub max_connections: u32,
    pub acquire_timeout_secs: u64,
    /// At start, how long to wait for a writable primary (unreachable, or read-only during a
    /// failover) before giving up; 0: do not wait.
    pub startup_wait_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CoinsPaidSettings {
    /// Base URL; the service calls `{api_url}/v2/...`. Empty: embedded simulator (development only).
    pub api_url: String,
    pub api_key: String,
    pub api_secret: SecretString,
    /// The key pair being replaced, still accepted together on callbacks during a change-over
    /// (never used to send). CoinsPaid gives a new pair a new key, so both are needed: set
    /// both or neither. Empty: none.
    pub api_key_previous: String,
    pub api_secret_previous: SecretString,
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
    /// How long `POST /v1/withdrawals` waits for its first submission attempt before it
    /// answers with the withdrawal as it stands (the attempt goes on in the background).
    /// Absent: half of `server.request_timeout_secs`, so the answer usually says
    /// `processing` or `rejected`. 0: answer `pending` as soon as the amount is held.
    pub first_attempt_wait_ms: Option<u64>,
    /// First submission attempts running at once in this process; more wait their turn.
    pub max_in_flight: usize,
    /// A withdrawal whose outcome is unknown is sent again only after a look-up finds no
    /// record of it, and no sooner than `coinspaid.timeout_secs` plus this many seconds after
    /// the last request that may have reached CoinsPaid: time for a slow create to show up in
    /// the look-up.
    pub resend_margin_secs: u64,
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
    /// Standard Webhooks secrets shared with the website: `whsec_<base64>`, comma-separated,
    /// current first; each signs every notification (see [`crate::standard_webhooks`]).
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
    pub callback_allow: Vec<String>,
    /// Proxies whose `X-Forwarded-For` is believed (CIDRs or addresses); empty: none.
    pub trusted_proxies: Vec<String>,
}

impl Default for AbuseSettings {
    fn default() -> Self {
        Self {
            callback_per_second: 20,
            callback_burst: 100,
            api_per_second: 5_000,
            api_burst: 10_000,
            unauthenticated_per_second: 20,
            unauthenticated_burst: 100,
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
            admin: Default::default(),
            approval: Default::default(),
            merchant_caps: HashMap::new(),
            metrics: MetricsSettings::default(),
            abuse: AbuseSettings::default(),
            retention: RetentionSettings::default(),
            batching: Default::default(),
        }
    }
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            listen_addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            api_tokens: Vec::new(),
            request_timeout_secs: 30,
            header_read_timeout_secs: 10,
            max_connections: 4_096,
        }
    }
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: SecretString::new("postgres://postgres@127.0.0.1:5432/payoutd"),
            max_connections: 16,
            acquire_timeout_secs: 5,
            startup_wait_secs: 60,
        }
    }
}

impl Default for CoinsPaidSettings {
    fn default() -> Self {
        Self {
            api_url: String::new(),
            api_key: String::new(),
            api_secret: SecretString::default(),
            api_key_previous: String::new(),
            api_secret_previous: SecretString::default(),
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
            first_attempt_wait_ms: None,
            max_in_flight: 64,
            resend_margin_secs: 30,
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
    /// Everything wrong with the configuration, found in one pass.
    #[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
    Problems(Vec<String>),
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
    ("PAYOUTD_ADMIN_TOKENS", "admin.tokens"),
    ("COINSPAID_API_URL", "coinspaid.api_url"),
    ("COINSPAID_API_KEY", "coinspaid.api_key"),
    ("COINSPAID_API_SECRET", "coinspaid.api_secret"),
    ("COINSPAID_API_KEY_PREVIOUS", "coinspaid.api_key_previous"),
    (
        "COINSPAID_API_SECRET_PREVIOUS",
        "coinspaid.api_secret_previous",
    ),
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
    /// Loads from `./config` (or `$PAYOUTD_CONFIG_DIR`, which must then exist) and the process
    /// environment.
    pub fn load() -> Result<Self, ConfigError> {
        let explicit = std::env::var_os("PAYOUTD_CONFIG_DIR").map(PathBuf::from);
        if let Some(dir) = &explicit {
            // A typo here must not silently mean "built-in defaults".
            if !dir.is_dir() {
                return Err(ConfigError::Invalid(format!(
                    "PAYOUTD_CONFIG_DIR: {} is not a directory",
                    dir.display()
                )));
            }
        }
        let dir = explicit.unwrap_or_else(|| PathBuf::from("config"));
        Self::load_from(&dir, |name| std::env::var(name).ok())
    }

    /// The loading rules with the environment passed in, so tests need not touch the process env.
    /// Every problem found is reported at once, each naming its key and environment variable.
    pub fn load_from(
        dir: &Path,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut problems = Vec::new();
        let mut table = read_table(&dir.join("default.toml"))?;
        let env_name = env("PAYOUTD_ENV")
            .or_else(|| table.get("env").and_then(|v| v.as_str()).map(str::to_owned))
            .unwrap_or_else(|| "development".into());
        if !matches!(env_name.as_str(), "development" | "production") {
            return Err(ConfigError::Invalid(format!(
                "{}: must be development or production, not {env_name:?}",
                describe("env")
            )));
        }
        merge(
            &mut table,
            read_table(&dir.join(format!("{env_name}.toml")))?,
        );
        for (var, key) in ENV_KEYS {
            if let Some(value) = env(var) {
                match env_value(key, &value) {
                    Ok(value) => set_path(&mut table, key, value),
                    Err(problem) => problems.push(format!("{key} ({var}): {problem}")),
                }
            }
        }
        // Rules are checked even after type errors (the bad keys at their defaults), so one
        // start names every problem.
        match deserialize_reporting_all(table, &mut problems) {
            Some(settings) => {
                settings.validate_into(&mut problems);
                if problems.is_empty() {
                    Ok(settings)
                } else {
                    Err(ConfigError::Problems(problems))
                }
            }
            None => Err(ConfigError::Problems(problems)),
        }
    }

    /// Every rule is checked, so one start names every problem.
    fn validate_into(&self, problems: &mut Vec<String>) {
        let mut invalid = |m: String| problems.push(m);
        let cp = &self.coinspaid;
        let coinspaid = [
            ("coinspaid.api_url", !cp.api_url.is_empty()),
            ("coinspaid.api_key", !cp.api_key.is_empty()),
            ("coinspaid.api_secret", !cp.api_secret.is_empty()),
        ];
        let any_coinspaid = coinspaid.iter().any(|(_, set)| *set);
        let all_coinspaid = coinspaid.iter().all(|(_, set)| *set);
        if any_coinspaid && !all_coinspaid {
            let missing: Vec<String> = coinspaid
                .iter()
                .filter(|(_, set)| !set)
                .map(|(key, _)| describe(key))
                .collect();
            invalid(format!(
                "the CoinsPaid settings go together; missing: {}",
                missing.join(", ")
            ));
        }
        if !cp.api_url.is_empty() {
            match reqwest::Url::parse(&cp.api_url) {
                Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => {}
                Ok(_) => invalid(format!(
                    "{}: must be an http(s) URL with a host",
                    describe("coinspaid.api_url")
                )),
                Err(e) => invalid(format!("{}: not a URL: {e}", describe("coinspaid.api_url"))),
            }
        }
        for key in ["notify.url", "simulator.callback_url"] {
            let value = match key {
                "notify.url" => &self.notify.url,
                _ => &self.simulator.callback_url,
            };
            if value.is_empty() {
                continue;
            }
            match reqwest::Url::parse(value) {
                Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => {}
                Ok(_) => invalid(format!("{}: must be an http(s) URL", describe(key))),
                Err(e) => invalid(format!("{}: not a URL: {e}", describe(key))),
            }
        }
        if let Err(e) = <sqlx::postgres::PgConnectOptions as std::str::FromStr>::from_str(
            self.database.url.expose(),
        ) {
            // The error text may quote the URL, which may hold a password: not shown.
            let _ = e;
            invalid(format!(
                "{}: not a valid PostgreSQL URL",
                describe("database.url")
            ));
        }
        if self.env == Environment::Production {
            if !all_coinspaid {
                invalid(format!(
                    "production needs {}, {} and {}",
                    describe("coinspaid.api_url"),
                    describe("coinspaid.api_key"),
                    describe("coinspaid.api_secret")
                ));
            }
            if !cp.api_url.is_empty() && !cp.api_url.starts_with("https://") {
                invalid(format!(
                    "{}: production needs an https URL",
                    describe("coinspaid.api_url")
                ));
            }
        }
        // The well-known dev tokens only ever open a service whose provider is the simulator
        // with its own credentials: with any other, whatever PAYOUTD_ENV and the URL say,
        // website and operator tokens must be configured.
        if !self.development_features() {
            for (key, empty) in [
                ("server.api_tokens", self.server.api_tokens.is_empty()),
                ("admin.tokens", self.admin.tokens.is_empty()),
            ] {
                if empty {
                    invalid(format!(
                        "{} is required unless PAYOUTD_ENV=development with the CoinsPaid \
                         simulator's own credentials (no coinspaid.api_url, or the key and \
                         secret `payoutd simulator` prints)",
                        describe(key)
                    ));
                }
            }
        }
        if self.env == Environment::Production && all_coinspaid && self.provider_is_simulator() {
            invalid(format!(
                "production never uses the simulator: {} and {} are the simulator's own",
                describe("coinspaid.api_key"),
                describe("coinspaid.api_secret")
            ));
        }
        if self.server.api_tokens.iter().any(|t| t.expose().len() < 16) {
            invalid(format!(
                "{}: every API token must be at least 16 characters",
                describe("server.api_tokens")
            ));
        }
        if self.worker.lease_secs <= cp.timeout_secs {
            invalid("worker.lease_secs must exceed coinspaid.timeout_secs".into());
        }
        if self.worker.max_in_flight == 0 {
            invalid("worker.max_in_flight must be at least 1".into());
        }
        if self
            .worker
            .first_attempt_wait_ms
            .is_some_and(|ms| ms >= self.server.request_timeout_secs.saturating_mul(1_000))
        {
            // Waiting that long would turn a created withdrawal into a 503.
            invalid(
                "worker.first_attempt_wait_ms must be below server.request_timeout_secs".into(),
            );
        }
        self.validate_secrets_into(&mut invalid);
        if self.reconciler.batch < 1 || self.reconciler.interval_secs == 0 {
            invalid("reconciler.batch and reconciler.interval_secs must be positive".into());
        }
        if self.worker.max_attempts < 1 {
            invalid("worker.max_attempts must be >= 1".into());
        }
        if self.database.max_connections < 2 {
            invalid("database.max_connections must be >= 2".into());
        }
        if self.server.request_timeout_secs == 0 {
            invalid("server.request_timeout_secs must be positive".into());
        }
        if self.server.header_read_timeout_secs == 0 || self.server.max_connections == 0 {
            invalid(
                "server.header_read_timeout_secs and server.max_connections must be positive"
                    .into(),
            );
        }
        for (code, text) in &self.withdrawal_minimums {
            if let Err(e) = parse_minimum(code, text) {
                invalid(e);
            }
        }
        if self.travel_rule.retention_days == 0 {
            invalid("travel_rule.retention_days must be at least 1".into());
        }
        if let Err(ConfigError::Invalid(e)) =
            self.travel_rule.policy(chrono::Utc::now().date_naive())
        {
            invalid(e);
        }
        if let Err(ConfigError::Invalid(e)) = self.validate_operators() {
            invalid(e);
        }
        for (key, list) in [
            ("abuse.callback_allow", &self.abuse.callback_allow),
            ("abuse.trusted_proxies", &self.abuse.trusted_proxies),
        ] {
            for net in list {
                if let Err(e) = crate::api::abuse::parse_net(net) {
                    invalid(format!("{key}: {e}"));
                }
            }
        }
        for problem in self.batching.problems() {
            invalid(problem);
        }
        if self.retention.idempotency_key_hours < 24
            || self.retention.callbacks_days == 0
            || self.retention.notifications_days == 0
        {
            invalid("retention.idempotency_key_hours must be at least 24, retention.callbacks_days and retention.notifications_days at least 1".into());
        }
    }

    /// The notification secrets parse as Standard Webhooks secrets; the previous CoinsPaid
    /// secret only accompanies a current one. Messages name key and variable, never a value.
    fn validate_secrets_into(&self, invalid: &mut impl FnMut(String)) {
        let hint = crate::standard_webhooks::GENERATE_HINT;
        match crate::standard_webhooks::WebhookSecret::parse_list(self.notify.secret.expose()) {
            Err(e) => invalid(format!(
                "{}: {e}; each comma-separated secret must be whsec_ followed by base64 of 24 to 64 random bytes ({hint})",
                describe("notify.secret")
            )),
            Ok(secrets) if secrets.is_empty() && !self.notify.url.is_empty() => invalid(format!(
                "{} needs {}: a whsec_ secret ({hint})",
                describe("notify.url"),
                describe("notify.secret")
            )),
            Ok(_) => {}
        }
        self.validate_previous_pair_into(invalid);
    }

    /// The previous CoinsPaid pair is whole, accompanies a current pair, and differs from it in
    /// both halves. Half a pair is refused rather than ignored: callbacks of the old pair carry
    /// the old key, so a previous secret alone (what a setup before
    /// `COINSPAID_API_KEY_PREVIOUS` had) never accepted one, and starting would let an operator
    /// believe the change-over was covered. A key equal to the current one would let the
    /// current key pass with the old secret.
    fn validate_previous_pair_into(&self, invalid: &mut impl FnMut(String)) {
        let cp = &self.coinspaid;
        let (key, secret) = (
            "coinspaid.api_key_previous",
            "coinspaid.api_secret_previous",
        );
        match (
            cp.api_key_previous.is_empty(),
            cp.api_secret_previous.is_empty(),
        ) {
            (true, true) => return,
            (false, true) => {
                return invalid(format!(
                    "{} is set without {}: the pair being replaced needs both, or neither",
                    describe(key),
                    describe(secret)
                ))
            }
            (true, false) => {
                return invalid(format!(
                    "{} is set without {}: callbacks of the pair being replaced carry its old key, \
                     so set both, or neither",
                    describe(secret),
                    describe(key)
                ))
            }
            (false, false) => {}
        }
        if cp.api_key.is_empty() || cp.api_secret.is_empty() {
            return invalid(format!(
                "{} and {} are only accepted with {} and {}",
                describe(key),
                describe(secret),
                describe("coinspaid.api_key"),
                describe("coinspaid.api_secret")
            ));
        }
        if cp.api_key_previous == cp.api_key {
            invalid(format!(
                "{} equals {}; CoinsPaid gives a new pair a new key: set it to the key being replaced, or leave both previous settings empty",
                describe(key),
                describe("coinspaid.api_key")
            ));
        }
        if cp.api_secret_previous == cp.api_secret {
            invalid(format!(
                "{} equals {}; set it to the secret being replaced, or leave both previous settings empty",
                describe(secret),
                describe("coinspaid.api_secret")
            ));
        }
    }

    /// The provider is the CoinsPaid simulator with the simulator's own credentials: the
    /// embedded one (no `coinspaid.api_url`), or `payoutd simulator` with the key and secret it
    /// prints. Any other credentials may be real CoinsPaid's, whatever the URL: a local proxy
    /// can forward to CoinsPaid as well as a simulator can answer.
    pub fn provider_is_simulator(&self) -> bool {
        let cp = &self.coinspaid;
        cp.api_url.is_empty()
            || (cp.api_key == crate::simulator::cli::DEFAULT_KEY
                && cp.api_secret.expose() == crate::simulator::cli::DEFAULT_SECRET)
    }

    /// Development conveniences (the well-known dev tokens, crash points): only in development
    /// and only with the simulator's own credentials, so a public token can never move real
    /// money.
    pub fn development_features(&self) -> bool {
        self.env == Environment::Development && self.provider_is_simulator()
    }

    /// Operator tokens parse and are never also website tokens (each interface refuses the
    /// other's tokens); thresholds and caps are positive and name currency codes.
    fn validate_operators(&self) -> Result<(), ConfigError> {
        let operators = self.admin.operators().map_err(ConfigError::Invalid)?;
        let website = self.effective_api_tokens();
        if operators
            .iter()
            .any(|o| website.iter().any(|w| w.expose() == o.token.expose()))
        {
            return Err(ConfigError::Invalid(
                "an operator token in PAYOUTD_ADMIN_TOKENS is also a website token in PAYOUTD_API_TOKENS".into(),
            ));
        }
        for (section, map) in [
            ("approval.thresholds", &self.approval.thresholds),
            ("merchant_caps", &self.merchant_caps),
        ] {
            for (code, value) in map {
                if Currency::parse(code).is_none() || *value <= Decimal::ZERO {
                    return Err(ConfigError::Invalid(format!(
                        "{section}.{code}: an uppercase currency code with a positive amount"
                    )));
                }
            }
        }
        Ok(())
    }

    /// The operators in force: the configured ones, or `dev` with the dev token in development.
    pub fn effective_operators(&self) -> Vec<crate::operators::settings::Operator> {
        let configured = self.admin.operators().unwrap_or_default();
        // Like the website's dev token: never with a real CoinsPaid, whatever PAYOUTD_ENV says.
        if configured.is_empty() && self.development_features() {
            vec![crate::operators::settings::Operator {
                name: "dev".into(),
                token: SecretString::new(crate::operators::settings::DEV_ADMIN_TOKEN),
            }]
        } else {
            configured
        }
    }

    /// `[withdrawal_minimums]`, parsed (validated at load, so nothing is dropped here).
    pub fn withdrawal_minimums(&self) -> HashMap<Currency, Decimal> {
        self.withdrawal_minimums
            .iter()
            .filter_map(|(code, text)| parse_minimum(code, text).ok())
            .collect()
    }

    /// `simulator` or `coinspaid`, as `/readyz` reports it: by the credentials, not the URL.
    pub fn provider_label(&self) -> &'static str {
        if self.provider_is_simulator() {
            "simulator"
        } else {
            "coinspaid"
        }
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
        if self.server.api_tokens.is_empty() && self.development_features() {
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

    /// How long a create waits for its first submission attempt (`worker.first_attempt_wait_ms`).
    pub fn first_attempt_wait(&self) -> Duration {
        match self.worker.first_attempt_wait_ms {
            Some(ms) => Duration::from_millis(ms),
            None => Duration::from_secs(self.server.request_timeout_secs) / 2,
        }
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

/// `key (VARIABLE)`, or the key alone when no environment variable sets it.
fn describe(key: &str) -> String {
    match ENV_KEYS.iter().find(|(_, k)| *k == key) {
        Some((var, _)) => format!("{key} ({var})"),
        None => format!("{key} (config file only, no environment variable)"),
    }
}

/// Booleans from the environment: any case of true/false/1/0; anything else is refused
/// rather than read as false (`True` once turned the worker off).
fn parse_bool(raw: &str) -> Result<bool, String> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(format!("{raw:?} is not a boolean (true, false, 1 or 0)")),
    }
}

/// Environment values are strings; the key's name says which other TOML type it needs
/// (`*.enabled`/`*.required` booleans; `*_ms`, `*_secs`, `*_days`, `max_*`, `batch` integers).
fn env_value(key: &str, raw: &str) -> Result<toml::Value, String> {
    let field = key.rsplit('.').next().unwrap_or(key);
    if key == "server.api_tokens" || key == "admin.tokens" {
        return Ok(toml::Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(|t| toml::Value::String(t.to_owned()))
                .collect(),
        ));
    }
    if matches!(field, "enabled" | "required") {
        return parse_bool(raw).map(toml::Value::Boolean);
    }
    let integer = field.ends_with("_ms")
        || field.ends_with("_secs")
        || field.ends_with("_days")
        || field.starts_with("max_")
        || field == "batch";
    if integer {
        return raw
            .trim()
            .parse::<i64>()
            .map(toml::Value::Integer)
            .map_err(|_| format!("{raw:?} is not a whole number"));
    }
    Ok(toml::Value::String(raw.to_owned()))
}

/// Deserializes the merged table, collecting every type error with its key: a bad key is
/// recorded and removed (its default stands in) and the rest is tried again, so one start
/// names all of them. `None` only when a bad key could not be removed.
fn deserialize_reporting_all(
    mut table: toml::Table,
    problems: &mut Vec<String>,
) -> Option<Settings> {
    // Each round removes one bad key; a table has far fewer keys than this.
    for _ in 0..64 {
        let result: Result<Settings, _> =
            serde_path_to_error::deserialize(toml::Value::Table(table.clone()));
        match result {
            Ok(settings) => return Some(settings),
            Err(err) => {
                let path = err.path().to_string();
                let message = err.inner().message().to_owned();
                problems.push(format!("{}: {message}", describe(&path)));
                if !remove_path(&mut table, &path) {
                    return None;
                }
            }
        }
    }
    None
}

/// Removes a dotted key from the table; false when it is not there.
fn remove_path(table: &mut toml::Table, dotted: &str) -> bool {
    let mut parts: Vec<&str> = dotted.split('.').collect();
    let Some(last) = parts.pop() else {
        return false;
    };
    let mut current = table;
    for part in parts {
        match current.get_mut(part).and_then(|v| v.as_table_mut()) {
            Some(next) => current = next,
            None => return false,
        }
    }
    current.remove(last).is_some()
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
                ("PAYOUTD_ADMIN_TOKENS", "alice:alice-token-0123456"),
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
    fn the_first_attempt_wait_stays_below_the_request_timeout() {
        let wait =
            |toml: &str| load(&[("default.toml", toml)], &[]).map(|s| s.first_attempt_wait());
        // Unset: half the request timeout, as before the setting existed.
        assert_eq!(wait("").unwrap(), Duration::from_secs(15));
        assert_eq!(
            wait("[worker]\nfirst_attempt_wait_ms = 0\n").unwrap(),
            Duration::ZERO
        );
        let err =
            wait("[server]\nrequest_timeout_secs = 2\n[worker]\nfirst_attempt_wait_ms = 2000\n")
                .unwrap_err()
                .to_string();
        assert!(
            err.contains("worker.first_attempt_wait_ms must be below"),
            "{err}"
        );
        let err = wait("[worker]\nmax_in_flight = 0\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("worker.max_in_flight must be at least 1"),
            "{err}"
        );
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
    fn the_dev_tokens_only_open_a_service_whose_provider_is_the_simulator_with_its_credentials() {
        use crate::simulator::cli::{DEFAULT_KEY, DEFAULT_SECRET};
        // `payoutd simulator` with the key and secret it prints, wherever it runs.
        for url in [
            "http://127.0.0.1:9000",
            "http://[::1]:8090",
            "http://simulator:8090",
        ] {
            let s = load(
                &[],
                &[
                    ("COINSPAID_API_URL", url),
                    ("COINSPAID_API_KEY", DEFAULT_KEY),
                    ("COINSPAID_API_SECRET", DEFAULT_SECRET),
                ],
            )
            .unwrap();
            assert!(s.development_features(), "{url}");
            assert_eq!(s.provider_label(), "simulator");
            assert_eq!(s.effective_api_tokens()[0].expose(), DEV_API_TOKEN);
            assert_eq!(s.effective_operators()[0].name, "dev");
        }
        // Any other credentials, even on a loopback http URL (a proxy to CoinsPaid) and
        // without PAYOUTD_ENV (development by default): both kinds of token are required.
        for (url, key, secret) in [
            ("http://127.0.0.1:9000", "k", "s"),
            ("http://localhost:1", DEFAULT_KEY, "s"),
            ("https://app.cryptoprocessing.com/api", "k", "s"),
            ("http://10.0.0.5:8080", "k", DEFAULT_SECRET),
        ] {
            let credentials = [
                ("COINSPAID_API_URL", url),
                ("COINSPAID_API_KEY", key),
                ("COINSPAID_API_SECRET", secret),
            ];
            let err = load(&[], &credentials).unwrap_err().to_string();
            assert!(
                err.contains("server.api_tokens (PAYOUTD_API_TOKENS) is required")
                    && err.contains("admin.tokens (PAYOUTD_ADMIN_TOKENS) is required"),
                "{err}"
            );
            let tokens = [
                ("PAYOUTD_API_TOKENS", "0123456789abcdef0123"),
                ("PAYOUTD_ADMIN_TOKENS", "alice:alice-token-0123456"),
            ];
            let s = load(&[], &[&credentials[..], &tokens[..]].concat()).unwrap();
            assert!(!s.development_features(), "{url}");
            assert_eq!(s.provider_label(), "coinspaid");
            assert_eq!(s.effective_api_tokens().len(), 1);
            assert_ne!(s.effective_api_tokens()[0].expose(), DEV_API_TOKEN);
            assert_eq!(s.effective_operators()[0].name, "alice");
        }
        // Production never runs against the simulator's credentials.
        let err = load(
            &[],
            &[
                ("PAYOUTD_ENV", "production"),
                ("COINSPAID_API_URL", "https://simulator.example"),
                ("COINSPAID_API_KEY", DEFAULT_KEY),
                ("COINSPAID_API_SECRET", DEFAULT_SECRET),
                ("PAYOUTD_API_TOKENS", "0123456789abcdef0123"),
                ("PAYOUTD_ADMIN_TOKENS", "alice:alice-token-0123456"),
            ],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("production never uses the simulator"), "{err}");
    }

    #[test]
    fn booleans_from_the_environment_are_strict() {
        for (raw, expected) in [
            ("True", true),
            ("TRUE", true),
            ("1", true),
            ("false", false),
            ("FALSE", false),
            ("0", false),
        ] {
            let s = load(&[], &[("PAYOUTD_WORKER_ENABLED", raw)]).unwrap();
            assert_eq!(s.worker.enabled, expected, "{raw}");
        }
        for raw in ["on", "yes", "", "tru"] {
            let err = load(&[], &[("PAYOUTD_WORKER_ENABLED", raw)])
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("worker.enabled (PAYOUTD_WORKER_ENABLED)"),
                "{err}"
            );
        }
    }

    #[test]
    fn every_problem_is_reported_at_once_naming_key_and_variable() {
        let err = load(
            &[(
                "default.toml",
                "[database]\nmax_connections = \"16\"\n[worker]\nmax_attempts = \"x\"\n",
            )],
            &[
                ("PAYOUTD_WORKER_ENABLED", "on"),
                ("PAYOUTD_SIMULATOR_CALLBACK_DELAY_MS", "soon"),
                ("PAYOUTD_LISTEN_ADDR", "localhost"),
            ],
        )
        .unwrap_err()
        .to_string();
        for named in [
            "database.max_connections (config file only",
            "worker.max_attempts (config file only",
            "worker.enabled (PAYOUTD_WORKER_ENABLED)",
            "simulator.callback_delay_ms (PAYOUTD_SIMULATOR_CALLBACK_DELAY_MS)",
            "server.listen_addr (PAYOUTD_LISTEN_ADDR)",
        ] {
            assert!(err.contains(named), "{named} missing from: {err}");
        }
    }

    #[test]
    fn urls_are_parsed_at_start_and_missing_partners_are_named() {
        let err = load(
            &[],
            &[
                ("COINSPAID_API_URL", "htp:/broken"),
                ("COINSPAID_API_KEY", "k"),
                ("COINSPAID_API_SECRET", "s"),
                ("PAYOUTD_NOTIFY_URL", "not a url"),
                ("PAYOUTD_NOTIFY_SECRET", NOTIFY_SECRET),
                ("PAYOUTD_API_TOKENS", "0123456789abcdef0123"),
            ],
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("coinspaid.api_url (COINSPAID_API_URL)"),
            "{err}"
        );
        assert!(err.contains("notify.url (PAYOUTD_NOTIFY_URL)"), "{err}");
        let err = load(&[], &[("COINSPAID_API_URL", "http://127.0.0.1:9")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("coinspaid.api_key (COINSPAID_API_KEY)"),
            "{err}"
        );
        assert!(
            err.contains("coinspaid.api_secret (COINSPAID_API_SECRET)"),
            "{err}"
        );
        assert!(
            !err.contains("coinspaid.api_url (COINSPAID_API_URL)"),
            "{err}"
        );
    }

    const NOTIFY_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

    #[test]
    fn notification_secrets_are_whsec_and_errors_name_key_and_variable_never_the_value() {
        let two = format!("{NOTIFY_SECRET}, whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        let s = load(
            &[],
            &[
                ("PAYOUTD_NOTIFY_URL", "http://127.0.0.1:9/hook"),
                ("PAYOUTD_NOTIFY_SECRET", &two),
            ],
        )
        .unwrap();
        assert!(!format!("{s:?}").contains("C2FVs"));
        for (bad, says) in [
            (
                "website-notify-secret-123",
                "secret #1 does not start with whsec_",
            ),
            ("whsec_c2hvcnQ=", "secret #1 holds 5 bytes"),
            (
                &*format!("{NOTIFY_SECRET},whsec_!!"),
                "secret #2 is not base64",
            ),
        ] {
            let err = load(&[], &[("PAYOUTD_NOTIFY_SECRET", bad)])
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("notify.secret (PAYOUTD_NOTIFY_SECRET)"),
                "{err}"
            );
            assert!(err.contains(says), "{err}");
            assert!(err.contains("openssl rand -base64 32"), "{err}");
            assert!(
                !err.contains("website-notify") && !err.contains("c2hvcnQ"),
                "{err}"
            );
        }
        let err = load(&[], &[("PAYOUTD_NOTIFY_URL", "http://127.0.0.1:9/hook")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("needs notify.secret (PAYOUTD_NOTIFY_SECRET)"),
            "{err}"
        );
    }

    #[test]
    fn a_previous_coinspaid_pair_is_whole_and_differs_from_the_current_one() {
        let with = |previous: &[(&'static str, &'static str)]| {
            let mut env = vec![
                ("COINSPAID_API_URL", "http://127.0.0.1:9"),
                ("COINSPAID_API_KEY", "new-key"),
                ("COINSPAID_API_SECRET", "new-secret"),
                ("PAYOUTD_API_TOKENS", "0123456789abcdef0123"),
                ("PAYOUTD_ADMIN_TOKENS", "alice:alice-token-0123456"),
            ];
            env.extend_from_slice(previous);
            load(&[], &env)
        };
        let s = with(&[
            ("COINSPAID_API_KEY_PREVIOUS", "old-key"),
            ("COINSPAID_API_SECRET_PREVIOUS", "old-secret"),
        ])
        .unwrap();
        assert_eq!(s.coinspaid.api_key_previous, "old-key");
        assert_eq!(s.coinspaid.api_secret_previous.expose(), "old-secret");
        assert!(!format!("{s:?}").contains("old-secret"));

        let refused = |previous: &[(&'static str, &'static str)], says: &str| {
            let err = with(previous).unwrap_err().to_string();
            assert!(err.contains(says), "{err}");
            for value in ["old-secret", "new-secret"] {
                assert!(!err.contains(value), "{err}");
            }
        };
        // What a setup from before COINSPAID_API_KEY_PREVIOUS had: refused, naming the missing key.
        refused(
            &[("COINSPAID_API_SECRET_PREVIOUS", "old-secret")],
            "coinspaid.api_secret_previous (COINSPAID_API_SECRET_PREVIOUS) is set without coinspaid.api_key_previous (COINSPAID_API_KEY_PREVIOUS)",
        );
        refused(
            &[("COINSPAID_API_KEY_PREVIOUS", "old-key")],
            "coinspaid.api_key_previous (COINSPAID_API_KEY_PREVIOUS) is set without coinspaid.api_secret_previous (COINSPAID_API_SECRET_PREVIOUS)",
        );
        refused(
            &[
                ("COINSPAID_API_KEY_PREVIOUS", "new-key"),
                ("COINSPAID_API_SECRET_PREVIOUS", "old-secret"),
            ],
            "coinspaid.api_key_previous (COINSPAID_API_KEY_PREVIOUS) equals",
        );
        refused(
            &[
                ("COINSPAID_API_KEY_PREVIOUS", "old-key"),
                ("COINSPAID_API_SECRET_PREVIOUS", "new-secret"),
            ],
            "coinspaid.api_secret_previous (COINSPAID_API_SECRET_PREVIOUS) equals",
        );
        let alone = load(
            &[],
            &[
                ("COINSPAID_API_KEY_PREVIOUS", "old-key"),
                ("COINSPAID_API_SECRET_PREVIOUS", "old-secret"),
            ],
        )
        .unwrap_err()
        .to_string();
        assert!(
            alone.contains("are only accepted with coinspaid.api_key"),
            "{alone}"
        );
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let s = load(
            &[],
            &[
                ("COINSPAID_API_URL", "http://127.0.0.1:9"),
                ("COINSPAID_API_KEY", "k"),
                ("COINSPAID_API_SECRET", "very-secret-value"),
                ("PAYOUTD_API_TOKENS", "0123456789abcdef0123"),
                ("PAYOUTD_ADMIN_TOKENS", "alice:alice-token-0123456"),
            ],
        )
        .unwrap();
        assert!(!format!("{s:?}").contains("very-secret-value"));
    }
}
