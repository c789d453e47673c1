//! `payoutd` (or `payoutd serve`): the API and workers. `payoutd simulator`: the CoinsPaid simulator.
//! `payoutd admin ...`: the operator API from a shell.
//! `payoutd migrate`: applies the migrations and exits (a pre-deploy job).
//! `payoutd healthcheck`: exits 0 when the local service is ready (for images without curl).
//! `payoutd openapi`: prints the OpenAPI document.
//! `payoutd --help` and `payoutd <command> --help` describe them (see `payoutd::cli`).

use std::process::ExitCode;

use clap::Parser;
use payoutd::app::Application;
use payoutd::cli::{Cli, Command};
use payoutd::config::{Settings, DEV_API_TOKEN};
use payoutd::operators::settings::DEV_ADMIN_TOKEN;
use payoutd::telemetry;

/// mimalloc instead of glibc's malloc: a perf profile of creates at 64 clients spent about a
/// sixth of payoutd's CPU in glibc's malloc and free (many small, short-lived allocations
/// passed between the runtime's threads).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    // A usage error exits 2 here, naming the argument; --help and --version exit 0.
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve().await,
        Command::Simulator => payoutd::simulator::cli::run().await,
        Command::Admin { command } => payoutd::operators::cli::run(command).await,
        Command::Migrate => migrate().await,
        Command::Healthcheck => healthcheck().await,
        // The OpenAPI document on stdout, without a database: for CI's validator and clients.
        Command::Openapi => {
            let document = payoutd::api::openapi_document();
            match serde_json::to_string_pretty(&document) {
                Ok(text) => {
                    println!("{text}");
                    ExitCode::SUCCESS
                }
                Err(err) => {
                    eprintln!("payoutd: {err}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

async fn serve() -> ExitCode {
    let settings = match load_settings() {
        Ok(settings) => settings,
        Err(code) => return code,
    };
    // Held to the end of the function: the lines still queued are written and the spans still
    // queued exported on return.
    let _log = telemetry::init(
        settings.log_format(),
        &settings.log.filter,
        Some(&settings.traces),
    );
    // Crash points and the dev tokens exist only in development against the simulator with
    // its own credentials: with any other they stay off whatever PAYOUTD_ENV says.
    if settings.development_features() {
        payoutd::faults::arm();
    }
    if settings.development_features() && settings.server.api_tokens.is_empty() {
        tracing::warn!(
            token = DEV_API_TOKEN,
            "DEVELOPMENT MODE: no PAYOUTD_API_TOKENS set; the well-known dev token is accepted"
        );
    }
    if settings.development_features() && settings.admin.tokens.is_empty() {
        tracing::warn!(
            token = DEV_ADMIN_TOKEN,
            operator = "dev",
            "DEVELOPMENT MODE: no PAYOUTD_ADMIN_TOKENS set; the well-known dev operator token is accepted on /admin"
        );
    }
    let app = match Application::build(settings).await {
        Ok(app) => app,
        Err(err) => {
            tracing::error!(error = %err, "payoutd could not start");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(port = app.port(), "payoutd listening");
    match app.run_until(shutdown_signal()).await {
        Ok(()) => {
            tracing::info!("payoutd stopped cleanly");
            ExitCode::SUCCESS
        }
        Err(err) => {
            tracing::error!(error = %err, "server failed");
            ExitCode::FAILURE
        }
    }
}

/// Creates the database if needed and applies every migration, then exits: run as a
/// pre-deploy job, so the serving processes find the schema in place (and their role needs
/// no CREATEDB).
async fn migrate() -> ExitCode {
    let settings = match load_settings() {
        Ok(settings) => settings,
        Err(code) => return code,
    };
    // Held to the end of the function: the lines still queued are written on return. A
    // one-shot job: no traces.
    let _log = telemetry::init(settings.log_format(), &settings.log.filter, None);
    match payoutd::db::connect_and_migrate(&settings.database).await {
        Ok(pool) => {
            pool.close().await;
            tracing::info!("migrations applied");
            ExitCode::SUCCESS
        }
        Err(err) => {
            tracing::error!(error = %err, "migrations failed");
            ExitCode::FAILURE
        }
    }
}

/// `GET /readyz` on this container's own listen address (an unspecified IP means loopback):
/// exit 0 when ready. The runtime image has no shell or curl, so the binary checks itself.
async fn healthcheck() -> ExitCode {
    let settings = match load_settings() {
        Ok(settings) => settings,
        Err(code) => return code,
    };
    let mut addr = settings.server.listen_addr;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let client = match reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(3))
        .build()
    {
        Ok(client) => client,
        Err(err) => {
            eprintln!("payoutd healthcheck: {err}");
            return ExitCode::FAILURE;
        }
    };
    match client.get(format!("http://{addr}/readyz")).send().await {
        Ok(response) if response.status().is_success() => ExitCode::SUCCESS,
        Ok(response) => {
            eprintln!(
                "payoutd healthcheck: /readyz answered {}",
                response.status()
            );
            ExitCode::FAILURE
        }
        Err(err) => {
            eprintln!("payoutd healthcheck: {err}");
            ExitCode::FAILURE
        }
    }
}

/// SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}

/// The configuration every subcommand starts from; an invalid one is reported on stderr (no
/// logger yet) and exits 2.
fn load_settings() -> Result<Settings, ExitCode> {
    Settings::load().map_err(|err| {
        eprintln!("payoutd: {err}");
        ExitCode::from(2)
    })
}
