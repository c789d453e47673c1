//! `payoutd simulator`: the simulator as its own process, for demos and manual testing
//! against a separately running `payoutd`.
//!
//! Settings come from the same files and environment as the service: `[simulator]`
//! (`PAYOUTD_SIMULATOR_LISTEN_ADDR`, `PAYOUTD_SIMULATOR_CALLBACK_URL`,
//! `PAYOUTD_SIMULATOR_CALLBACK_DELAY_MS`) and the CoinsPaid key pair
//! (`COINSPAID_API_KEY`, `COINSPAID_API_SECRET`; `simulator-key` / `simulator-secret` when unset),
//! which must match the service's.

use std::process::ExitCode;
use std::time::Duration;

use super::{Simulator, SimulatorSettings};
use crate::coinspaid::signing::SecretString;
use crate::coinspaid::Credentials;
use crate::config::{Environment, Settings};

pub use super::{DEFAULT_KEY, DEFAULT_SECRET};

/// Under `payoutd simulator --help`.
pub const HELP: &str = "Settings: [simulator] in the configuration files, or \
PAYOUTD_SIMULATOR_LISTEN_ADDR, PAYOUTD_SIMULATOR_CALLBACK_URL and \
PAYOUTD_SIMULATOR_CALLBACK_DELAY_MS; the key pair COINSPAID_API_KEY and COINSPAID_API_SECRET \
(simulator-key and simulator-secret when unset) must match the service's. Refuses to run with \
PAYOUTD_ENV=production.";

pub async fn run() -> ExitCode {
    let settings = match Settings::load() {
        Ok(s) => s,
        Err(err) => {
            eprintln!("payoutd simulator: {err}");
            return ExitCode::from(2);
        }
    };
    // Held to the end of the function: the lines still queued are written on return.
    let _log = crate::telemetry::init(settings.log_format(), &settings.log.filter, None);
    if settings.env == Environment::Production {
        eprintln!("payoutd simulator: refusing to run with PAYOUTD_ENV=production");
        return ExitCode::from(2);
    }
    let cp = &settings.coinspaid;
    let credentials = Credentials {
        key: if cp.api_key.is_empty() {
            DEFAULT_KEY.into()
        } else {
            cp.api_key.clone()
        },
        secret: if cp.api_secret.is_empty() {
            SecretString::new(DEFAULT_SECRET)
        } else {
            cp.api_secret.clone()
        },
    };
    let config = &settings.simulator;
    let listener = match tokio::net::TcpListener::bind(config.listen_addr).await {
        Ok(l) => l,
        Err(err) => {
            eprintln!(
                "payoutd simulator: cannot listen on {}: {err}",
                config.listen_addr
            );
            return ExitCode::FAILURE;
        }
    };
    let simulator = match Simulator::spawn(
        SimulatorSettings {
            credentials,
            callback_url: Some(config.callback_url.to_string()),
            callback_delay: Duration::from_millis(config.callback_delay_ms),
        },
        listener,
    )
    .await
    {
        Ok(s) => s,
        Err(err) => {
            eprintln!("payoutd simulator: {err}");
            return ExitCode::FAILURE;
        }
    };
    if cp.api_key.is_empty() && cp.api_secret.is_empty() {
        // Public by design: with exactly these, payoutd turns on its development conveniences.
        tracing::info!(
            url = %simulator.base_url(),
            callbacks_to = %config.callback_url,
            key = DEFAULT_KEY,
            secret = DEFAULT_SECRET,
            "CoinsPaid simulator listening; give payoutd COINSPAID_API_KEY and COINSPAID_API_SECRET as shown"
        );
    } else {
        tracing::info!(url = %simulator.base_url(), callbacks_to = %config.callback_url, "CoinsPaid simulator listening");
    }
    let _ = tokio::signal::ctrl_c().await;
    ExitCode::SUCCESS
}
