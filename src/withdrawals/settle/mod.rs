//! Settling withdrawals: the one write of a decided status change and of the money it moves,
//! for any number of withdrawals, in one statement.
//!
//! A caller locks the withdrawals (`FOR UPDATE`, in id order when there are several), decides
//! each one purely through the state machine (`crate::domain`: a provider report's
//! `Transition`, a person's `Decision`) and hands the decisions to [`write`]: one at a time
//! for a callback applied alone, a look-up's answer, a submission's answer and an operator's
//! decision (`transition`), many for a settle batch (`settle_batch`). Its one statement writes
//! - each withdrawal's status and what is recorded with it (CoinsPaid's fields, an error, an
//!   anomaly);
//! - the balances, aggregated per user and currency, guarded by `held >= amount`;
//! - the debit or release entries, at most one per withdrawal (the ledger's settlement index);
//! - a notification for each change of status, its payload from `notify::status_change_query!`;
//! - the submission job of every withdrawal it leaves past `pending`: nothing is left to send;
//! - the callbacks that reported the settlements, with their outcomes, when a batch stores them.
//!
//! A withdrawal's status is written here and by one other statement, CoinsPaid's acceptance
//! (`pending -> processing`, `submit::accept_statement`); its row is inserted by the creates.
//!
//! Locks: the caller's withdrawals first, then the balances. When more than one balance moves,
//! their rows are locked in (user, currency) order by a statement of their own before the
//! write; the creates lock balances in the same order, so none of them deadlock.

pub mod batch;
pub mod callbacks;
pub mod matching;
pub mod outcome;
pub mod transition;

use std::collections::{BTreeMap, HashSet};

use rust_decimal::Decimal;
use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::coinspaid::callback::ProviderDetails;
use crate::domain::{Effect, Transition, WithdrawalStatus};
use crate::error::Error;
use crate::withdrawals::queue::RemovedJob;
use crate::withdrawals::store::{withdrawal_from_record, Withdrawal};

/// One decided change to a withdrawal its caller holds locked.
#[derive(Debug, Clone, Copy)]
pub struct Settlement<'a> {
    /// The withdrawal as it was locked.
    pub current: &'a Withdrawal,
    pub change: Change<'a>,
    /// The callback that reported it, stored in the same statement (a settle batch's; a
    /// callback applied alone is stored by its own transaction).
    pub callback: Option<Callback<'a>>,
}

/// What a settlement writes on its withdrawal.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Change<'a> {
    /// A repeat: nothing.
    Nothing,
    Write {
        /// The withdrawal's own status for a note or an anomaly.
        to: WithdrawalStatus,
        effect: Effect,
        /// CoinsPaid's word, verbatim.
        provider_status: Option<&'a str>,
        /// What CoinsPaid reported with it: its id, amounts, fees, txids.
        report: Option<&'a ProviderDetails>,
        /// The withdrawal's `error`, shown to the website.
        error: Option<&'a str>,
        /// Why a person should look.
        anomaly: Option<&'a str>,
    },
}

impl<'a> Change<'a> {
    /// What a provider report's `transition` writes on a withdrawal in `status`: a move or a
    /// note records the report; an anomaly records only CoinsPaid's word and `anomaly` (the
    /// reason, given for an anomaly); a repeat, nothing. Pure.
    pub fn of_report(
        status: WithdrawalStatus,
        transition: Transition,
        details: &'a ProviderDetails,
        anomaly: Option<&'a str>,
    ) -> Self {
        let provider_status = Some(details.provider_status.as_str()).filter(|s| !s.is_empty());
        let recorded = |to, effect| Change::Write {
            to,
            effect,
            provider_status,
            report: Some(details),
            error: details.error.as_deref(),
            anomaly: None,
        };
        match transition {
            Transition::Move { to, effect } => recorded(to, effect),
            Transition::Note => recorded(status, Effect::None),
            Transition::Anomaly => Change::Write {
                to: status,
                effect: Effect::None,
                provider_status,
                report: None,
                error: None,
                anomaly,
            },
            Transition::Duplicate => Change::Nothing,
        }
    }

    /// A person's decision: the status, its money and `error`; nothing of CoinsPaid's.
    pub fn of_decision(to: WithdrawalStatus, effect: Effect, error: Option<&'a str>) -> Self {
        Change::Write {
            to,
            effect,
            provider_status: None,
            report: None,
            error,
            anomaly: None,
        }
    }
}

/// A verified callback, stored as `callbacks` row with its outcome.
#[derive(Debug, Clone, Copy)]
pub struct Callback<'a> {
    pub body: &'a [u8],
    pub foreign_id: &'a str,
    pub provider_status: &'a str,
    pub outcome: &'static str,
}

/// What [`write`] left of one settlement.
#[derive(Debug)]
pub struct Written {
    /// The withdrawal as it is now, inside the caller's transaction.
    pub withdrawal: Withdrawal,
    /// The submission job removed with it.
    pub job: RemovedJob,
}

impl<'a> Settlement<'a> {
    fn status_after(&self) -> WithdrawalStatus {
        match self.change {
            Change::Nothing => self.current.status,
            Change::Write { to, .. } => to,
        }
    }

    /// The money it moves; `None` when nothing is written on the withdrawal.
    fn effect(&self) -> Option<Effect> {
        match self.change {
            Change::Nothing => None,
            Change::Write { effect, .. } => Some(effect),
        }
    }

    fn report(&self) -> Option<&'a ProviderDetails> {
        match self.change {
            Change::Write { report, .. } => report,
            Change::Nothing => None,
        }
    }
}

/// One value per settlement, for one of `write`'s array parameters.
fn each<'s, 'a: 's, T>(
    settlements: &'s [Settlement<'a>],
    f: impl Fn(&'s Settlement<'a>) -> T,
) -> Vec<T> {
    settlements.iter().map(f).collect()
}

/// Per (user, currency): what leaves `held`, and what of it returns to `available`. Pure.
fn balance_changes<'s>(
    settlements: &'s [Settlement<'_>],
) -> BTreeMap<(&'s str, &'s str), (Decimal, Decimal)> {
    let mut balances: BTreeMap<(&str, &str), (Decimal, Decimal)> = BTreeMap::new();
    for s in settlements {
        let w = s.current;
        let returned = match s.effect() {
            None | Some(Effect::None) => continue,
            Some(Effect::Debit) => Decimal::ZERO,
            Some(Effect::Release) => w.amount,
        };
        let entry = balances
            .entry((w.user_id.as_str(), w.currency.as_str()))
            .or_default();
        entry.0 += w.amount;
        entry.1 += returned;
    }
    balances
}

fn entry_kind(effect: Option<Effect>) -> Option<&'static str> {
    match effect? {
        Effect::None => None,
        Effect::Debit => Some("debit"),
        Effect::Release => Some("release"),
    }
}

/// Writes `settlements`, at most one per withdrawal, each locked by the caller in the
/// transaction `conn` belongs to; returns each withdrawal as it now is, in order. One
/// statement, after one locking the balances when more than one moves. The caller commits.
///
/// Fails, and its transaction must then be rolled back, when a balance cannot cover its
/// settlement ([`Error::Uncovered`]) or a withdrawal is no longer in the status it was
/// locked in ([`Error::Inconsistent`]); a second debit or release of one withdrawal fails on
/// the ledger's settlement index ([`Error::SettledTwice`]), so money moves at most once
/// however often a settlement is decided.
pub async fn write(
    conn: &mut PgConnection,
    settlements: &[Settlement<'_>],
) -> Result<Vec<Written>, Error> {
    let mut seen = HashSet::new();
    if !settlements.iter().all(|s| seen.insert(s.current.id)) {
        return Err(Error::Inconsistent(
            "a withdrawal settled twice in one statement".into(),
        ));
    }
    let balances = balance_changes(settlements);
    if balances.len() > 1 {
        let (users, currencies): (Vec<&str>, Vec<&str>) = balances.keys().copied().unzip();
        crate::ledger::lock_balances(&mut *conn, &users, &currencies).await?;
    }
    let callbacks: Vec<Callback> = settlements.iter().filter_map(|s| s.callback).collect();
    let ids = each(settlements, |s| s.current.id);
    let writes = each(settlements, |s| s.effect().is_some());
    let previous = each(settlements, |s| s.current.status.as_str());
    let statuses = each(settlements, |s| s.status_after().as_str());
    let provider_ids = each(settlements, |s| s.report().and_then(|d| d.provider_id));
    let provider_statuses = each(settlements, |s| match s.change {
        Change::Write {
            provider_status, ..
        } => provider_status,
        Change::Nothing => None,
    });
    let sent_amounts = each(settlements, |s| {
        s.report().and_then(|d| d.sent.as_ref()).map(|a| a.amount)
    });
    let sent_currencies = each(settlements, |s| {
        s.report()
            .and_then(|d| d.sent.as_ref())
            .map(|a| a.currency.as_str())
    });
    let received_amounts = each(settlements, |s| {
        s.report()
            .and_then(|d| d.received.as_ref())
            .map(|a| a.amount)
    });
    let received_currencies = each(settlements, |s| {
        s.report()
            .and_then(|d| d.received.as_ref())
            .map(|a| a.currency.as_str())
    });
    let fees = each(settlements, |s| {
        s.report().map_or_else(|| json!([]), |d| json!(d.fees))
    });
    let txids = each(settlements, |s| {
        s.report().map_or_else(|| json!([]), |d| json!(d.txids))
    });
    let errors = each(settlements, |s| match s.change {
        Change::Write { error, .. } => error,
        Change::Nothing => None,
    });
    let anomalies = each(settlements, |s| match s.change {
        Change::Write { anomaly, .. } => anomaly,
        Change::Nothing => None,
    });
    let event_ids = each(settlements, |_| Uuid::now_v7());
    let entry_kinds = each(settlements, |s| entry_kind(s.effect()));
    let entry_ids = each(settlements, |_| Uuid::now_v7());
    let (balance_users, balance_currencies): (Vec<&str>, Vec<&str>) =
        balances.keys().copied().unzip();
    let taken: Vec<Decimal> = balances.values().map(|(out, _)| *out).collect();
    let back: Vec<Decimal> = balances.values().map(|(_, back)| *back).collect();
    let callback_ids: Vec<Uuid> = callbacks.iter().map(|_| Uuid::now_v7()).collect();
    let callback_bodies: Vec<&[u8]> = callbacks.iter().map(|c| c.body).collect();
    let callback_foreign_ids: Vec<&str> = callbacks.iter().map(|c| c.foreign_id).collect();
    let callback_statuses: Vec<&str> = callbacks.iter().map(|c| c.provider_status).collect();
    let callback_outcomes: Vec<&str> = callbacks.iter().map(|c| c.outcome).collect();
    let rows = crate::notify::status_change_query!(
        optional,
        query!(),
        ["WITH input AS (
             SELECT * FROM unnest($1::uuid[], $2::bool[], $3::text[], $4::text[], $5::int8[],
                                  $6::text[], $7::numeric[], $8::text[], $9::numeric[],
                                  $10::text[], $11::jsonb[], $12::jsonb[], $13::text[],
                                  $14::text[], $15::uuid[], $16::text[], $17::uuid[])
                 WITH ORDINALITY
                 AS i(in_id, in_write, in_previous, in_status, in_provider_id,
                      in_provider_status, in_sent_amount, in_sent_currency, in_received_amount,
                      in_received_currency, in_fees, in_txids, in_error, in_anomaly,
                      in_event_id, in_entry_kind, in_entry_id, in_ord)),
         moved AS (
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
                 anomaly = COALESCE(in_anomaly, anomaly),
                 -- Each one counts, a repeat too: one after an acknowledgement needs a person again.
                 anomaly_seq = anomaly_seq + CASE WHEN in_anomaly IS NULL THEN 0 ELSE 1 END,
                 updated_at = now()
             FROM input
             WHERE id = in_id AND in_write AND status = in_previous
             RETURNING withdrawals.*, in_previous AS previous_status, in_event_id AS event_id,
                       in_entry_id, in_entry_kind),
         balanced AS (
             UPDATE balances b
             SET held = b.held - s.taken, available = b.available + s.back, updated_at = now()
             FROM unnest($18::text[], $19::text[], $20::numeric[], $21::numeric[])
                  WITH ORDINALITY AS s(user_id, currency, taken, back, ord)
             WHERE b.user_id = s.user_id AND b.currency = s.currency AND b.held >= s.taken
             RETURNING s.ord),
         settled AS (
             INSERT INTO ledger_entries (id, user_id, currency, kind, amount, withdrawal_id)
             SELECT in_entry_id, user_id, currency, in_entry_kind, amount, id
             FROM moved WHERE in_entry_kind IS NOT NULL
             RETURNING id),
         outbox AS (
             INSERT INTO notification_outbox (id, withdrawal_id, payload)
             SELECT moved.event_id, moved.id, "],
        [" FROM moved
             WHERE moved.status <> moved.previous_status),
         jobs AS (
             DELETE FROM submission_jobs j USING input
             WHERE j.withdrawal_id = in_id AND in_status <> $22
             RETURNING j.withdrawal_id, j.lease_id),
         stored AS (
             INSERT INTO callbacks (id, verified, raw_body, foreign_id, provider_status, outcome)
             SELECT id, true, raw_body, foreign_id, provider_status, outcome
             FROM unnest($23::uuid[], $24::bytea[], $25::text[], $26::text[], $27::text[])
                  AS c(id, raw_body, foreign_id, provider_status, outcome)
             RETURNING id)
         SELECT moved.id IS NOT NULL AS \"written!\",
                jobs.withdrawal_id IS NOT NULL AS \"had_job!\", jobs.lease_id AS job_lease,
                ARRAY(SELECT ord FROM balanced) AS \"balanced!\",
                (SELECT count(*) FROM settled) AS \"settled!\",
                (SELECT count(*) FROM stored) AS \"stored!\", "],
        [" FROM input
         LEFT JOIN moved ON moved.id = input.in_id
         LEFT JOIN jobs ON jobs.withdrawal_id = input.in_id
         ORDER BY input.in_ord"],
        &ids,
        &writes,
        &previous as &[&str],
        &statuses as &[&str],
        &provider_ids as &[Option<i64>],
        &provider_statuses as &[Option<&str>],
        &sent_amounts as &[Option<Decimal>],
        &sent_currencies as &[Option<&str>],
        &received_amounts as &[Option<Decimal>],
        &received_currencies as &[Option<&str>],
        &fees,
        &txids,
        &errors as &[Option<&str>],
        &anomalies as &[Option<&str>],
        &event_ids,
        &entry_kinds as &[Option<&str>],
        &entry_ids,
        &balance_users as &[&str],
        &balance_currencies as &[&str],
        &taken,
        &back,
        WithdrawalStatus::Pending.as_str(),
        &callback_ids,
        &callback_bodies as &[&[u8]],
        &callback_foreign_ids as &[&str],
        &callback_statuses as &[&str],
        &callback_outcomes as &[&str]
    )
    .fetch_all(&mut *conn)
    .await?;

    let Some(first) = rows.first() else {
        return Ok(Vec::new());
    };
    // The first balance (in order) that did not move, if one did not.
    let uncovered = (1..)
        .zip(&balances)
        .find(|(ord, _)| !first.balanced.contains(ord));
    if let Some((_, (&(user_id, currency), &(taken, back)))) = uncovered {
        return Err(Error::Uncovered {
            user_id: user_id.to_owned(),
            currency: currency.to_owned(),
            kind: match back {
                b if b.is_zero() => "debit",
                b if b == taken => "release",
                _ => "settlement",
            },
            amount: taken,
        });
    }
    let written = rows.iter().filter(|row| row.written).count();
    let counts: [(i64, usize, &str); 3] = [
        (
            written as i64,
            settlements.iter().filter(|s| s.effect().is_some()).count(),
            "withdrawals written",
        ),
        (
            first.settled,
            settlements
                .iter()
                .filter(|s| entry_kind(s.effect()).is_some())
                .count(),
            "ledger entries",
        ),
        (first.stored, callbacks.len(), "callbacks stored"),
    ];
    for (done, expected, what) in counts {
        if done != expected as i64 {
            // Cannot happen under the caller's locks; if it does, nothing of it may stay.
            return Err(Error::Inconsistent(format!(
                "settlement: {done} of {expected} {what}"
            )));
        }
    }
    settlements
        .iter()
        .zip(rows)
        .map(|(s, row)| {
            let (written, had_job, job_lease) = (row.written, row.had_job, row.job_lease);
            let withdrawal = match withdrawal_from_record!(optional row) {
                Some(withdrawal) if written => withdrawal,
                None if !written => s.current.clone(),
                _ => {
                    return Err(Error::Inconsistent(
                        "settlement: a row written but not returned".into(),
                    ))
                }
            };
            Ok(Written {
                withdrawal,
                job: had_job.then_some(job_lease),
            })
        })
        .collect()
}

/// [`write`] for one settlement.
pub async fn write_one(
    conn: &mut PgConnection,
    settlement: Settlement<'_>,
) -> Result<Written, Error> {
    write(conn, &[settlement])
        .await?
        .pop()
        .ok_or_else(|| Error::Inconsistent("settlement: no row written".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::withdrawal::ProviderStatus;
    use crate::domain::ProviderEvent;

    fn withdrawal(user: &str, amount: &str, status: WithdrawalStatus) -> Withdrawal {
        Withdrawal {
            id: Uuid::now_v7(),
            user_id: crate::domain::UserId::parse(user).unwrap(),
            amount: amount.parse().unwrap(),
            status,
            ..super::matching::tests::withdrawal(None)
        }
    }

    fn report(word: &str) -> ProviderDetails {
        ProviderDetails {
            provider_id: Some(7),
            provider_status: word.into(),
            txids: vec!["tx1".into()],
            ..ProviderDetails::default()
        }
    }

    fn change_of(status: WithdrawalStatus, details: &ProviderDetails) -> Change<'_> {
        let transition = status.apply(&ProviderEvent::Reported(details.status()));
        Change::of_report(status, transition, details, Some("why"))
    }

    #[test]
    fn a_move_or_a_note_records_the_report_an_anomaly_only_the_word_a_repeat_nothing() {
        use WithdrawalStatus::*;
        let confirmed = report("confirmed");
        assert_eq!(
            change_of(Processing, &confirmed),
            Change::Write {
                to: Confirmed,
                effect: Effect::Debit,
                provider_status: Some("confirmed"),
                report: Some(&confirmed),
                error: None,
                anomaly: None,
            }
        );
        let progress = report("pending");
        assert_eq!(progress.status(), ProviderStatus::InProgress);
        assert_eq!(
            change_of(Processing, &progress),
            Change::Write {
                to: Processing,
                effect: Effect::None,
                provider_status: Some("pending"),
                report: Some(&progress),
                error: None,
                anomaly: None,
            }
        );
        let cancelled = report("cancelled");
        assert_eq!(
            change_of(Confirmed, &cancelled),
            Change::Write {
                to: Confirmed,
                effect: Effect::None,
                provider_status: Some("cancelled"),
                report: None,
                error: None,
                anomaly: Some("why"),
            }
        );
        assert_eq!(change_of(Confirmed, &confirmed), Change::Nothing);
    }

    #[test]
    fn balances_move_once_per_user_and_currency_for_what_the_settlements_settle() {
        use WithdrawalStatus::*;
        let debited = withdrawal("u1", "10.00", Processing);
        let released = withdrawal("u1", "2.50", Processing);
        let other = withdrawal("u2", "7.00", Processing);
        let moved_only = withdrawal("u3", "1.00", Pending);
        let repeated = withdrawal("u3", "1.00", Confirmed);
        let settlement = |current, to, effect| Settlement {
            current,
            change: Change::of_decision(to, effect, None),
            callback: None,
        };
        let settlements = [
            settlement(&debited, Confirmed, Effect::Debit),
            settlement(&released, Cancelled, Effect::Release),
            settlement(&other, Confirmed, Effect::Debit),
            settlement(&moved_only, Processing, Effect::None),
            Settlement {
                current: &repeated,
                change: Change::Nothing,
                callback: None,
            },
        ];
        let dec = |s: &str| s.parse::<Decimal>().unwrap();
        assert_eq!(
            balance_changes(&settlements)
                .into_iter()
                .collect::<Vec<_>>(),
            [
                (("u1", "EUR"), (dec("12.50"), dec("2.50"))),
                (("u2", "EUR"), (dec("7.00"), Decimal::ZERO)),
            ]
        );
    }
}
