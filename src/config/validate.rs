//! The rules a configuration must follow, all checked at start so one start names every
//! problem, each with its TOML key and environment variable and never a secret's value.

use rust_decimal::Decimal;

use super::sources::describe;
use super::{ConfigError, Environment, Settings};
use crate::domain::{Amount, Currency};

impl Settings {
    /// Every rule is checked, so one start names every problem.
    pub(super) fn validate_into(&self, problems: &mut Vec<String>) {
        let mut invalid = |m: String| problems.push(m);
        let cp = &self.coinspaid;
        let coinspaid = [
            ("coinspaid.api_url", cp.api_url.is_some()),
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
        let http = |url: &url::Url| matches!(url.scheme(), "http" | "https") && url.has_host();
        if cp.api_url.as_ref().is_some_and(|url| !http(url)) {
            invalid(format!(
                "{}: must be an http(s) URL with a host",
                describe("coinspaid.api_url")
            ));
        }
        if self
            .traces
            .otlp_endpoint
            .as_ref()
            .is_some_and(|url| !http(url))
        {
            invalid(format!(
                "{}: must be an http(s) URL with a host (OTLP over HTTP)",
                describe("traces.otlp_endpoint")
            ));
        }
        if self.traces.service_name.trim().is_empty() {
            invalid(format!(
                "{}: must not be empty",
                describe("traces.service_name")
            ));
        }
        for (key, url) in [
            ("notify.url", self.notify.url.as_ref()),
            ("simulator.callback_url", Some(&self.simulator.callback_url)),
        ] {
            if url.is_some_and(|url| !http(url)) {
                invalid(format!("{}: must be an http(s) URL", describe(key)));
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
            if cp
                .api_url
                .as_ref()
                .is_some_and(|url| url.scheme() != "https")
            {
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
        for problem in self.quotes.problems() {
            invalid(problem);
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
            Ok(secrets) if secrets.is_empty() && self.notify.url.is_some() => invalid(format!(
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
}

/// One `[withdrawal_minimums]` entry: an uppercase currency code and a positive decimal string
/// (a TOML number is refused by the type: a float cannot carry money exactly).
pub(super) fn parse_minimum(code: &str, text: &str) -> Result<(Currency, Decimal), String> {
    let currency = Currency::parse(code).ok_or_else(|| {
        format!("withdrawal_minimums: {code:?} is not an uppercase currency code")
    })?;
    let amount =
        Amount::parse(text).map_err(|e| format!("withdrawal_minimums.{code}: {text:?}: {e}"))?;
    Ok((currency, amount.value()))
}
