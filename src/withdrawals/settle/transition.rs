//! Applying a provider report or a person's decision to one locked withdrawal: decided by the
//! state machine (`crate::domain`), written by `settle::write` as a settlement of one, and
//! logged and counted here.
//!
//! Its callers: a callback applied alone (`callbacks`), a look-up's answer (`reconcile`,
//! `submit`), a submission's answer (`submit`, where the acceptance statement does not take
//! it) and an operator's decision (`operators::actions`). A settle batch decides through the
//! same state machine and writes through the same `settle::write`. A report that does not
//! match its withdrawal moves nothing: [`record_anomaly`] only notes why a person should look.

use sqlx::PgConnection;
use tracing::Instrument;

use crate::coinspaid::callback::ProviderDetails;
use crate::domain::withdrawal::ProviderStatus;
use crate::domain::{Effect, ProviderEvent, Transition};
use crate::error::Error;
use crate::withdrawals::queue::RemovedJob;
use crate::withdrawals::settle::matching;
use crate::withdrawals::settle::{self, Change, Settlement};
use crate::withdrawals::store::{withdrawal_query, Withdrawal};

/// What applying an event did.
#[derive(Debug)]
pub struct Applied {
    pub transition: Transition,
    /// The withdrawal as it is now, inside the caller's transaction.
    pub withdrawal: Withdrawal,
    /// Why a person should look, when they should: the report did not match, contradicted a
    /// terminal status, or used a status word CoinsPaid does not document.
    pub anomaly: Option<String>,
    /// The submission job the settlement removed (a withdrawal past `pending` has none).
    pub job: RemovedJob,
}

/// Applies a provider *report* (a callback or a look-up answer) to `current`, locked by the
/// caller: first checked against the withdrawal (a report that does not match moves nothing
/// and is recorded as an anomaly), then through the state machine. The caller commits.
pub async fn apply_report(
    conn: &mut PgConnection,
    current: Withdrawal,
    details: &ProviderDetails,
) -> Result<Applied, Error> {
    // Every report (a callback, a look-up) passes here before its text is stored, logged or
    // notified; CoinsPaid's free text may quote the request's travel-rule data.
    let scrubbed = if details.has_free_text() {
        crate::withdrawals::travel_rule::redactor(&mut *conn, current.id)
            .await?
            .map(|r| details.scrubbed(&r))
    } else {
        None
    };
    let details = scrubbed.as_ref().unwrap_or(details);
    let mismatches = matching::mismatches(&current, details);
    if !mismatches.is_empty() {
        let reason = format!(
            "CoinsPaid reported {:?} for this foreign_id, but {}",
            details.provider_status,
            mismatches.join("; ")
        );
        tracing::error!(
            withdrawal_id = %current.id,
            foreign_id = %current.foreign_id,
            provider_status = %details.provider_status,
            %reason,
            "provider report does not match the withdrawal; no money moved"
        );
        metrics::counter!("payoutd_withdrawal_anomalies_total", "kind" => "mismatch").increment(1);
        let withdrawal = record_anomaly(conn, current.id, &reason).await?;
        return Ok(Applied {
            transition: Transition::Anomaly,
            withdrawal,
            anomaly: Some(reason),
            job: None,
        });
    }
    let status = details.status();
    let mut applied = apply(conn, current, ProviderEvent::Reported(status), details).await?;
    if status == ProviderStatus::Unrecognized && applied.anomaly.is_none() {
        let reason = format!(
            "CoinsPaid reported the undocumented status {:?}; no money moved, a look-up follows",
            details.provider_status
        );
        tracing::error!(
            withdrawal_id = %applied.withdrawal.id,
            foreign_id = %applied.withdrawal.foreign_id,
            provider_status = %details.provider_status,
            "undocumented provider status; recorded, no money moved, looked up again soon"
        );
        metrics::counter!("payoutd_withdrawal_anomalies_total", "kind" => "unrecognized_status")
            .increment(1);
        applied.withdrawal = record_anomaly(conn, applied.withdrawal.id, &reason).await?;
        applied.anomaly = Some(reason);
    }
    Ok(applied)
}

/// Notes why a person should look at the withdrawal, and asks the reconciler to look it up at
/// CoinsPaid in its next round. Changes no status and no money.
pub async fn record_anomaly(
    conn: &mut PgConnection,
    id: uuid::Uuid,
    reason: &str,
) -> Result<Withdrawal, Error> {
    Ok(withdrawal_query!(
        query_as!(Withdrawal,),
        [
            "UPDATE withdrawals SET anomaly = $2, anomaly_seq = anomaly_seq + 1,
              reconcile_after = now(), updated_at = now()
          WHERE id = $1 RETURNING "
        ],
        [""],
        id,
        reason
    )
    .fetch_one(conn)
    .await?)
}

/// Applies `event` (with what the provider said alongside it) to `current`, which the caller
/// locked with `FOR UPDATE` in the transaction `conn` belongs to: decided by the state
/// machine, written by `settle::write`. The caller commits.
///
/// Money moves only on a `Transition::Move` whose effect is a debit or release, and the ledger's
/// settlement index guarantees that happens at most once per withdrawal.
pub async fn apply(
    conn: &mut PgConnection,
    current: Withdrawal,
    event: ProviderEvent,
    details: &ProviderDetails,
) -> Result<Applied, Error> {
    let span = tracing::info_span!(
        "withdrawal.transition",
        withdrawal_id = %current.id,
        foreign_id = %current.foreign_id,
        user_id = %current.user_id,
    );
    // Instrumented, not entered: a guard held across an await leaves lines after it
    // without the span (or in another task's).
    apply_in_span(conn, current, event, details)
        .instrument(span)
        .await
}

async fn apply_in_span(
    conn: &mut PgConnection,
    current: Withdrawal,
    event: ProviderEvent,
    details: &ProviderDetails,
) -> Result<Applied, Error> {
    let transition = current.status.apply(&event);
    let anomaly = matches!(transition, Transition::Anomaly).then(|| {
        format!(
            "CoinsPaid reported {:?} ({event:?}) for a withdrawal already {}; no money moved",
            details.provider_status, current.status
        )
    });
    let settlement = Settlement {
        current: &current,
        change: Change::of_report(current.status, transition, details, anomaly.as_deref()),
        callback: None,
    };
    let written = settle::write_one(conn, settlement).await?;
    match transition {
        Transition::Move { to, effect } => report_move(&current, to, effect, details),
        Transition::Note => {}
        Transition::Anomaly => {
            tracing::error!(
                status = %current.status,
                provider_status = %details.provider_status,
                event = ?event,
                "provider report contradicts the withdrawal's status; no money moved"
            );
            metrics::counter!("payoutd_withdrawal_anomalies_total", "kind" => "contradiction")
                .increment(1);
        }
        Transition::Duplicate => {
            tracing::debug!(status = %current.status, event = ?event, "repeated or stale provider report ignored");
        }
    }
    Ok(Applied {
        transition,
        withdrawal: written.withdrawal,
        anomaly,
        job: written.job,
    })
}

/// The log lines and metric of a provider report's move, in the caller's span: here, and for
/// the moves a settle batch writes (`settle_batch`).
pub(super) fn report_move(
    current: &Withdrawal,
    to: crate::domain::WithdrawalStatus,
    effect: Effect,
    details: &ProviderDetails,
) {
    if effect != Effect::None {
        tracing::info!(effect = ?effect, amount = %current.amount, currency = %current.currency, "hold settled");
    }
    tracing::info!(from = %current.status, to = %to, provider_status = %details.provider_status, "withdrawal status changed");
    metrics::counter!("payoutd_withdrawal_transitions_total",
        "from" => current.status.as_str(), "to" => to.as_str())
    .increment(1);
}

/// Applies a person's `decision` to `current`, which the caller locked with `FOR UPDATE`: the
/// same row lock and the same write (`settle::write`) as a provider report, so a decision
/// racing a callback (on any replica) settles the hold once, and the loser finds the status
/// it needs gone. `Ok(None)`: the decision may not be made in the current status; nothing
/// changed. `error`, when given, becomes the withdrawal's `error` (shown to the website). A
/// withdrawal the decision takes past `pending` loses its submission job. The caller commits.
pub async fn decide(
    conn: &mut PgConnection,
    current: Withdrawal,
    decision: crate::domain::withdrawal::Decision,
    error: Option<&str>,
) -> Result<Option<Withdrawal>, Error> {
    let Some((to, effect)) = current.status.decide(decision) else {
        return Ok(None);
    };
    let settlement = Settlement {
        current: &current,
        change: Change::of_decision(to, effect, error),
        callback: None,
    };
    let written = settle::write_one(conn, settlement).await?;
    tracing::info!(
        withdrawal_id = %current.id,
        foreign_id = %current.foreign_id,
        from = %current.status,
        to = %to,
        decision = decision.as_str(),
        "withdrawal status changed by a person's decision"
    );
    metrics::counter!("payoutd_withdrawal_transitions_total",
        "from" => current.status.as_str(), "to" => to.as_str())
    .increment(1);
    Ok(Some(written.withdrawal))
}
