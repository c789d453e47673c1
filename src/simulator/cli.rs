//! `payoutd simulator`: the simulator as its own process, for demos and manual testing.
//!
//! Environment: `SIMULATOR_LISTEN_ADDR` (default `127.0.0.1:8090`), `COINSPAID_API_KEY` and
//! `COINSPAID_API_SECRET` (must match the service's), `SIMULATOR_CALLBACK_URL` (default
//! `http://127.0.0.1:8080/v1/callbacks/coinspaid`), `SIMULATOR_CALLBACK_DELAY_MS` (default 2000).

use std::process::ExitCode;
use std::time::Duration;

use super::{Simulator, SimulatorSettings};
use crate::coinspaid::signing::SecretString;
use crate::coinspaid::Credentials;
use crate::config::LogFormat;

pub async fn run() -> ExitCode {
    crate::telemetry::init(LogFormat::Pretty, "info");
    let env =
        |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
    let listen = env("SIMULATOR_LISTEN_ADDR", "127.0.0.1:8090");
    let delay_ms: u64 = env("SIMULATOR_CALLBACK_DELAY_MS", "2000")
        .parse()
        .unwrap_or(2000);
    let settings = SimulatorSettings {
        credentials: Credentials {
            key: env("COINSPAID_API_KEY", "simulator-key"),
            secret: SecretString::new(env("COINSPAID_API_SECRET", "simulator-secret")),
        },
        callback_url: Some(env(
            "SIMULATOR_CALLBACK_URL",
            "http://127.0.0.1:8080/v1/callbacks/coinspaid",
        )),
        callback_delay: Duration::from_millis(delay_ms),
    };
    let listener = match tokio::net::TcpListener::bind(&listen).await {
        Ok(l) => l,
        Err(err) => {
            eprintln!("payoutd simulator: cannot listen on {listen}: {err}");
            return ExitCode::FAILURE;
        }
    };
    let simulator = match Simulator::spawn(settings, listener).await {
        Ok(s) => s,
        Err(err) => {
            eprintln!("payoutd simulator: {err}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(url = %simulator.base_url(), "CoinsPaid simulator listening");
    let _ = tokio::signal::ctrl_c().await;
    ExitCode::SUCCESS
}
