//! The simulator's memory: created withdrawals, received requests, the behavior script.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rust_decimal::Decimal;

use super::behavior::SubmitBehavior;
use crate::coinspaid::wire::WithdrawalRequest;
use crate::coinspaid::Signer;

/// One `POST /v2/withdrawal/crypto` as it arrived.
#[derive(Debug, Clone)]
pub struct Submission {
    pub foreign_id: Option<String>,
    pub request: Option<WithdrawalRequest>,
    pub raw_body: Vec<u8>,
    pub signature_valid: bool,
    /// The HTTP status the simulator answered (or will answer, for a slow answer).
    pub answered_status: u16,
}

/// A withdrawal the simulator created.
#[derive(Debug, Clone)]
pub struct SimWithdrawal {
    pub id: i64,
    pub foreign_id: String,
    pub request: WithdrawalRequest,
    /// What the user receives, in `convert_to` (or `currency`).
    pub receiver_amount: Decimal,
    /// The last status reported by callback, `processing` before any.
    pub status: String,
}

/// One callback post.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub foreign_id: String,
    pub status: String,
    /// The receiver's HTTP status, or `None` when it could not be reached.
    pub answered: Option<u16>,
}

pub(super) struct Inner {
    pub behaviors: VecDeque<SubmitBehavior>,
    pub default_behavior: SubmitBehavior,
    pub callback_url: Option<String>,
    pub callback_delay: Duration,
    pub submissions: Vec<Submission>,
    pub withdrawals: HashMap<String, SimWithdrawal>,
    pub deliveries: Vec<Delivery>,
    /// Requests per foreign_id being answered right now, and the most ever seen at once.
    pub in_flight: HashMap<String, usize>,
    pub max_in_flight: usize,
    /// Withdrawal requests being answered right now, whatever their foreign_id, and the most
    /// ever seen at once.
    pub all_in_flight: usize,
    pub max_all_in_flight: usize,
    /// Withdrawal requests and look-ups being answered right now, and the most ever at once:
    /// what a client's one bound on its withdrawal work shows as.
    pub calls_in_flight: usize,
    pub max_calls_in_flight: usize,
    /// How long every `/v2/transactions/info` takes to answer.
    pub lookup_delay: Duration,
    /// What `/v2/currencies/list` lists and withdrawals are validated against.
    pub catalog: crate::domain::CurrencyCatalog,
    /// What the pair endpoints list and `/v2/exchange/calculate` quotes.
    pub pairs: Vec<super::pairs::SimPair>,
    pub pair_endpoints: super::pairs::PairEndpoints,
    next_id: i64,
    /// Requests that arrived at the target of a scripted redirect: a client must never follow.
    pub redirected: usize,
    /// When each `/v2/exchange/calculate` call arrived (all of them; the limit counts the last
    /// minute's).
    pub calculate_calls: Vec<std::time::Instant>,
    /// A scripted answer to every `/v2/transactions/info` (status, raw body), replacing the real
    /// one.
    pub lookup_answer: Option<(u16, String)>,
    /// Scripted answers to the next look-ups, one each (status, raw body), before
    /// `lookup_answer` and the truth.
    pub lookup_answers: VecDeque<(u16, String)>,
    /// Whether a reused foreign_id is refused (CoinsPaid's v1 documents it; v2 never promises
    /// it). Off: every request creates, and pays out, a withdrawal again.
    pub refuse_reused_foreign_id: bool,
    /// Withdrawals created per foreign_id: more than one is a payout made twice.
    pub payouts: HashMap<String, usize>,
}

pub(super) struct SimState {
    inner: Mutex<Inner>,
    /// Draws the documented callback shapes. Seeded, so a failing run can be replayed.
    rng: Mutex<rand::rngs::StdRng>,
    pub seed: u64,
    pub signer: Signer,
    pub http: reqwest::Client,
    /// Callbacks scheduled or in flight, for `wait_idle`.
    pending_callbacks: AtomicUsize,
    idle: tokio::sync::Notify,
}

impl SimState {
    pub fn new(signer: Signer, callback_url: Option<String>, callback_delay: Duration) -> Self {
        use rand::SeedableRng;
        // PAYOUTD_SIMULATOR_SEED replays a run; otherwise every simulator draws its own.
        let seed = std::env::var("PAYOUTD_SIMULATOR_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(rand::random);
        Self {
            rng: Mutex::new(rand::rngs::StdRng::seed_from_u64(seed)),
            seed,
            inner: Mutex::new(Inner {
                behaviors: VecDeque::new(),
                default_behavior: SubmitBehavior::confirm(),
                callback_url,
                callback_delay,
                submissions: Vec::new(),
                withdrawals: HashMap::new(),
                deliveries: Vec::new(),
                in_flight: HashMap::new(),
                max_in_flight: 0,
                all_in_flight: 0,
                max_all_in_flight: 0,
                calls_in_flight: 0,
                max_calls_in_flight: 0,
                lookup_delay: Duration::ZERO,
                catalog: crate::domain::CurrencyCatalog::builtin(),
                pairs: super::pairs::default_pairs(&crate::domain::CurrencyCatalog::builtin()),
                pair_endpoints: super::pairs::PairEndpoints::default(),
                next_id: 134_700_000,
                redirected: 0,
                calculate_calls: Vec::new(),
                lookup_answer: None,
                lookup_answers: VecDeque::new(),
                refuse_reused_foreign_id: true,
                payouts: HashMap::new(),
            }),
            signer,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("a plain HTTP client builds"),
            pending_callbacks: AtomicUsize::new(0),
            idle: tokio::sync::Notify::new(),
        }
    }

    /// The lock is never held across an await.
    pub fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn rng(&self) -> MutexGuard<'_, rand::rngs::StdRng> {
        self.rng
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn record(&self, submission: Submission) {
        self.inner().submissions.push(submission);
    }

    /// The next queued behavior if it is a refusal (which applies before any other check).
    pub fn next_scripted_refusal(&self) -> Option<SubmitBehavior> {
        let mut inner = self.inner();
        let refusing = |b: &SubmitBehavior| {
            matches!(
                b,
                SubmitBehavior::Refuse { .. }
                    | SubmitBehavior::AuthError { .. }
                    | SubmitBehavior::Redirect { .. }
            )
        };
        match inner.behaviors.front() {
            Some(front) if refusing(front) => inner.behaviors.pop_front(),
            Some(_) => None,
            None if refusing(&inner.default_behavior) => Some(inner.default_behavior.clone()),
            None => None,
        }
    }

    pub fn next_behavior(&self) -> SubmitBehavior {
        let mut inner = self.inner();
        inner
            .behaviors
            .pop_front()
            .unwrap_or_else(|| inner.default_behavior.clone())
    }

    /// Creates the withdrawal unless its foreign_id exists and reused ones are refused; `None`
    /// means "already taken". Without that refusal a reused foreign_id is paid out again (the
    /// look-up then shows the latest).
    pub fn create(
        &self,
        request: &WithdrawalRequest,
        receiver_amount: Decimal,
    ) -> Option<SimWithdrawal> {
        let mut inner = self.inner();
        if inner.refuse_reused_foreign_id && inner.withdrawals.contains_key(&request.foreign_id) {
            return None;
        }
        *inner.payouts.entry(request.foreign_id.clone()).or_default() += 1;
        inner.next_id += 1;
        let withdrawal = SimWithdrawal {
            id: inner.next_id,
            foreign_id: request.foreign_id.clone(),
            request: request.clone(),
            receiver_amount,
            status: "processing".into(),
        };
        inner
            .withdrawals
            .insert(request.foreign_id.clone(), withdrawal.clone());
        Some(withdrawal)
    }

    /// Counts a request for `foreign_id` as being answered until the guard drops.
    pub fn enter(self: &std::sync::Arc<Self>, foreign_id: &str) -> InFlight {
        let mut inner = self.inner();
        let count = inner.in_flight.entry(foreign_id.to_owned()).or_insert(0);
        *count += 1;
        let now = *count;
        inner.max_in_flight = inner.max_in_flight.max(now);
        inner.all_in_flight += 1;
        inner.max_all_in_flight = inner.max_all_in_flight.max(inner.all_in_flight);
        InFlight {
            state: self.clone(),
            foreign_id: foreign_id.to_owned(),
        }
    }

    /// Counts a withdrawal request or a look-up as being answered until the guard drops.
    pub fn enter_call(self: &std::sync::Arc<Self>) -> CallInFlight {
        let mut inner = self.inner();
        inner.calls_in_flight += 1;
        inner.max_calls_in_flight = inner.max_calls_in_flight.max(inner.calls_in_flight);
        CallInFlight {
            state: self.clone(),
        }
    }

    /// Whether a request with this foreign_id is refused as already taken.
    pub fn refuses_reuse_of(&self, foreign_id: &str) -> bool {
        let inner = self.inner();
        inner.refuse_reused_foreign_id && inner.withdrawals.contains_key(foreign_id)
    }

    pub fn callbacks_scheduled(&self, n: usize) {
        self.pending_callbacks.fetch_add(n, Ordering::SeqCst);
    }

    pub fn callback_done(&self) {
        if self.pending_callbacks.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.idle.notify_waiters();
        }
    }

    pub async fn wait_idle(&self, timeout: Duration) -> bool {
        tokio::time::timeout(timeout, async {
            loop {
                let notified = self.idle.notified();
                if self.pending_callbacks.load(Ordering::SeqCst) == 0 {
                    return;
                }
                notified.await;
            }
        })
        .await
        .is_ok()
    }
}

/// One request being answered; see [`SimState::enter`].
pub(super) struct InFlight {
    state: std::sync::Arc<SimState>,
    foreign_id: String,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut inner = self.state.inner();
        if let Some(count) = inner.in_flight.get_mut(&self.foreign_id) {
            *count -= 1;
        }
        inner.all_in_flight -= 1;
    }
}

pub(super) struct CallInFlight {
    state: std::sync::Arc<SimState>,
}

impl Drop for CallInFlight {
    fn drop(&mut self) {
        self.state.inner().calls_in_flight -= 1;
    }
}
