//! A CoinsPaid simulator that speaks the provider's wire format on loopback: it checks
//! request signatures, creates withdrawals (refusing a reused foreign_id), answers lookups,
//! and posts signed callbacks. Its outcomes are scriptable ([`SubmitBehavior`]) from Rust
//! (tests) or over HTTP (`/_simulator/...`, for demos and curl).
//!
//! It is the test double of the whole suite and the provider behind `cargo run` in
//! development, so it must stay faithful to `shared/coinspaid-api.md`.

mod behavior;
pub mod cli;
mod delivery;
mod pairs;
mod rates;
mod routes;
mod state;
mod travel_rule;

use std::sync::Arc;
use std::time::Duration;

pub use behavior::SubmitBehavior;
pub use pairs::{PairEndpoints, SimPair};
pub use state::{Delivery, SimWithdrawal, Submission};

use crate::coinspaid::wire::WithdrawalRequest;
use crate::coinspaid::{Credentials, Signer};

/// The key pair `payoutd simulator` uses unless told otherwise, and prints (configuration
/// owns them: it decides what they allow).
pub use crate::config::{SIMULATOR_KEY as DEFAULT_KEY, SIMULATOR_SECRET as DEFAULT_SECRET};

pub struct SimulatorSettings {
    /// Verifies inbound request signatures and signs callbacks.
    pub credentials: Credentials,
    /// Where callbacks go, e.g. `http://127.0.0.1:8080/v1/callbacks/coinspaid`.
    pub callback_url: Option<String>,
    /// Wait before each scheduled callback.
    pub callback_delay: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum SimulatorError {
    #[error("the simulator created no withdrawal with that foreign_id")]
    UnknownForeignId,
    #[error("no callback URL is configured")]
    NoCallbackUrl,
    #[error("callback delivery failed: {0}")]
    Transport(String),
}

/// Scripts and inspects a running simulator. Cheap to clone.
#[derive(Clone)]
pub struct SimulatorControl {
    state: Arc<state::SimState>,
}

impl SimulatorControl {
    fn new(settings: SimulatorSettings) -> Self {
        Self {
            state: Arc::new(state::SimState::new(
                Signer::new(settings.credentials),
                settings.callback_url,
                settings.callback_delay,
            )),
        }
    }

    /// Queues a behavior for the next valid, new withdrawal request (FIFO).
    pub fn push_behavior(&self, behavior: SubmitBehavior) {
        self.state.inner().behaviors.push_back(behavior);
    }

    /// What happens when the queue is empty. Initially [`SubmitBehavior::confirm`].
    pub fn set_default_behavior(&self, behavior: SubmitBehavior) {
        self.state.inner().default_behavior = behavior;
    }

    pub fn set_callback_url(&self, url: Option<String>) {
        self.state.inner().callback_url = url;
    }

    pub fn set_callback_delay(&self, delay: Duration) {
        self.state.inner().callback_delay = delay;
    }

    /// Every `/v2/withdrawal/crypto` request received, in arrival order.
    pub fn submissions(&self) -> Vec<Submission> {
        self.state.inner().submissions.clone()
    }

    /// Withdrawals the simulator created, in creation order.
    pub fn withdrawals(&self) -> Vec<SimWithdrawal> {
        let inner = self.state.inner();
        let mut all: Vec<SimWithdrawal> = inner.withdrawals.values().cloned().collect();
        all.sort_by_key(|w| w.id);
        all
    }

    /// The most `/v2/withdrawal/crypto` requests for one foreign_id ever answered at once.
    /// A payout service must keep this at 1.
    pub fn max_concurrent_submissions(&self) -> usize {
        self.state.inner().max_in_flight
    }

    /// The most `/v2/withdrawal/crypto` requests ever answered at once, all foreign_ids
    /// together: what a client's own concurrency limit shows as.
    pub fn max_concurrent_requests(&self) -> usize {
        self.state.inner().max_all_in_flight
    }

    /// The most withdrawal requests and look-ups ever answered at once, together.
    pub fn max_concurrent_calls(&self) -> usize {
        self.state.inner().max_calls_in_flight
    }

    /// Makes every `/v2/transactions/info` answer only after `delay`.
    pub fn set_lookup_delay(&self, delay: Duration) {
        self.state.inner().lookup_delay = delay;
    }

    /// Callbacks posted so far, in the order they were answered.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.state.inner().deliveries.clone()
    }

    /// A callback body the simulator could post for this withdrawal and status, in a randomly
    /// drawn documented shape.
    pub fn callback_body(&self, foreign_id: &str, status: &str) -> Option<Vec<u8>> {
        let withdrawal = self.state.inner().withdrawals.get(foreign_id).cloned()?;
        let mut rng = self.state.rng();
        let variant = delivery::Variant::random(&mut *rng);
        Some(delivery::callback_body(
            &withdrawal,
            status,
            variant,
            &mut *rng,
        ))
    }

    /// The seed of the simulator's random choices (set `PAYOUTD_SIMULATOR_SEED` to replay it).
    pub fn seed(&self) -> u64 {
        self.state.seed
    }

    /// Answers every `/v2/transactions/info` with this status and body instead of the truth
    /// (`None` restores it): for answers in shapes CoinsPaid did not document.
    pub fn set_lookup_answer(&self, answer: Option<(u16, serde_json::Value)>) {
        self.set_lookup_answer_raw(answer.map(|(status, body)| (status, body.to_string())));
    }

    /// [`Self::set_lookup_answer`] with a raw body (an HTML page, CoinsPaid's invalid-JSON 429).
    pub fn set_lookup_answer_raw(&self, answer: Option<(u16, String)>) {
        self.state.inner().lookup_answer = answer;
    }

    /// Answers the next `/v2/transactions/info` with this status and raw body (not necessarily
    /// JSON), once; queued answers come before `set_lookup_answer` and the truth.
    pub fn push_lookup_answer(&self, status: u16, body: &str) {
        self.state
            .inner()
            .lookup_answers
            .push_back((status, body.to_owned()));
    }

    /// Whether a reused foreign_id is refused (the default) or paid out again: a stand-in for
    /// a CoinsPaid that does not de-duplicate, which its v2 documentation never promises.
    pub fn set_refuse_reused_foreign_id(&self, refuse: bool) {
        self.state.inner().refuse_reused_foreign_id = refuse;
    }

    /// How many withdrawals were created (paid out) with this foreign_id: more than one is a
    /// double payout.
    pub fn payouts(&self, foreign_id: &str) -> usize {
        self.state
            .inner()
            .payouts
            .get(foreign_id)
            .copied()
            .unwrap_or(0)
    }

    /// Requests that followed a scripted redirect. A signed request must never be re-sent.
    pub fn redirected_requests(&self) -> usize {
        self.state.inner().redirected
    }

    /// Calls `/v2/exchange/calculate` received, refused ones included.
    pub fn calculate_calls(&self) -> usize {
        self.state.inner().calculate_calls.len()
    }

    /// Replaces what `/v2/currencies/list` lists (and what withdrawals are checked against).
    /// Its `minimum_deposit` is listed as `minimum_amount`, as CoinsPaid does.
    pub fn set_catalog(&self, catalog: crate::domain::CurrencyCatalog) {
        self.state.inner().catalog = catalog;
    }

    /// What `/v2/currencies/rates` and `/v2/currencies/pairs` list, and `/v2/exchange/calculate`
    /// quotes. Initially every fiat to every crypto and back.
    pub fn pairs(&self) -> Vec<SimPair> {
        self.state.inner().pairs.clone()
    }

    pub fn set_pairs(&self, pairs: Vec<SimPair>) {
        self.state.inner().pairs = pairs;
    }

    /// Stops listing (and quoting) `from` -> `to`; false if it was not listed.
    pub fn remove_pair(&self, from: &str, to: &str) -> bool {
        let mut inner = self.state.inner();
        let before = inner.pairs.len();
        inner.pairs.retain(|p| !(p.from == from && p.to == to));
        inner.pairs.len() != before
    }

    /// Which pair endpoints answer; see [`PairEndpoints`]. Initially both.
    pub fn set_pair_endpoints(&self, endpoints: PairEndpoints) {
        self.state.inner().pair_endpoints = endpoints;
    }

    /// CoinsPaid settles a withdrawal but its callback is lost: the status changes, visible to
    /// `/v2/transactions/info`, and nothing is posted. False for an unknown foreign_id.
    pub fn set_status(&self, foreign_id: &str, status: &str) -> bool {
        let mut inner = self.state.inner();
        match inner.withdrawals.get_mut(foreign_id) {
            Some(w) => {
                w.status = status.to_owned();
                true
            }
            None => false,
        }
    }

    /// CoinsPaid loses a withdrawal altogether (a disaster drill for the reconciler).
    pub fn forget(&self, foreign_id: &str) -> bool {
        self.state.inner().withdrawals.remove(foreign_id).is_some()
    }

    /// Posts a signed callback now; returns the HTTP status the receiver answered.
    pub async fn send_callback(
        &self,
        foreign_id: &str,
        status: &str,
    ) -> Result<u16, SimulatorError> {
        delivery::deliver(&self.state, foreign_id, status).await
    }

    /// Resolves when no scheduled callback is waiting or in flight; false on timeout.
    pub async fn wait_callbacks_idle(&self, timeout: Duration) -> bool {
        self.state.wait_idle(timeout).await
    }
}

/// The simulator's router and its control, unbound, so the service can embed it.
pub fn router(settings: SimulatorSettings) -> (axum::Router, SimulatorControl) {
    let control = SimulatorControl::new(settings);
    (routes::router(control.clone()), control)
}

/// A simulator serving on its own listener, stopped when dropped.
pub struct Simulator {
    base_url: String,
    control: SimulatorControl,
    task: tokio::task::JoinHandle<()>,
}

impl Simulator {
    /// Serves on `listener` in a background task.
    pub async fn spawn(
        settings: SimulatorSettings,
        listener: tokio::net::TcpListener,
    ) -> std::io::Result<Simulator> {
        let address = listener.local_addr()?;
        let (router, control) = router(settings);
        let task = tokio::spawn(async move {
            if let Err(err) = axum::serve(listener, router).await {
                tracing::error!(error = %err, "simulator server stopped");
            }
        });
        Ok(Simulator {
            base_url: format!("http://{address}"),
            control,
            task,
        })
    }

    /// The service calls `{base_url}/v2/...`.
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    pub fn control(&self) -> SimulatorControl {
        self.control.clone()
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The crypto a request pays out in.
fn received_currency(request: &WithdrawalRequest) -> &str {
    request.convert_to.as_deref().unwrap_or(&request.currency)
}
