//! Group commit of CoinsPaid callbacks: concurrent callbacks that simply settle or repeat
//! what is known share one transaction and one multi-row write, each still answered with
//! its own outcome, only after that transaction committed.
//!
//! One batch, one transaction:
//! 1. lock the named withdrawals (`FOR UPDATE`, in id order);
//! 2. decide in Rust with [`simple`] (pure: the report matches, and the state machine says a
//!    plain move or a duplicate) which callbacks the batch settles;
//! 3. lock the balance rows those moves settle (`FOR UPDATE`, in (user, currency) order);
//! 4. write everything in one statement: the withdrawals' status and provider fields (as
//!    `transition::apply` writes them), the balances (aggregated per user and currency), the
//!    debit or release entries, the notifications, the submission jobs gone, and the
//!    callback rows with their outcomes; commit.
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

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use rust_decimal::Decimal;
use sqlx::{PgConnection, PgPool, Row};
use uuid::Uuid;

use super::callbacks::{self, CallbackOutcome};
use super::matching;
use super::store::{Withdrawal, COLUMNS};
use super::transition;
use crate::batch::{BatchSettings, Batcher};
use crate::coinspaid::callback::ProviderDetails;
use crate::domain::{Effect, ProviderEvent, Transition, WithdrawalStatus};
use crate::ledger::LedgerError;

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
    simple: Simple,
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

    /// Applies and stores one withdrawal callback: in a batch with whatever else is being
    /// settled right now, or alone (see `callbacks::apply_alone`). Either way one
    /// transaction holds the callback's row and its effect; idempotent per withdrawal.
    pub async fn settle(
        &self,
        body: &[u8],
        foreign_id: &str,
        details: &ProviderDetails,
    ) -> Result<CallbackOutcome, LedgerError> {
        if let Some(batcher) = &self.batcher {
            let job = SettleJob {
                body: body.to_vec(),
                foreign_id: foreign_id.to_owned(),
                details: Box::new(details.clone()),
            };
            // `Err(Unavailable)`: the runner is gone; `Ok(None)`: not the batch's to settle.
            if let Ok(Some(settled)) = batcher.submit(job).await {
                return Ok(report(&settled, details));
            }
        }
        callbacks::apply_alone(&self.pool, body, foreign_id, details).await
    }
}

/// What the batch does with a callback it settles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Simple {
    /// A change of status, with the money it moves (none, a debit, a release).
    Move {
        to: WithdrawalStatus,
        effect: Effect,
    },
    /// Repeated or stale: stored as a duplicate, nothing moves.
    Duplicate,
}

/// Whether a callback reporting `details` about `current` (`None`: no withdrawal has that
/// foreign_id) is the batch's to settle, and how. Only what needs no person's attention and
/// writes nothing but a plain move is: the report matches the withdrawal, its status word is
/// documented, and the state machine answers a move or a duplicate. Everything else (unknown,
/// mismatch, contradiction, undocumented word, a note) is the single path's. Pure.
pub fn simple(current: Option<&Withdrawal>, details: &ProviderDetails) -> Option<Simple> {
    let current = current?;
    let status = details.status();
    // Free text (an `error`) may quote travel-rule data: only `transition::apply_report`
    // scrubs it, on the path of a callback applied alone.
    if details.has_free_text() || !matching::mismatches(current, details).is_empty() {
        return None;
    }
    match current.status.apply(&ProviderEvent::Reported(status)) {
        Transition::Move { to, effect } => Some(Simple::Move { to, effect }),
        Transition::Duplicate => Some(Simple::Duplicate),
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
            if crate::failover::MaybeUnavailable::database_unavailable(&err) {
                crate::failover::report("settle batch", &err);
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
    simple: Simple,
}

async fn commit(
    pool: &PgPool,
    jobs: &[SettleJob],
    firsts: &[usize],
) -> Result<Vec<Option<Settled>>, sqlx::Error> {
    let mut tx = crate::db::begin_batch_transaction(pool).await?;

    // 1. The withdrawals, in id order (as every batch does, so two batches cannot deadlock).
    let foreign_ids: Vec<&str> = firsts
        .iter()
        .map(|&i| jobs[i].foreign_id.as_str())
        .collect();
    let locked: Vec<Withdrawal> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM withdrawals WHERE foreign_id = ANY($1) ORDER BY id FOR UPDATE"
    ))
    .bind(&foreign_ids)
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
            let simple = simple(Some(current), &job.details)?;
            Some((
                i,
                Planned {
                    job,
                    current,
                    simple,
                },
            ))
        })
        .collect();
    if planned.is_empty() {
        // Nothing to write: every callback goes its own way.
        tx.rollback().await?;
        return Ok(jobs.iter().map(|_| None).collect());
    }

    // 3. The balances the moves settle, in (user, currency) order, after the withdrawals.
    let pairs: BTreeSet<(&str, &str)> = planned
        .iter()
        .filter(|(_, p)| matches!(p.simple, Simple::Move { effect, .. } if effect != Effect::None))
        .map(|(_, p)| (p.current.user_id.as_str(), p.current.currency.as_str()))
        .collect();
    if !pairs.is_empty() {
        let (users, currencies): (Vec<&str>, Vec<&str>) = pairs.iter().copied().unzip();
        crate::ledger::lock_balances(&mut tx, &users, &currencies).await?;
    }

    // 4. One statement writes them all.
    let plans: Vec<&Planned> = planned.iter().map(|(_, p)| p).collect();
    write(&mut tx, &plans).await?;
    crate::faults::crash_point("callback_before_commit");
    tx.commit().await?;

    let mut settled: Vec<Option<Settled>> = jobs.iter().map(|_| None).collect();
    let batch = planned.len();
    for (i, plan) in planned {
        settled[i] = Some(Settled {
            previous: plan.current.clone(),
            simple: plan.simple,
            batch,
        });
    }
    Ok(settled)
}

/// The log lines and metrics of a settled callback, in the spans the single path writes them
/// in (`withdrawal.callback`, and `withdrawal.transition` inside it).
fn report(settled: &Settled, details: &ProviderDetails) -> CallbackOutcome {
    let current = &settled.previous;
    let (outcome, status) = match settled.simple {
        Simple::Move { to, effect } => {
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
            (CallbackOutcome::Applied, to)
        }
        Simple::Duplicate => {
            tracing::debug!(withdrawal_id = %current.id, status = %current.status, provider_status = %details.provider_status, "repeated or stale provider report ignored");
            (CallbackOutcome::Duplicate, current.status)
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

/// Writes every planned callback in one statement. Fails (and so rolls the batch back) if a
/// balance could not cover its settlement or a row was not where the plan found it.
async fn write(conn: &mut PgConnection, plans: &[&Planned<'_>]) -> Result<(), sqlx::Error> {
    let moves: Vec<(&Planned, WithdrawalStatus, Effect)> = plans
        .iter()
        .filter_map(|p| match p.simple {
            Simple::Move { to, effect } => Some((*p, to, effect)),
            Simple::Duplicate => None,
        })
        .collect();
    // Per (user, currency): what leaves `held`, and what of it returns to `available`.
    let mut balances: BTreeMap<(&str, &str), (Decimal, Decimal)> = BTreeMap::new();
    for (p, _, effect) in &moves {
        let returned = match effect {
            Effect::None => continue,
            Effect::Debit => Decimal::ZERO,
            Effect::Release => p.current.amount,
        };
        let entry = balances
            .entry((p.current.user_id.as_str(), p.current.currency.as_str()))
            .or_default();
        entry.0 += p.current.amount;
        entry.1 += returned;
    }
    let entries = moves
        .iter()
        .filter(|(_, _, effect)| *effect != Effect::None)
        .count();
    let details = |f: &dyn Fn(&ProviderDetails) -> Option<String>| -> Vec<Option<String>> {
        moves.iter().map(|(p, _, _)| f(&p.job.details)).collect()
    };
    let row = sqlx::query(&format!(
        "WITH input AS (
             SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::int8[], $5::text[],
                                  $6::numeric[], $7::text[], $8::numeric[], $9::text[],
                                  $10::jsonb[], $11::jsonb[], $12::text[], $13::uuid[],
                                  $14::uuid[], $15::text[])
                 AS i(in_id, in_previous, in_status, in_provider_id, in_provider_status,
                      in_sent_amount, in_sent_currency, in_received_amount,
                      in_received_currency, in_fees, in_txids, in_error, in_event_id,
                      in_entry_id, in_entry_kind)),
         moved AS (
             -- The columns and rules of `transition::apply` for a move (its anomaly column
             -- is written only for an anomaly, which never comes here).
             UPDATE withdrawals SET
                 status = in_status,
                 provider_id = COALESCE(provider_id, in_provider_id),
                 provider_status = COALESCE(in_provider_status, provider_status),
                 sent_amount = COALESCE(in_sent_amount, sent_amount),
                 sent_currency = COALESCE(in_sent_currency, sent_currency),
                 received_amount = COALESCE(in_received_amount, received_amount),
                 received_currency = COALESCE(in_received_currency, received_currency),
                 fees = CASE WHEN jsonb_array_length(in_fees) > 0 THEN in_fees ELSE fees END,
                 txids = CASE WHEN jsonb_array_length(in_txids) > 0 THEN in_txids ELSE txids END,
                 error = COALESCE(in_error, error),
                 updated_at = now()
             FROM input
             WHERE id = in_id AND status = in_previous
             RETURNING {COLUMNS}, in_previous, in_event_id, in_entry_id, in_entry_kind),
         balanced AS (
             UPDATE balances b
             SET held = b.held - s.taken, available = b.available + s.back, updated_at = now()
             FROM unnest($16::text[], $17::text[], $18::numeric[], $19::numeric[])
                  AS s(user_id, currency, taken, back)
             WHERE b.user_id = s.user_id AND b.currency = s.currency AND b.held >= s.taken
             RETURNING b.user_id),
         settled AS (
             INSERT INTO ledger_entries (id, user_id, currency, kind, amount, withdrawal_id)
             SELECT in_entry_id, user_id, currency, in_entry_kind, amount, id
             FROM moved WHERE in_entry_kind IS NOT NULL
             RETURNING id),
         outbox AS (
             INSERT INTO notification_outbox (id, withdrawal_id, payload)
             SELECT in_event_id, moved.id, {payload} FROM moved),
         jobs AS (
             DELETE FROM submission_jobs WHERE withdrawal_id = ANY($20::uuid[])),
         stored AS (
             INSERT INTO callbacks (id, verified, raw_body, foreign_id, provider_status, outcome)
             SELECT id, true, raw_body, foreign_id, provider_status, outcome
             FROM unnest($21::uuid[], $22::bytea[], $23::text[], $24::text[], $25::text[])
                  AS c(id, raw_body, foreign_id, provider_status, outcome)
             RETURNING id)
         SELECT (SELECT count(*) FROM moved) AS moved,
                (SELECT count(*) FROM balanced) AS balanced,
                (SELECT count(*) FROM settled) AS settled,
                (SELECT count(*) FROM stored) AS stored",
        payload = crate::notify::payload_sql("moved", "in_previous", "in_event_id"),
    ))
    .bind(
        moves
            .iter()
            .map(|(p, _, _)| p.current.id)
            .collect::<Vec<_>>(),
    )
    .bind(
        moves
            .iter()
            .map(|(p, _, _)| p.current.status.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        moves
            .iter()
            .map(|(_, to, _)| to.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        moves
            .iter()
            .map(|(p, _, _)| p.job.details.provider_id)
            .collect::<Vec<_>>(),
    )
    .bind(details(&|d| {
        Some(d.provider_status.clone()).filter(|s| !s.is_empty())
    }))
    .bind(
        moves
            .iter()
            .map(|(p, _, _)| p.job.details.sent.as_ref().map(|a| a.amount))
            .collect::<Vec<_>>(),
    )
    .bind(details(&|d| d.sent.as_ref().map(|a| a.currency.clone())))
    .bind(
        moves
            .iter()
            .map(|(p, _, _)| p.job.details.received.as_ref().map(|a| a.amount))
            .collect::<Vec<_>>(),
    )
    .bind(details(&|d| {
        d.received.as_ref().map(|a| a.currency.clone())
    }))
    .bind(
        moves
            .iter()
            .map(|(p, _, _)| serde_json::json!(p.job.details.fees))
            .collect::<Vec<_>>(),
    )
    .bind(
        moves
            .iter()
            .map(|(p, _, _)| serde_json::json!(p.job.details.txids))
            .collect::<Vec<_>>(),
    )
    .bind(details(&|d| d.error.clone()))
    .bind(moves.iter().map(|_| Uuid::now_v7()).collect::<Vec<_>>())
    .bind(moves.iter().map(|_| Uuid::now_v7()).collect::<Vec<_>>())
    .bind(
        moves
            .iter()
            .map(|(_, _, effect)| match effect {
                Effect::None => None,
                Effect::Debit => Some("debit"),
                Effect::Release => Some("release"),
            })
            .collect::<Vec<_>>(),
    )
    .bind(balances.keys().map(|(u, _)| *u).collect::<Vec<_>>())
    .bind(balances.keys().map(|(_, c)| *c).collect::<Vec<_>>())
    .bind(balances.values().map(|(out, _)| *out).collect::<Vec<_>>())
    .bind(balances.values().map(|(_, back)| *back).collect::<Vec<_>>())
    // Every settled callback's withdrawal is past pending: a job still queued or parked for
    // it has nothing left to send (as the single path's `queue::discard`).
    .bind(plans.iter().map(|p| p.current.id).collect::<Vec<_>>())
    .bind(plans.iter().map(|_| Uuid::now_v7()).collect::<Vec<_>>())
    .bind(plans.iter().map(|p| p.job.body.clone()).collect::<Vec<_>>())
    .bind(
        plans
            .iter()
            .map(|p| p.job.foreign_id.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        plans
            .iter()
            .map(|p| p.job.details.provider_status.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        plans
            .iter()
            .map(|p| match p.simple {
                Simple::Move { .. } => CallbackOutcome::Applied.label(),
                Simple::Duplicate => CallbackOutcome::Duplicate.label(),
            })
            .collect::<Vec<_>>(),
    )
    .fetch_one(&mut *conn)
    .await?;
    let counts: [(i64, usize, &str); 4] = [
        (row.try_get("moved")?, moves.len(), "withdrawals moved"),
        (row.try_get("balanced")?, balances.len(), "balances settled"),
        (row.try_get("settled")?, entries, "ledger entries"),
        (row.try_get("stored")?, plans.len(), "callbacks stored"),
    ];
    for (done, expected, what) in counts {
        if done != expected as i64 {
            // Cannot happen under the batch's locks; if it does, nothing of this batch stays.
            return Err(sqlx::Error::Protocol(format!(
                "settle batch: {done} of {expected} {what}"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coinspaid::wire::CurrencyAmount;

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

    fn moved(to: WithdrawalStatus, effect: Effect) -> Option<Simple> {
        Some(Simple::Move { to, effect })
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
            Some(Simple::Duplicate)
        );
        assert_eq!(
            simple(Some(&withdrawal(Confirmed)), &report("pending")),
            Some(Simple::Duplicate)
        );
        assert_eq!(
            simple(Some(&withdrawal(Cancelled)), &report("declined")),
            Some(Simple::Duplicate)
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
