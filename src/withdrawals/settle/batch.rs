//! Group commit of CoinsPaid callbacks: concurrent callbacks that simply settle or repeat
//! what is known share one transaction and one write, each still answered with its own
//! outcome, only after that transaction committed.
//!
//! One batch, one transaction:
//! 1. lock the named withdrawals (`FOR UPDATE`, in id order);
//! 2. decide in Rust with [`simple`] (pure: the report matches, and the state machine says a
//!    plain move or a duplicate) which callbacks the batch settles;
//! 3. write them all with `settle::write`, the write of every settlement (it locks the
//!    balances the moves settle in (user, currency) order first, when there are several), the
//!    callback rows with their outcomes in the same statement; commit.
//!
//! Every other callback (an unknown foreign_id, a mismatch, a contradiction, an undocumented
//! word, a mere note, a second callback for a withdrawal already in the batch) is left to the
//! single path, which its caller runs after the batch committed: it is stored and applied
//! there, exactly as with batching off, and a repeat then finds the new status. Such callbacks
//! are not stored by the batch at all, so each callback has exactly one row.
//!
//! Locks are taken withdrawals first, then balances, each in a fixed order: the order of the
//! single path (one withdrawal, then its balance) and of the create batch (balances only), so
//! no two of them deadlock. A batch that fails as a whole (a deadlock all the same, a lost
//! connection, a balance that cannot cover its settlement) is rolled back and each of its
//! callbacks runs alone.

use std::collections::{HashMap, HashSet};

use sqlx::PgPool;

use super::outcome::CallbackOutcome;
use crate::coinspaid::callback::ProviderDetails;
use crate::db::batch::{BatchSettings, Batcher};
use crate::domain::{ProviderEvent, Transition};
use crate::error::Error;
use crate::withdrawals::settle::matching;
use crate::withdrawals::settle::transition;
use crate::withdrawals::settle::{self, Callback, Change, Settlement};
use crate::withdrawals::store::{withdrawal_query, Withdrawal};

/// One verified, parsed withdrawal callback, as the receiving path hands it over.
#[derive(Debug, Clone)]
pub struct SettleJob {
    pub body: Vec<u8>,
    pub foreign_id: String,
    pub details: Box<ProviderDetails>,
}

/// A callback the batch settled and committed: what its caller reports (the log lines and
/// metrics are written in the caller's task, so they carry its request's span).
#[derive(Debug)]
pub struct Settled {
    /// The withdrawal as the batch found it, under its lock.
    previous: Withdrawal,
    /// A move or a duplicate.
    transition: Transition,
    /// How many callbacks the batch settled.
    batch: usize,
}

/// Applies withdrawal callbacks, in batches when `[batching]` is on.
#[derive(Clone)]
pub struct Settlements {
    pool: PgPool,
    /// Answers each callback with `Some` (settled, committed) or `None` (the single path's).
    batcher: Option<Batcher<SettleJob, Option<Settled>>>,
}

impl Settlements {
    pub fn new(pool: PgPool, batching: &BatchSettings) -> Self {
        let batcher = batching.enabled.then(|| {
            let pool = pool.clone();
            Batcher::spawn("settle", batching, move |jobs| {
                let pool = pool.clone();
                async move { batch(&pool, &jobs).await }
            })
        });
        Self { pool, batcher }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Applies and stores one withdrawal callback in a batch with whatever else is being
    /// settled right now, if it is the batch's to settle ([`simple`]): `Some(outcome)` once
    /// committed. `None`: the caller applies it alone (`callbacks::apply_alone`), as with
    /// batching off. Either way one transaction holds the callback's row and its effect.
    pub async fn settle(
        &self,
        body: &[u8],
        foreign_id: &str,
        details: &ProviderDetails,
    ) -> Option<CallbackOutcome> {
        if let Some(batcher) = &self.batcher {
            let job = SettleJob {
                body: body.to_vec(),
                foreign_id: foreign_id.to_owned(),
                details: Box::new(details.clone()),
            };
            // `Err(Unavailable)`: the runner is gone; `Ok(None)`: not the batch's to settle.
            if let Ok(Some(settled)) = batcher.submit(job).await {
                return Some(report(&settled, details));
            }
        }
        None
    }
}

/// Whether a callback reporting `details` about `current` (`None`: no withdrawal has that
/// foreign_id) is the batch's to settle, and how: `Some` of a `Transition::Move` (a change of
/// status, with the money it moves) or `Transition::Duplicate` (repeated or stale: stored as a
/// duplicate, nothing moves). Only what needs no person's attention and writes nothing but a
/// plain move is: the report matches the withdrawal, its status word is documented, and the
/// state machine answers a move or a duplicate. Everything else (unknown, mismatch,
/// contradiction, undocumented word, a note) is the single path's. Pure.
pub fn simple(current: Option<&Withdrawal>, details: &ProviderDetails) -> Option<Transition> {
    let current = current?;
    let status = details.status();
    // Free text (an `error`) may quote travel-rule data: only `transition::apply_report`
    // scrubs it, on the path of a callback applied alone.
    if details.has_free_text() || !matching::mismatches(current, details).is_empty() {
        return None;
    }
    match current.status.apply(&ProviderEvent::Reported(status)) {
        transition @ (Transition::Move { .. } | Transition::Duplicate) => Some(transition),
        Transition::Note | Transition::Anomaly => None,
    }
}

/// One batch: the simple callbacks settled in one transaction, the rest (and all of them if
/// the transaction fails) left to the single path.
async fn batch(pool: &PgPool, jobs: &[SettleJob]) -> Vec<Option<Settled>> {
    // Only the first callback for a withdrawal may be settled here; a repeat in the same
    // batch runs alone after the commit, and finds the status the first one left.
    let mut seen = HashSet::new();
    let firsts: Vec<usize> = (0..jobs.len())
        .filter(|&i| seen.insert(jobs[i].foreign_id.as_str()))
        .collect();
    match commit(pool, jobs, &firsts).await {
        Ok(settled) => settled,
        Err(err) => {
            if crate::db::failover::MaybeUnavailable::database_unavailable(&err) {
                crate::db::failover::report("settle batch", &err);
            } else {
                tracing::warn!(error = %err, callbacks = jobs.len(), "settle batch failed as a whole; its callbacks run alone");
            }
            metrics::counter!("payoutd_batch_failures_total", "batch" => "settle").increment(1);
            jobs.iter().map(|_| None).collect()
        }
    }
}

/// A callback the batch settles, with what it needs to write and to report.
struct Planned<'a> {
    job: &'a SettleJob,
    current: &'a Withdrawal,
    transition: Transition,
}

async fn commit(
    pool: &PgPool,
    jobs: &[SettleJob],
    firsts: &[usize],
) -> Result<Vec<Option<Settled>>, Error> {
    let mut tx = crate::db::begin_batch_transaction(pool).await?;

    // 1. The withdrawals, in id order (as every batch does, so two batches cannot deadlock).
    let foreign_ids: Vec<&str> = firsts
        .iter()
        .map(|&i| jobs[i].foreign_id.as_str())
        .collect();
    let locked = withdrawal_query!(
        query_as!(Withdrawal,),
        ["SELECT "],
        [" FROM withdrawals WHERE foreign_id = ANY($1) ORDER BY id FOR UPDATE"],
        &foreign_ids as &[&str]
    )
    .fetch_all(&mut *tx)
    .await?;
    let by_foreign_id: HashMap<&str, &Withdrawal> =
        locked.iter().map(|w| (w.foreign_id.as_str(), w)).collect();

    // 2. Which callbacks are the batch's.
    let planned: Vec<(usize, Planned)> = firsts
        .iter()
        .filter_map(|&i| {
            let job = &jobs[i];
            let current = *by_foreign_id.get(job.foreign_id.as_str())?;
            let transition = simple(Some(current), &job.details)?;
            Some((
                i,
                Planned {
                    job,
                    current,
                    transition,
                },
            ))
        })
        .collect();
    if planned.is_empty() {
        // Nothing to write: every callback goes its own way.
        tx.rollback().await?;
        return Ok(jobs.iter().map(|_| None).collect());
    }

    // 3. One write settles them all and stores their callbacks.
    let settlements: Vec<Settlement> = planned
        .iter()
        .map(|(_, p)| Settlement {
            current: p.current,
            change: Change::of_report(p.current.status, p.transition, &p.job.details, None),
            callback: Some(Callback {
                body: &p.job.body,
                foreign_id: &p.job.foreign_id,
                provider_status: &p.job.details.provider_status,
                outcome: outcome_of(p.transition).label(),
            }),
        })
        .collect();
    settle::write(&mut tx, &settlements).await?;
    crate::faults::crash_point("callback_before_commit");
    tx.commit().await?;

    let mut settled: Vec<Option<Settled>> = jobs.iter().map(|_| None).collect();
    let batch = planned.len();
    for (i, plan) in planned {
        settled[i] = Some(Settled {
            previous: plan.current.clone(),
            transition: plan.transition,
            batch,
        });
    }
    Ok(settled)
}

/// What became of a callback the batch settled: a move or a duplicate.
fn outcome_of(transition: Transition) -> CallbackOutcome {
    match transition {
        Transition::Duplicate => CallbackOutcome::Duplicate,
        _ => CallbackOutcome::Applied,
    }
}

/// The log lines and metrics of a settled callback, in the spans the single path writes them
/// in (`withdrawal.callback`, and `withdrawal.transition` inside it).
fn report(settled: &Settled, details: &ProviderDetails) -> CallbackOutcome {
    let current = &settled.previous;
    let outcome = outcome_of(settled.transition);
    let status = match settled.transition {
        Transition::Move { to, effect } => {
            let callback = tracing::info_span!(
                "withdrawal.callback",
                withdrawal_id = %current.id,
                foreign_id = %current.foreign_id,
            );
            let transition = tracing::info_span!(
                parent: &callback,
                "withdrawal.transition",
                withdrawal_id = %current.id,
                foreign_id = %current.foreign_id,
                user_id = %current.user_id,
            );
            transition.in_scope(|| transition::report_move(current, to, effect, details));
            to
        }
        _ => {
            tracing::debug!(withdrawal_id = %current.id, status = %current.status, provider_status = %details.provider_status, "repeated or stale provider report ignored");
            current.status
        }
    };
    let batch = settled.batch;
    tracing::info!(
        withdrawal_id = %current.id,
        foreign_id = %current.foreign_id,
        provider_status = %details.provider_status,
        status = %status,
        outcome = outcome.label(),
        batch,
        "callback processed"
    );
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coinspaid::wire::CurrencyAmount;
    use crate::domain::{Effect, WithdrawalStatus};

    fn withdrawal(status: WithdrawalStatus) -> Withdrawal {
        Withdrawal {
            status,
            ..matching::tests::withdrawal(None)
        }
    }

    fn report(status: &str) -> ProviderDetails {
        ProviderDetails {
            provider_id: Some(7),
            provider_status: status.into(),
            kind: Some("withdrawal".into()),
            sent: Some(CurrencyAmount {
                currency: "EUR".into(),
                amount: "100.00".parse().unwrap(),
            }),
            ..ProviderDetails::default()
        }
    }

    fn moved(to: WithdrawalStatus, effect: Effect) -> Option<Transition> {
        Some(Transition::Move { to, effect })
    }

    #[test]
    fn final_words_on_an_open_withdrawal_settle_in_the_batch() {
        use WithdrawalStatus::*;
        for open in [Pending, Processing] {
            let w = withdrawal(open);
            assert_eq!(
                simple(Some(&w), &report("confirmed")),
                moved(Confirmed, Effect::Debit)
            );
            for word in ["cancelled", "declined"] {
                assert_eq!(
                    simple(Some(&w), &report(word)),
                    moved(Cancelled, Effect::Release)
                );
            }
        }
        // A callback that beat the submission's answer: a plain move, no money.
        assert_eq!(
            simple(Some(&withdrawal(Pending)), &report("not_confirmed")),
            moved(Processing, Effect::None)
        );
    }

    #[test]
    fn repeats_of_what_is_known_are_duplicates_in_the_batch() {
        use WithdrawalStatus::*;
        assert_eq!(
            simple(Some(&withdrawal(Confirmed)), &report("confirmed")),
            Some(Transition::Duplicate)
        );
        assert_eq!(
            simple(Some(&withdrawal(Confirmed)), &report("pending")),
            Some(Transition::Duplicate)
        );
        assert_eq!(
            simple(Some(&withdrawal(Cancelled)), &report("declined")),
            Some(Transition::Duplicate)
        );
    }

    #[test]
    fn whatever_needs_a_look_or_records_only_a_note_is_left_to_the_single_path() {
        use WithdrawalStatus::*;
        // No such withdrawal.
        assert_eq!(simple(None, &report("confirmed")), None);
        // Contradicts a final status.
        assert_eq!(
            simple(Some(&withdrawal(Confirmed)), &report("cancelled")),
            None
        );
        assert_eq!(
            simple(Some(&withdrawal(Rejected)), &report("confirmed")),
            None
        );
        // Never sent.
        assert_eq!(
            simple(Some(&withdrawal(AwaitingApproval)), &report("confirmed")),
            None
        );
        // An undocumented word, even where the state machine would move.
        assert_eq!(simple(Some(&withdrawal(Pending)), &report("failed")), None);
        assert_eq!(
            simple(Some(&withdrawal(Confirmed)), &report("rejected")),
            None
        );
        // Only a note: the provider's word is recorded, nothing moves.
        assert_eq!(
            simple(Some(&withdrawal(Processing)), &report("pending")),
            None
        );
        // Does not match the withdrawal: another amount, another CoinsPaid id, unreadable.
        let mut less = report("confirmed");
        less.sent.as_mut().unwrap().amount = "1.00".parse().unwrap();
        assert_eq!(simple(Some(&withdrawal(Processing)), &less), None);
        let mut other_id = report("confirmed");
        other_id.provider_id = Some(8);
        assert_eq!(simple(Some(&withdrawal(Processing)), &other_id), None);
        let mut unreadable = report("confirmed");
        unreadable.unreadable = vec!["currency_sent.amount".into()];
        assert_eq!(simple(Some(&withdrawal(Processing)), &unreadable), None);
    }
}
