//! Receiving CoinsPaid callbacks: verify the raw bytes, store what arrived, then apply it
//! through the state machine under the withdrawal's row lock.

use sqlx::PgPool;
use uuid::Uuid;

use super::store;
use super::transition;
use crate::coinspaid::callback::{self, ParsedCallback};
use crate::coinspaid::signing::VerifyError;
use crate::coinspaid::Signer;
use crate::domain::withdrawal::ProviderStatus;
use crate::domain::Transition;
use crate::ledger::LedgerError;

/// How much of an unverified callback body is stored.
const UNVERIFIED_BODY_KEPT: usize = 2048;

/// What became of one callback. Also the `outcome` column and the metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackOutcome {
    /// Moved the withdrawal (or recorded a non-final provider status).
    Applied,
    /// Repeated or stale: acknowledged, nothing moved.
    Duplicate,
    /// Not ours to act on: deposits, unknown foreign ids.
    Ignored,
    /// Contradicts a terminal status, or does not match the withdrawal it names: recorded,
    /// shown on the withdrawal, alerted, nothing moved.
    Anomaly,
    /// A status word CoinsPaid does not document: recorded, flagged, looked up, nothing moved.
    Unrecognized,
    /// Verified JSON without a readable type or status: stored, flagged, nothing moved.
    Unreadable,
    /// Signature or key missing or wrong: refused, nothing moved.
    Rejected(VerifyError),
    /// Verified but not JSON: answered 400 (CoinsPaid retries), stored.
    Invalid,
}

impl CallbackOutcome {
    pub fn label(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Duplicate => "duplicate",
            Self::Ignored => "ignored",
            Self::Anomaly => "anomaly",
            Self::Unrecognized => "unrecognized",
            Self::Unreadable => "unreadable",
            Self::Rejected(_) => "rejected",
            Self::Invalid => "invalid",
        }
    }
}

async fn store_received(
    pool: &PgPool,
    verified: bool,
    body: &[u8],
    foreign_id: Option<&str>,
    provider_status: Option<&str>,
    outcome: &str,
    detail: Option<&str>,
) -> Result<Uuid, sqlx::Error> {
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO callbacks (id, verified, raw_body, foreign_id, provider_status, outcome, detail)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(id)
    .bind(verified)
    .bind(body)
    .bind(foreign_id)
    .bind(provider_status)
    .bind(outcome)
    .bind(detail)
    .execute(pool)
    .await?;
    Ok(id)
}

/// Handles one callback end to end. The body is stored as received before it is applied
/// (its own statement, so it survives a failure to apply); applying is one transaction.
/// Idempotent: however often and in whatever order callbacks arrive, a withdrawal's hold
/// is debited or released at most once.
pub async fn receive(
    pool: &PgPool,
    signer: &Signer,
    key: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
) -> Result<CallbackOutcome, LedgerError> {
    let outcome = receive_inner(pool, signer, key, signature, body).await?;
    metrics::counter!("payoutd_callbacks_total", "outcome" => outcome.label()).increment(1);
    Ok(outcome)
}

async fn receive_inner(
    pool: &PgPool,
    signer: &Signer,
    key: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
) -> Result<CallbackOutcome, LedgerError> {
    if let Err(why) = signer.verify(key, signature, body) {
        // The start of the body is kept for forensics, never parsed or acted on; only the
        // start, so forged requests cannot fill the disk 64 KiB at a time.
        let kept = &body[..body.len().min(UNVERIFIED_BODY_KEPT)];
        store_received(
            pool,
            false,
            kept,
            None,
            None,
            "rejected",
            Some(&why.to_string()),
        )
        .await?;
        tracing::warn!(reason = %why, body_len = body.len(), "callback refused: signature check failed");
        return Ok(CallbackOutcome::Rejected(why));
    }
    let parsed = match callback::parse(body) {
        Ok(parsed) => parsed,
        Err(err) => {
            store_received(
                pool,
                true,
                body,
                None,
                None,
                "invalid",
                Some(&err.to_string()),
            )
            .await?;
            tracing::warn!(error = %err, "verified callback is not JSON; stored, answered 400");
            return Ok(CallbackOutcome::Invalid);
        }
    };
    let (foreign_id, details) = match parsed {
        ParsedCallback::Ignored { kind, reason } => {
            store_received(pool, true, body, None, None, "ignored", Some(reason)).await?;
            tracing::info!(%kind, reason, "callback acknowledged and ignored");
            return Ok(CallbackOutcome::Ignored);
        }
        ParsedCallback::Unreadable { foreign_id, reason } => {
            return unreadable(pool, body, foreign_id.as_deref(), reason).await;
        }
        ParsedCallback::Withdrawal {
            foreign_id,
            details,
        } => (foreign_id, details),
    };
    let callback_id = store_received(
        pool,
        true,
        body,
        Some(&foreign_id),
        Some(&details.provider_status),
        "received",
        None,
    )
    .await?;

    crate::faults::crash_point("callback_before_apply");
    let mut tx = pool.begin().await?;
    let (outcome, detail) = match store::lock_by_foreign_id(&mut tx, &foreign_id).await? {
        None => {
            tracing::warn!(%foreign_id, provider_status = %details.provider_status, "callback for an unknown foreign_id ignored");
            (
                CallbackOutcome::Ignored,
                Some("unknown foreign_id".to_owned()),
            )
        }
        Some(current) => {
            let applied = transition::apply_report(&mut tx, current, &details).await?;
            let outcome = match applied.transition {
                Transition::Anomaly => CallbackOutcome::Anomaly,
                _ if details.status() == ProviderStatus::Unrecognized => {
                    CallbackOutcome::Unrecognized
                }
                Transition::Move { .. } | Transition::Note => CallbackOutcome::Applied,
                Transition::Duplicate => CallbackOutcome::Duplicate,
            };
            tracing::info!(
                withdrawal_id = %applied.withdrawal.id,
                %foreign_id,
                provider_status = %details.provider_status,
                status = %applied.withdrawal.status,
                outcome = outcome.label(),
                "callback processed"
            );
            (outcome, applied.anomaly)
        }
    };
    sqlx::query("UPDATE callbacks SET outcome = $2, detail = $3 WHERE id = $1")
        .bind(callback_id)
        .bind(outcome.label())
        .bind(detail)
        .execute(&mut *tx)
        .await?;
    crate::faults::crash_point("callback_before_commit");
    tx.commit().await?;
    Ok(outcome)
}

/// A verified callback that cannot be interpreted. Answered 200 all the same: CoinsPaid would
/// retry the same bytes for a day and they would not read better; the body is kept, the
/// withdrawal it names (if any) is flagged and looked up by the reconciler, which settles it
/// from CoinsPaid's own record.
async fn unreadable(
    pool: &PgPool,
    body: &[u8],
    foreign_id: Option<&str>,
    reason: &str,
) -> Result<CallbackOutcome, LedgerError> {
    store_received(
        pool,
        true,
        body,
        foreign_id,
        None,
        "unreadable",
        Some(reason),
    )
    .await?;
    let mut tx = pool.begin().await?;
    let flagged = match foreign_id {
        Some(foreign_id) => match store::lock_by_foreign_id(&mut tx, foreign_id).await? {
            Some(withdrawal) => Some(
                transition::record_anomaly(
                    &mut tx,
                    withdrawal.id,
                    &format!("a verified callback could not be read ({reason}); no money moved, a look-up follows"),
                )
                .await?,
            ),
            None => None,
        },
        None => None,
    };
    tx.commit().await?;
    tracing::error!(
        withdrawal_id = ?flagged.as_ref().map(|w| w.id),
        foreign_id,
        reason,
        "verified callback could not be interpreted; stored, no money moved"
    );
    Ok(CallbackOutcome::Unreadable)
}
