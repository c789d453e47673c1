//! Applying a provider event to a locked withdrawal: the one place where a withdrawal's
//! status changes and where a hold is settled.

use sqlx::types::Json;
use sqlx::PgConnection;

use super::store::{Withdrawal, COLUMNS};
use crate::coinspaid::callback::ProviderDetails;
use crate::domain::{Effect, ProviderEvent, Transition};
use crate::ledger::{self, LedgerError};

/// What applying an event did.
#[derive(Debug)]
pub struct Applied {
    pub transition: Transition,
    /// The withdrawal as it is now, inside the caller's transaction.
    pub withdrawal: Withdrawal,
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
    let transition = current.status.apply(&event);
    let span = tracing::info_span!(
        "withdrawal.transition",
        withdrawal_id = %current.id,
        foreign_id = %current.foreign_id,
        user_id = %current.user_id,
    );
    let _entered = span.enter();
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
            if effect != Effect::None {
                tracing::info!(effect = ?effect, amount = %current.amount, currency = %current.currency, "hold settled");
            }
            tracing::info!(from = %current.status, to = %to, provider_status = %details.provider_status, "withdrawal status changed");
            metrics::counter!("payoutd_withdrawal_transitions_total",
                "from" => current.status.as_str(), "to" => to.as_str())
            .increment(1);
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
            metrics::counter!("payoutd_withdrawal_anomalies_total").increment(1);
            current.status
        }
        Transition::Duplicate => {
            tracing::debug!(status = %current.status, event = ?event, "repeated or stale provider report ignored");
            return Ok(Applied {
                transition,
                withdrawal: current,
            });
        }
    };
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
    .fetch_one(&mut *conn)
    .await?;
    if new_status != current.status {
        crate::notify::enqueue(&mut *conn, &updated, current.status).await?;
    }
    Ok(Applied {
        transition,
        withdrawal: updated,
    })
}
