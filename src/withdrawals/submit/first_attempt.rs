//! The first submission attempt of a new withdrawal, started by the request that created it.
//!
//! Each attempt runs in a task of its own, so a client that hangs up never cuts it short. The
//! request waits for it up to `worker.first_attempt_wait_ms` and answers with the withdrawal
//! as it then stands; with a wait of 0 it answers `pending` as soon as the amount is held, and
//! the website learns the rest from the status notifications. Either way the attempt holds the
//! lease of the job the create wrote (see `queue.rs`), and that is what guarantees the
//! submission: after a crash the lease runs out, and the worker takes the job over, looks the
//! withdrawal up and sends it again with the same foreign_id only if CoinsPaid has no record.
//!
//! At most `worker.max_in_flight` calls run at CoinsPaid at once per process (the slots are
//! shared with the worker, look-ups and operators); the others wait their turn in arrival
//! order (tokio's semaphore is fair). One that waited so long that its call could outlast its
//! lease (past half the lease, or past the lease less the CoinsPaid timeout) gives the lease
//! back to the worker rather than race it. Memory stays bounded when creates outrun
//! CoinsPaid: past [`QUEUED_PER_SLOT`] waiting attempts per slot, a new withdrawal's lease is
//! given back at once and the worker submits it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::PgPool;
use tokio::sync::Semaphore;
use tracing::Instrument;

use crate::error::Error;
use crate::withdrawals::queue::{self, Lease};
use crate::withdrawals::store::{self, Withdrawal};
use crate::withdrawals::submit::{Attempt, Submitter};

/// Attempts that may wait for a slot, per slot, before new ones go to the worker instead.
pub const QUEUED_PER_SLOT: usize = 16;

/// Runs new withdrawals' first submission attempts, a bounded number at once.
#[derive(Clone)]
pub struct FirstAttempts {
    pool: PgPool,
    submitter: Submitter,
    wait: Duration,
    /// The latest an attempt may start after its withdrawal was stored.
    latest_start: Duration,
    /// The process's one bound on withdrawal work at CoinsPaid, shared with the worker,
    /// look-ups and operators (`CoinsPaidClient::call_slots`).
    slots: Arc<Semaphore>,
    /// Attempts started and not yet ended, running or waiting for a slot.
    started: Arc<Semaphore>,
    /// `started`'s permits: all of them free means no attempt is left.
    started_capacity: u32,
}

impl FirstAttempts {
    pub fn new(
        pool: PgPool,
        submitter: Submitter,
        wait: Duration,
        max_in_flight: usize,
        provider_timeout: Duration,
    ) -> Self {
        let max_in_flight = max_in_flight.max(1);
        let started_capacity =
            u32::try_from(max_in_flight.saturating_mul(QUEUED_PER_SLOT + 1)).unwrap_or(u32::MAX);
        let lease = submitter.lease_duration();
        // The call must end inside the lease, or the worker may submit alongside it.
        let latest_start = (lease / 2).min(lease.saturating_sub(provider_timeout));
        let slots = submitter.call_slots();
        Self {
            pool,
            submitter,
            wait,
            latest_start,
            slots,
            started: Arc::new(Semaphore::new(started_capacity as usize)),
            started_capacity,
        }
    }

    /// Starts the first attempt for `created` (stored with `lease` held for it) and returns the
    /// withdrawal as it stands when the attempt ends or the wait is over, whichever is first.
    pub async fn run(
        &self,
        lease: Lease,
        created: Withdrawal,
        has_travel_rule: bool,
    ) -> Result<Withdrawal, Error> {
        let leased_at = Instant::now();
        let latest_start = self.latest_start;
        let Ok(started) = self.started.clone().try_acquire_owned() else {
            // Too many already wait: no task (and no memory) for this one; the worker's turn.
            tracing::warn!(withdrawal_id = %created.id, foreign_id = %created.foreign_id, "too many first submission attempts waiting; left to the worker");
            metrics::counter!("payoutd_first_attempts_deferred_total").increment(1);
            let why = "too many first submission attempts waiting (worker.max_in_flight)";
            queue::hand_over_unused(&self.pool, &lease, why, Duration::ZERO).await?;
            return Ok(created);
        };
        let (pool, slots, submitter) = (
            self.pool.clone(),
            self.slots.clone(),
            self.submitter.clone(),
        );
        let row = created.clone();
        // It carries the request's span, so its lines keep the request_id.
        let attempt = tokio::spawn(
            async move {
                let _started = started;
                let Ok(_slot) = slots.acquire_owned().await else {
                    // The semaphore is never closed; were it, the lease would simply expire.
                    return Ok(None);
                };
                if leased_at.elapsed() > latest_start {
                    tracing::warn!(
                        waited_ms = leased_at.elapsed().as_millis() as u64,
                        "first submission attempt waited too long for a free slot; left to the worker"
                    );
                    metrics::counter!("payoutd_first_attempts_deferred_total").increment(1);
                    let why = "waited too long for a free submission slot (worker.max_in_flight)";
                    queue::hand_over_unused(&pool, &lease, why, Duration::ZERO).await?;
                    return Ok(None);
                }
                submitter
                    .attempt_created(lease, row, has_travel_rule)
                    .await
                    .map(Some)
            }
            .instrument(tracing::Span::current()),
        );
        if self.wait.is_zero() {
            // Answer as held: nothing to wait for, nothing to read back.
            return Ok(created);
        }
        let read_back = |created: Withdrawal| async move {
            // The attempt may have got partway: what the row says now.
            Ok(store::get(&self.pool, created.id).await?.unwrap_or(created))
        };
        match tokio::time::timeout(self.wait, attempt).await {
            // CoinsPaid is slow: the attempt goes on in its task (and the worker after the
            // lease); the status follows in a notification.
            Err(_) => {
                tracing::warn!(withdrawal_id = %created.id, foreign_id = %created.foreign_id, "first submission attempt still running; answering with the withdrawal as it stands");
                read_back(created).await
            }
            Ok(Ok(Ok(Some(Attempt::Recorded(current))))) => Ok(*current),
            // Unchanged: still pending, the job will run again.
            Ok(Ok(Ok(Some(Attempt::Retrying | Attempt::Parked) | None))) => Ok(created),
            // Nothing is lost: the lease runs out and the worker tries again.
            Ok(Ok(Err(err))) => {
                crate::withdrawals::submit::attempt_failed(created.id, &err);
                read_back(created).await
            }
            Ok(Err(err)) => {
                tracing::error!(withdrawal_id = %created.id, foreign_id = %created.foreign_id, error = %err, "first submission attempt panicked");
                read_back(created).await
            }
        }
    }

    /// At shutdown: waits up to `grace` for the attempts already running or waiting their
    /// turn. True when all ended; any still running then is cut short, and the worker
    /// submits it again (same foreign_id) once its lease expires.
    pub async fn finish(&self, grace: Duration) -> bool {
        tokio::time::timeout(grace, self.started.acquire_many(self.started_capacity))
            .await
            .is_ok_and(|permits| permits.is_ok())
    }
}
