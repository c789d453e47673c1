//! Settings: `config/default.toml` (built in; the only place defaults are written), then
//! `default.toml` and `$PAYOUTD_ENV.toml` in the configuration directory, then the
//! environment (see [`sources`]). Validated once at start ([`validate`]); the rest of the
//! program only sees a valid [`Settings`]. Each section's type lives with the code it
//! configures where that code needs nothing from here; the rest are in [`sections`].

mod sections;
mod sources;
#[cfg(test)]
mod tests;
mod validate;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rust_decimal::Decimal;
use serde::Deserialize;

pub(crate) use self::sections::optional_url;
pub use self::sections::{
    AbuseSettings, CoinsPaidSettings, CurrencySettings, MetricsSettings, NotifySettings,
    ServerSettings, SimulatorConfig, TravelRuleSettings,
};
pub use self::sources::DEFAULTS;
use self::validate::parse_minimum;
use crate::coinspaid::signing::SecretString;
pub use crate::db::retention::RetentionSettings;
pub use crate::db::DatabaseSettings;
use crate::domain::Currency;
use crate::operators::settings::{AdminSettings, Operator, DEV_ADMIN_TOKEN};
pub use crate::telemetry::{LogFormat, LogSettings, TraceSettings};
use crate::withdrawals::create::approval::ApprovalSettings;
pub use crate::withdrawals::create::limits::CurrencyLimits;
pub use crate::withdrawals::submit::reconcile::ReconcilerSettings;
pub use crate::withdrawals::submit::WorkerSettings;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    Development,
    Production,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub env: Environment,
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub coinspaid: CoinsPaidSettings,
    pub worker: WorkerSettings,
    pub log: LogSettings,
    /// OpenTelemetry traces over OTLP (`[traces]`); off without an endpoint.
    pub traces: TraceSettings,
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
    pub admin: AdminSettings,
    /// Which new withdrawals wait for an operator's approval.
    pub approval: ApprovalSettings,
    /// Per currency: at most this much requested across all users in any rolling 24 hours.
    pub merchant_caps: HashMap<String, Decimal>,
    pub metrics: MetricsSettings,
    pub abuse: AbuseSettings,
    pub retention: RetentionSettings,
    /// Group commit of creates, CoinsPaid's acceptances and callbacks (`[batching]`).
    pub batching: crate::db::batch::BatchSettings,
    /// `POST /v1/quotes` within CoinsPaid's limit on `/v2/exchange/calculate`.
    pub quotes: crate::usecases::QuoteSettings,
}

/// The simulator's own key pair. A service whose provider holds these is talking to a
/// simulator, never to CoinsPaid: only with them are development conveniences allowed.
pub const SIMULATOR_KEY: &str = "simulator-key";
pub const SIMULATOR_SECRET: &str = "simulator-secret";

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
        Self::load_layers(DEFAULTS, Some(dir), &env)
    }

    /// The built-in defaults alone (`config/default.toml` as compiled in), read by the same
    /// loader as [`Settings::load`]: what tests start from.
    pub fn defaults() -> Self {
        Self::load_layers(DEFAULTS, None, &|_| None)
            .expect("config/default.toml is a valid configuration (checked by config::tests)")
    }

    /// `defaults`: the text of `config/default.toml`, [`DEFAULTS`] but in tests.
    fn load_layers(
        defaults: &str,
        dir: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut problems = Vec::new();
        let figment = sources::layers(defaults, dir, env, &mut problems)?;
        // Rules are checked even after type errors (the bad keys at their defaults), so one
        // start names every problem.
        match sources::extract_reporting_all::<Settings>(&figment, defaults, &mut problems) {
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

    /// The provider is the CoinsPaid simulator with the simulator's own credentials: the
    /// embedded one (no `coinspaid.api_url`), or `payoutd simulator` with the key and secret it
    /// prints. Any other credentials may be real CoinsPaid's, whatever the URL: a local proxy
    /// can forward to CoinsPaid as well as a simulator can answer.
    pub fn provider_is_simulator(&self) -> bool {
        let cp = &self.coinspaid;
        cp.api_url.is_none()
            || (cp.api_key == SIMULATOR_KEY && cp.api_secret.expose() == SIMULATOR_SECRET)
    }

    /// Development conveniences (the well-known dev tokens, crash points): only in development
    /// and only with the simulator's own credentials, so a public token can never move real
    /// money.
    pub fn development_features(&self) -> bool {
        self.env == Environment::Development && self.provider_is_simulator()
    }

    /// The operators in force: the configured ones, or `dev` with the dev token in development.
    pub fn effective_operators(&self) -> Vec<Operator> {
        let configured = self.admin.operators().unwrap_or_default();
        // Like the website's dev token: never with a real CoinsPaid, whatever PAYOUTD_ENV says.
        if configured.is_empty() && self.development_features() {
            vec![Operator {
                name: "dev".into(),
                token: SecretString::new(DEV_ADMIN_TOKEN),
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
        if self.coinspaid.api_url.is_none() {
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
