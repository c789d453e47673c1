//! Builds the application from settings: database, provider client, router, worker.
//! `main.rs` and the tests build exactly this.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::api::{self, ApiTokens, AppState};
use crate::coinspaid::{CoinsPaidClient, Credentials, ProviderError, Signer};
use crate::config::{ProviderMode, Settings};
use crate::currencies::Currencies;
use crate::db::{self, DbSetupError};
use crate::simulator::{Simulator, SimulatorSettings};
use crate::usecases::{self, UseCases};
use crate::withdrawals::submit::reconcile::Reconciler;
use crate::withdrawals::submit::Submitter;
use crate::withdrawals::travel_rule::Purger;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Database(#[from] DbSetupError),
    #[error("cannot listen: {0}")]
    Listen(#[from] std::io::Error),
    #[error("cannot build the CoinsPaid client: {0}")]
    Provider(#[from] ProviderError),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Notifier(#[from] crate::notify::NotifierError),
}

pub struct Application {
    listener: TcpListener,
    state: AppState,
    workers: Workers,
    settings: Settings,
    /// Present in development without CoinsPaid settings; kept alive with the app.
    simulator: Option<Simulator>,
}

/// What runs beside the HTTP server, and what tests drive directly.
pub struct Workers {
    pub pool: sqlx::PgPool,
    pub submitter: Submitter,
    pub reconciler: Reconciler,
    pub notifier: crate::notify::Notifier,
    pub currencies: Arc<Currencies>,
    /// Finished at shutdown: creates may answer before their first attempt has ended.
    pub first_attempts: crate::withdrawals::submit::first_attempt::FirstAttempts,
}

impl Application {
    /// Connects and migrates the database, binds the listener (port 0 picks a free port),
    /// and wires the provider: CoinsPaid, or in development without settings, an embedded simulator.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        // Before anything starts: a bad travel-rule default must stop the service, naming its key.
        let travel_rule = settings
            .travel_rule
            .policy(chrono::Utc::now().date_naive())?;
        let pool = db::connect_and_migrate(&settings.database).await?;
        let listener = TcpListener::bind(settings.server.listen_addr).await?;
        let local = listener.local_addr()?;

        let (credentials, base_url, simulator, provider_mode) = match settings.provider_mode() {
            ProviderMode::CoinsPaid => (
                Credentials {
                    key: settings.coinspaid.api_key.clone(),
                    secret: settings.coinspaid.api_secret.clone(),
                },
                settings
                    .coinspaid
                    .api_url
                    .as_ref()
                    .map_or_else(String::new, |url| url.to_string()),
                None,
                // `payoutd simulator` with its own credentials is a simulator too.
                settings.provider_label(),
            ),
            ProviderMode::EmbeddedSimulator => {
                let credentials = Credentials {
                    key: "simulator-key".into(),
                    secret: crate::coinspaid::signing::SecretString::new(format!(
                        "simulator-secret-{}",
                        uuid::Uuid::new_v4()
                    )),
                };
                let sim_listener = TcpListener::bind(settings.simulator.listen_addr).await?;
                let simulator = Simulator::spawn(
                    SimulatorSettings {
                        credentials: credentials.clone(),
                        callback_url: Some(format!(
                            "http://{}/v1/callbacks/coinspaid",
                            callback_host(local)
                        )),
                        callback_delay: Duration::from_millis(settings.simulator.callback_delay_ms),
                    },
                    sim_listener,
                )
                .await?;
                tracing::warn!(
                    simulator = %simulator.base_url(),
                    "DEVELOPMENT MODE: no CoinsPaid settings, withdrawals go to an embedded CoinsPaid simulator; no real money moves. \
                     Script outcomes with POST {}/_simulator/behaviors",
                    simulator.base_url()
                );
                let url = simulator.base_url();
                (credentials, url, Some(simulator), "simulator")
            }
        };
        // Callbacks may still come from the key pair being replaced; requests never do.
        let signer = Signer::new(credentials).with_previous(Credentials {
            key: settings.coinspaid.api_key_previous.clone(),
            secret: settings.coinspaid.api_secret_previous.clone(),
        });
        let client = CoinsPaidClient::new(&base_url, signer.clone(), settings.provider_timeout())?
            .with_call_slots(settings.worker.max_in_flight);
        let submitter = Submitter::new(pool.clone(), client.clone(), settings.worker.clone())
            .with_batching(&settings.batching);
        let currencies = Arc::new(Currencies::new(
            client.clone(),
            settings.withdrawal_minimums(),
        ));
        // Start with CoinsPaid's own list when it answers; the built-in list otherwise.
        match tokio::time::timeout(Duration::from_secs(5), currencies.refresh()).await {
            Ok(Ok(count)) => tracing::info!(count, "currency list loaded from CoinsPaid"),
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "currency list not loaded; using the built-in list until the next refresh")
            }
            Err(_) => tracing::warn!(
                "currency list timed out; using the built-in list until the next refresh"
            ),
        }
        let reconciler = Reconciler::new(pool.clone(), client.clone(), settings.reconciler.clone());
        let notifier = crate::notify::Notifier::new(pool.clone(), settings.notify.clone())?;
        let operators = crate::operators::Operators::new(
            pool.clone(),
            submitter.clone(),
            reconciler.clone(),
            client.clone(),
        );
        let limits = Arc::new(settings.limits.clone());
        let creates = crate::withdrawals::create::Creates::new(
            pool.clone(),
            submitter.lease_duration(),
            limits.clone(),
            Arc::new(settings.merchant_caps.clone()),
            Arc::new(settings.approval.clone()),
            &settings.batching,
        );
        let first_attempts = crate::withdrawals::submit::first_attempt::FirstAttempts::new(
            pool.clone(),
            submitter.clone(),
            settings.first_attempt_wait(),
            settings.worker.max_in_flight,
            settings.provider_timeout(),
        );
        let usecases = UseCases {
            withdrawals: usecases::Withdrawals::new(
                pool.clone(),
                currencies.clone(),
                Arc::new(travel_rule),
                creates,
                first_attempts.clone(),
                operators.clone(),
            ),
            balances: usecases::Balances::new(pool.clone(), currencies.clone()),
            limits: usecases::Limits::new(pool.clone(), limits),
            quotes: usecases::Quotes::new(
                currencies.clone(),
                client,
                pool.clone(),
                settings.quotes.clone(),
            ),
            operations: usecases::Operations::new(pool.clone(), operators),
            callbacks: usecases::Callbacks::new(
                crate::withdrawals::settle::batch::Settlements::new(
                    pool.clone(),
                    &settings.batching,
                ),
                signer,
            ),
            events: usecases::Events::new(pool.clone(), settings.notify.url.is_some()),
        };
        let state = AppState::new(api::Services {
            usecases,
            currencies: currencies.clone(),
            pool: pool.clone(),
            access: api::Access {
                tokens: Arc::new(ApiTokens::new(&settings.effective_api_tokens())),
                operator_tokens: Arc::new(api::admin::auth::OperatorTokens::new(
                    &settings.effective_operators(),
                )),
                guard: Arc::new(crate::api::abuse::Guard::new(&settings.abuse)),
            },
            telemetry: api::Telemetry {
                provider_mode,
                metrics: crate::telemetry::metrics_handle(),
                gauges: Arc::new(crate::telemetry::gauges::Gauges::new(
                    pool.clone(),
                    Duration::from_secs(settings.metrics.db_gauges_interval_secs),
                    settings.notify.url.is_some(),
                    settings.database.max_connections,
                )),
            },
        });
        let workers = Workers {
            pool,
            submitter,
            reconciler,
            notifier,
            currencies,
            first_attempts,
        };
        Ok(Self {
            listener,
            state,
            workers,
            settings,
            simulator,
        })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    pub fn workers(&self) -> &Workers {
        &self.workers
    }

    pub fn simulator(&self) -> Option<&Simulator> {
        self.simulator.as_ref()
    }

    /// Serves until `shutdown` resolves: then stops accepting, finishes in-flight requests and
    /// the worker's current step, and returns.
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let worker = self.settings.worker.enabled.then(|| {
            let submitter = self.workers.submitter.clone();
            tokio::spawn(submitter.run(stop_rx.clone()))
        });
        let reconciler = self.settings.reconciler.enabled.then(|| {
            let reconciler = self.workers.reconciler.clone();
            tokio::spawn(reconciler.run(stop_rx.clone()))
        });
        let notifier =
            (self.settings.notify.enabled && self.workers.notifier.enabled()).then(|| {
                let notifier = self.workers.notifier.clone();
                tokio::spawn(notifier.run(stop_rx.clone()))
            });
        let purger = (self.settings.travel_rule.purge_interval_secs > 0).then(|| {
            let purger = Purger::new(
                self.workers.pool.clone(),
                self.settings.travel_rule.retention_days,
            );
            let every = Duration::from_secs(self.settings.travel_rule.purge_interval_secs);
            tokio::spawn(purger.run(every, stop_rx.clone()))
        });
        let retention = (self.settings.retention.interval_secs > 0).then(|| {
            let retention = crate::db::retention::Retention::new(
                self.workers.pool.clone(),
                self.settings.retention.clone(),
                self.settings.notify.url.is_some(),
            );
            let every = Duration::from_secs(self.settings.retention.interval_secs);
            tokio::spawn(retention.run(every, stop_rx.clone()))
        });
        let refresher = (self.settings.currencies.refresh_secs > 0).then(|| {
            let every = Duration::from_secs(self.settings.currencies.refresh_secs);
            tokio::spawn(self.workers.currencies.clone().run(every, stop_rx.clone()))
        });
        let router = api::router(
            self.state.clone(),
            Duration::from_secs(self.settings.server.request_timeout_secs),
        );
        let mut server_stop = stop_rx.clone();
        // With the peer's address: the callback allow-list and rate limits key on it.
        let server = crate::server::serve(
            self.listener,
            router,
            crate::server::ConnectionLimits {
                header_read_timeout: Duration::from_secs(
                    self.settings.server.header_read_timeout_secs,
                ),
                max_connections: self.settings.server.max_connections,
            },
            async move {
                let _ = server_stop.wait_for(|stop| *stop).await;
            },
        );
        tokio::spawn(async move {
            shutdown.await;
            tracing::info!("shutdown requested: finishing in-flight work");
            let _ = stop_tx.send(true);
        });
        let served = server.await;
        // Creates answered before their first attempt ended (worker.first_attempt_wait_ms):
        // let those attempts finish rather than leave them to the worker after their leases.
        if !self
            .workers
            .first_attempts
            .finish(self.settings.provider_timeout())
            .await
        {
            tracing::warn!("first submission attempts still running at shutdown; the worker resubmits them when their leases expire");
        }
        for task in [worker, reconciler, notifier, purger, retention, refresher]
            .into_iter()
            .flatten()
        {
            let _ = task.await;
        }
        drop(self.simulator);
        served
    }
}

/// Where the embedded simulator reaches this service: the listen address, with an
/// unspecified IP (0.0.0.0, ::) replaced by loopback.
fn callback_host(local: std::net::SocketAddr) -> std::net::SocketAddr {
    if local.ip().is_unspecified() {
        std::net::SocketAddr::from(([127, 0, 0, 1], local.port()))
    } else {
        local
    }
}
