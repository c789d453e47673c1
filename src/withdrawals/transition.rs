//! Applying a provider event or a person's decision to one locked withdrawal: the general
//! path for a status change and for settling its hold (through `ledger::settle`).
//!
//! It is not the only code that writes `withdrawals`. Status also changes in one multi-row
//! statement in `settle_batch` (callbacks that simply settle or repeat, written as [`apply`]
//! writes them; `tests/api/settle_batch.rs` compares the rows) and in `submit`'s acceptance
//! statement (`pending -> processing`; `tests/api/fewer_commits.rs`): both exist so that many
//! requests share one commit (BENCHMARKS.md), and both decide through the same state machine
//! first. Rows are inserted by the creates, `request` (alone) and `group` (batched). Other
//! columns are written where they are decided: `queue` (`outcome_unknown`, `resend_after`),
//! `reconcile` (`reconcile_after`, `missing_since`), `travel_rule` (scrubbed `error` and
//! `anomaly`) and `operators::actions` (an anomaly's acknowledgement).

use sqlx::types::Json;
use sqlx::PgConnection;
use tracing::Instrument;

use super::matching;
use super::store::{Withdrawal, COLUMNS};
use crate::coinspaid::callback::ProviderDetails;
use crate::domain::withdrawal::ProviderStatus;
use crate::domain::{Effect, ProviderEvent, Transition};
use crate::ledger::{self, LedgerError};

/// What applying an event did.
#[derive(Debug)]
pub struct Applied {
    pub transition: Transition,
    /// The withdrawal as it is now, inside the caller's transaction.
    pub withdrawal: Withdrawal,
    /// Why a person should look, when they should: the report did not match, contradicted a
    /// terminal status, or used a status word CoinsPaid does not document.
    pub anomaly: Option<String>,
}

/// Applies a provider *report* (a callback or a look-up answer) to `current`, locked by the
/// caller: first checked against the withdrawal (a report that does not match moves nothing
/// and is recorded as an anomaly), then through the state machine. The caller commits.
pub async fn apply_report(
    conn: &mut PgConnection,
    current: Withdrawal,
    details: &ProviderDetails,
) -> Result<Applied, LedgerError> {
    // Every report (a callback, a look-up) passes here before its text is stored, logged or
    // notified; CoinsPaid's free text may quote the request's travel-rule data.
    let scrubbed = if details.has_free_text() {
        super::travel_rule::redactor(&mut *conn, current.id)
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
) -> Result<Withdrawal, LedgerError> {
    Ok(sqlx::query_as(&format!(
        "UPDATE withdrawals SET anomaly = $2, anomaly_seq = anomaly_seq + 1,
             reconcile_after = now(), updated_at = now()
         WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(reason)
    .fetch_one(conn)
    .await?)
}

/// Applies `event` (with what the provider said alongside it) to `current`, which the caller
/// locked with `FOR UPDATE` in the transaction `conn` belongs to. The caller commits.
///
/// Money moves only on a `Transition::Move` whose effect is a debit or release, and the ledger's
/// settlement index guarantees that happens at most once per withdrawal.
pub async fn apply(
    conn: &mut PgConnection,
    current: Withdrawal,
    event: ProviderEvent,
    details: &ProviderDetails,
) -> Result<Applied, LedgerError> {
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
) -> Result<Applied, LedgerError> {
    let transition = current.status.apply(&event);
    let new_status = match transition {
        Transition::Move { to, effect } => {
            ledger::settle(
                &mut *conn,
                &current.user_id,
                &current.currency,
                current.amount,
                current.id,
                effect,
            )
            .await?;
            report_move(&current, to, effect, details);
            to
        }
        Transition::Note => current.status,
        Transition::Anomaly => {
            tracing::error!(
                status = %current.status,
                provider_status = %details.provider_status,
                event = ?event,
                "provider report contradicts the withdrawal's status; no money moved"
            );
            metrics::counter!("payoutd_withdrawal_anomalies_total", "kind" => "contradiction")
                .increment(1);
            current.status
        }
        Transition::Duplicate => {
            tracing::debug!(status = %current.status, event = ?event, "repeated or stale provider report ignored");
            return Ok(Applied {
                transition,
                withdrawal: current,
                anomaly: None,
            });
        }
    };
    let anomaly = matches!(transition, Transition::Anomaly).then(|| {
        format!(
            "CoinsPaid reported {:?} ({event:?}) for a withdrawal already {}; no money moved",
            details.provider_status, current.status
        )
    });
    // An anomaly only records the provider's word, so an operator sees it on the withdrawal.
    let record_all = !matches!(transition, Transition::Anomaly);
    let updated: Withdrawal = sqlx::query_as(&format!(
        "UPDATE withdrawals SET
             status = $2,
             provider_id = COALESCE(provider_id, $3),
             provider_status = COALESCE($4, provider_status),
             sent_amount = COALESCE($5, sent_amount),
             sent_currency = COALESCE($6, sent_currency),
             received_amount = COALESCE($7, received_amount),
             received_currency = COALESCE($8, received_currency),
             fees = CASE WHEN jsonb_array_length($9) > 0 THEN $9 ELSE fees END,
             txids = CASE WHEN jsonb_array_length($10) > 0 THEN $10 ELSE txids END,
             error = COALESCE($11, error),
             anomaly = COALESCE($12, anomaly),
             -- Each one counts, a repeat too: one after an acknowledgement needs a person again.
             anomaly_seq = anomaly_seq + CASE WHEN $12 IS NULL THEN 0 ELSE 1 END,
             updated_at = now()
         WHERE id = $1
         RETURNING {COLUMNS}"
    ))
    .bind(current.id)
    .bind(new_status.as_str())
    .bind(details.provider_id.filter(|_| record_all))
    .bind(Some(details.provider_status.as_str()).filter(|s| !s.is_empty()))
    .bind(
        details
            .sent
            .as_ref()
            .filter(|_| record_all)
            .map(|a| a.amount),
    )
    .bind(
        details
            .sent
            .as_ref()
            .filter(|_| record_all)
            .map(|a| a.currency.clone()),
    )
    .bind(
        details
            .received
            .as_ref()
            .filter(|_| record_all)
            .map(|a| a.amount),
    )
    .bind(
        details
            .received
            .as_ref()
            .filter(|_| record_all)
            .map(|a| a.currency.clone()),
    )
    .bind(Json(if record_all {
        details.fees.clone()
    } else {
        Vec::new()
    }))
    .bind(Json(if record_all {
        details.txids.clone()
    } else {
        Vec::new()
    }))
    .bind(details.error.clone().filter(|_| record_all))
    .bind(anomaly.as_deref())
    .fetch_one(&mut *conn)
    .await?;
    if new_status != current.status {
        crate::notify::enqueue(&mut *conn, &updated, current.status).await?;
    }
    Ok(Applied {
        transition,
        withdrawal: updated,
        anomaly,
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
/// same row lock and the same ledger guards as a provider report, so a decision racing a
/// callback (on any replica) settles the hold once, and the loser finds the status it needs
/// gone. `Ok(None)`: the decision may not be made in the current status; nothing changed.
/// `error`, when given, becomes the withdrawal's `error` (shown to the website). The caller commits.
pub async fn decide(
    conn: &mut PgConnection,
    current: Withdrawal,
    decision: crate::domain::withdrawal::Decision,
    error: Option<&str>,
) -> Result<Option<Withdrawal>, LedgerError> {
    let Some((to, effect)) = current.status.decide(decision) else {
        return Ok(None);
    };
    ledger::settle(
        &mut *conn,
        &current.user_id,
        &current.currency,
        current.amount,
        current.id,
        effect,
    )
    .await?;
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
    let updated: Withdrawal = sqlx::query_as(&format!(
        "UPDATE withdrawals SET status = $2, error = COALESCE($3, error), updated_at = now()
         WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(current.id)
    .bind(to.as_str())
    .bind(error)
    .fetch_one(&mut *conn)
    .await?;
    crate::notify::enqueue(&mut *conn, &updated, current.status).await?;
    Ok(Some(updated))
}
