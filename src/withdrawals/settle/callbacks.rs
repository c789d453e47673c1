//! Receiving CoinsPaid callbacks: verify the raw bytes, then apply what arrived through the
//! state machine under the withdrawal's row lock and store it, in one transaction: a
//! transaction of its own (here, through `transition`), or a settle batch's shared with other
//! callbacks that simply settle or repeat (`settle_batch`). Either way the settlement is
//! written by `settle::write`.

use sqlx::PgPool;
use tracing::Instrument;
use uuid::Uuid;

use crate::coinspaid::callback::{self, ParsedCallback, ProviderDetails};
use crate::coinspaid::signing::VerifyError;
use crate::coinspaid::Signer;
use crate::domain::withdrawal::ProviderStatus;
use crate::domain::Transition;
use crate::error::Error;
use crate::withdrawals::settle::batch::Settlements;
use crate::withdrawals::settle::transition;
use crate::withdrawals::store;

/// How much of an unverified callback body is shown in its (sampled) log line.
const UNVERIFIED_SAMPLE_BYTES: usize = 96;

/// Unsigned or forged callbacks are counted, never stored (a flood would only fill the disk),
/// and logged as a sample: at most one line per second, naming how many were not logged.
fn log_unverified(why: VerifyError, body: &[u8]) {
    use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
    static LAST_LOGGED_SEC: AtomicI64 = AtomicI64::new(i64::MIN);
    static SUPPRESSED: AtomicU64 = AtomicU64::new(0);
    let now = chrono::Utc::now().timestamp();
    let last = LAST_LOGGED_SEC.load(Ordering::Relaxed);
    if last == now
        || LAST_LOGGED_SEC
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
    {
        SUPPRESSED.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let sample = &body[..body.len().min(UNVERIFIED_SAMPLE_BYTES)];
    tracing::warn!(
        reason = %why,
        body_len = body.len(),
        body_sample = %String::from_utf8_lossy(sample).escape_debug(),
        not_logged_since_last = SUPPRESSED.swap(0, Ordering::Relaxed),
        "callback refused: signature check failed (sampled: at most one line a second; all are counted)"
    );
}

pub use super::outcome::CallbackOutcome;

async fn store_received(
    conn: impl sqlx::PgExecutor<'_>,
    verified: bool,
    body: &[u8],
    foreign_id: Option<&str>,
    provider_status: Option<&str>,
    outcome: &str,
    detail: Option<&str>,
) -> Result<Uuid, sqlx::Error> {
    let id = Uuid::now_v7();
    sqlx::query!(
        "INSERT INTO callbacks (id, verified, raw_body, foreign_id, provider_status, outcome, detail)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        id,
        verified,
        body,
        foreign_id,
        provider_status,
        outcome,
        detail
    )
    .execute(conn)
    .await?;
    Ok(id)
}

/// Handles one callback end to end. A withdrawal's callback is applied and stored in one
/// transaction, shared with other callbacks when `[batching]` is on (`settle_batch`); if
/// that fails, the body is stored on its own (so it is on record) and the error answered, so
/// CoinsPaid retries.
/// Idempotent: however often and in whatever order callbacks arrive, a withdrawal's hold
/// is debited or released at most once.
pub async fn receive(
    settlements: &Settlements,
    signer: &Signer,
    key: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
) -> Result<CallbackOutcome, Error> {
    let outcome = receive_inner(settlements, signer, key, signature, body).await?;
    metrics::counter!("payoutd_callbacks_total", "outcome" => outcome.label()).increment(1);
    Ok(outcome)
}

async fn receive_inner(
    settlements: &Settlements,
    signer: &Signer,
    key: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
) -> Result<CallbackOutcome, Error> {
    match signer.verify_which(key, signature, body) {
        Ok(used) => {
            metrics::counter!("payoutd_callback_signatures_verified_total", "secret" => used.label())
                .increment(1);
            if used == crate::coinspaid::SecretUsed::Previous {
                // Until this stops appearing, the previous key pair (COINSPAID_API_KEY_PREVIOUS,
                // COINSPAID_API_SECRET_PREVIOUS) is still needed.
                tracing::info!(
                    secret = used.label(),
                    "callback verified with the previous CoinsPaid secret"
                );
            }
        }
        Err(why) => {
            log_unverified(why, body);
            return Ok(CallbackOutcome::Rejected(why));
        }
    }
    let pool = settlements.pool();
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
            return flag(
                pool,
                body,
                foreign_id.as_deref(),
                CallbackOutcome::Unreadable,
                &format!("a verified callback could not be read ({reason})"),
            )
            .await;
        }
        ParsedCallback::DuplicateKey { foreign_id, key } => {
            return flag(
                pool,
                body,
                foreign_id.as_deref(),
                CallbackOutcome::Anomaly,
                &format!("a verified callback has the key {key} twice"),
            )
            .await;
        }
        ParsedCallback::Withdrawal {
            foreign_id,
            details,
        } => (foreign_id, details),
    };
    crate::faults::crash_point("callback_before_apply");
    if let Some(outcome) = settlements.settle(body, &foreign_id, &details).await {
        return Ok(outcome);
    }
    apply_alone(settlements.pool(), body, &foreign_id, &details).await
}

/// Applies and stores one withdrawal callback in its own transaction (see
/// [`apply_and_store`]): the path of every callback with batching off, and of whatever a
/// settle batch leaves alone. If that transaction fails, the body is stored on its
/// own (so it is on record) and the error answered, so CoinsPaid retries.
pub(super) async fn apply_alone(
    pool: &PgPool,
    body: &[u8],
    foreign_id: &str,
    details: &ProviderDetails,
) -> Result<CallbackOutcome, Error> {
    match apply_and_store(pool, body, foreign_id, details).await {
        Ok(outcome) => Ok(outcome),
        Err(err) => {
            // Nothing of the transaction stayed: keep the body on record on its own, then
            // answer an error so CoinsPaid sends it again.
            tracing::error!(%foreign_id, error = %err, "callback could not be applied; storing it alone");
            store_received(
                pool,
                true,
                body,
                Some(foreign_id),
                Some(&details.provider_status),
                "received",
                Some("applying failed; CoinsPaid retries"),
            )
            .await?;
            Err(err)
        }
    }
}

/// Stores a withdrawal callback and applies it, in one transaction: one commit (one WAL flush)
/// per callback (see BENCHMARKS.md). The row is inserted before the withdrawal's lock is taken
/// and only its outcome updated under it, so the section that callbacks for one withdrawal
/// pass one at a time holds no insert. If the transaction fails, the caller stores the body
/// alone.
async fn apply_and_store(
    pool: &PgPool,
    body: &[u8],
    foreign_id: &str,
    details: &ProviderDetails,
) -> Result<CallbackOutcome, Error> {
    let mut tx = pool.begin().await?;
    let callback_id = store_received(
        &mut *tx,
        true,
        body,
        Some(foreign_id),
        Some(&details.provider_status),
        "received",
        None,
    )
    .await?;
    let (outcome, detail) = match store::lock_by_foreign_id(&mut tx, foreign_id).await? {
        None => {
            tracing::warn!(%foreign_id, provider_status = %details.provider_status, "callback for an unknown foreign_id ignored");
            (
                CallbackOutcome::Ignored,
                Some("unknown foreign_id".to_owned()),
            )
        }
        Some(current) => {
            let span = tracing::info_span!(
                "withdrawal.callback",
                withdrawal_id = %current.id,
                foreign_id = %current.foreign_id,
            );
            // A withdrawal it leaves past pending loses its submission job in the same write.
            let applied = transition::apply_report(&mut tx, current, details)
                .instrument(span)
                .await?;
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
    sqlx::query!(
        "UPDATE callbacks SET outcome = $2, detail = $3 WHERE id = $1",
        callback_id,
        outcome.label(),
        detail
    )
    .execute(&mut *tx)
    .await?;
    crate::faults::crash_point("callback_before_commit");
    tx.commit().await?;
    Ok(outcome)
}

/// A verified callback that cannot be acted on: unreadable, or ambiguous (a key given twice).
/// Answered 200 all the same: CoinsPaid would retry the same bytes for a day and they would
/// not read better; the body is kept with `outcome`, the withdrawal it names (if any) is
/// flagged and looked up by the reconciler, which settles it from CoinsPaid's own record.
async fn flag(
    pool: &PgPool,
    body: &[u8],
    foreign_id: Option<&str>,
    outcome: CallbackOutcome,
    reason: &str,
) -> Result<CallbackOutcome, Error> {
    store_received(
        pool,
        true,
        body,
        foreign_id,
        None,
        outcome.label(),
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
                    &format!("{reason}; no money moved, a look-up follows"),
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
        outcome = outcome.label(),
        "verified callback not acted on; stored, no money moved"
    );
    Ok(outcome)
}
