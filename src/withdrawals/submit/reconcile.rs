//! The reconciler: withdrawals CoinsPaid has gone quiet about are looked up with
//! `/v2/transactions/info`, and the answer goes through the same state machine as a callback.
//!
//! It covers lost callbacks (CoinsPaid stops retrying after about 24 hours) and submissions
//! whose outcome stayed unknown (parked jobs). It never releases money on a missing answer.

use serde::Deserialize;
use std::time::Duration;

use sqlx::PgPool;
use tracing::Instrument;
use uuid::Uuid;

use crate::coinspaid::callback::ProviderDetails;
use crate::coinspaid::{CoinsPaidClient, LookupError};
use crate::domain::{Transition, WithdrawalStatus};
use crate::error::Error;
use crate::withdrawals::queue;
use crate::withdrawals::settle::transition;
use crate::withdrawals::store;

/// Looks up withdrawals CoinsPaid has not called back about, well inside its ~24 h of
/// callback retries.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReconcilerSettings {
    pub enabled: bool,
    pub interval_secs: u64,
    /// A pending or processing withdrawal this long without a change is looked up.
    pub min_age_secs: u64,
    /// Wait before looking the same withdrawal up again.
    pub recheck_secs: u64,
    pub batch: i64,
}

/// What one look-up achieved; also the metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// The withdrawal reached a terminal status.
    Settled,
    /// CoinsPaid has it and is still working on it (a pending one moved to processing).
    InProgress,
    /// CoinsPaid never saw it: its parked submission was put back in line.
    Resubmitted,
    /// CoinsPaid never saw it and its submission is still being retried.
    NotYetSubmitted,
    /// CoinsPaid gives no record of a withdrawal it accepted: an operator must look.
    Missing,
    /// CoinsPaid's record does not match the withdrawal, or contradicts it: nothing moved.
    Anomaly,
    /// The look-up failed; tried again next round.
    LookupFailed,
}

impl Check {
    pub fn label(self) -> &'static str {
        match self {
            Self::Settled => "settled",
            Self::InProgress => "in_progress",
            Self::Resubmitted => "resubmitted",
            Self::NotYetSubmitted => "not_yet_submitted",
            Self::Missing => "missing",
            Self::Anomaly => "anomaly",
            Self::LookupFailed => "lookup_failed",
        }
    }
}

#[derive(Clone)]
pub struct Reconciler {
    pool: PgPool,
    client: CoinsPaidClient,
    settings: ReconcilerSettings,
}

impl Reconciler {
    pub fn new(pool: PgPool, client: CoinsPaidClient, settings: ReconcilerSettings) -> Self {
        Self {
            pool,
            client,
            settings,
        }
    }

    /// Claims quiet withdrawals like a lease (their next check is pushed `recheck_secs` ahead
    /// in the claiming statement), so replicas never look up the same one at once.
    async fn claim(&self) -> Result<Vec<(Uuid, String)>, sqlx::Error> {
        let claimed = sqlx::query!(
            "UPDATE withdrawals SET reconcile_after = now() + make_interval(secs => $2)
             WHERE id IN (
                 SELECT id FROM withdrawals
                 WHERE status IN ('pending', 'processing')
                   AND reconcile_after <= now()
                   AND updated_at <= now() - make_interval(secs => $1)
                 ORDER BY reconcile_after
                 LIMIT $3
                 FOR UPDATE SKIP LOCKED)
             RETURNING id, foreign_id",
            self.settings.min_age_secs as f64,
            self.settings.recheck_secs as f64,
            self.settings.batch
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(claimed.into_iter().map(|w| (w.id, w.foreign_id)).collect())
    }

    /// Checks every due withdrawal once; returns what each check found. Tests call this
    /// directly; the loop calls it every `interval_secs`.
    pub async fn run_once(&self) -> Result<Vec<Check>, Error> {
        let mut checks = Vec::new();
        for (id, foreign_id) in self.claim().await? {
            let span = tracing::info_span!("withdrawal.reconcile", withdrawal_id = %id, foreign_id = %foreign_id);
            let check = self.check(id, &foreign_id).instrument(span).await?;
            metrics::counter!("payoutd_reconciler_checks_total", "result" => check.label())
                .increment(1);
            checks.push(check);
        }
        Ok(checks)
    }

    async fn check(&self, id: Uuid, foreign_id: &str) -> Result<Check, Error> {
        Ok(self.look_up(id, foreign_id).await?.0)
    }

    /// One look-up now, applied like the reconciler's own (an operator's "look up again"):
    /// what it achieved, and CoinsPaid's record or why there is none.
    pub async fn look_up(
        &self,
        id: Uuid,
        foreign_id: &str,
    ) -> Result<(Check, Result<ProviderDetails, String>), Error> {
        let looked_up = {
            let _slot = self.client.call_slot().await;
            self.client.transaction_info(foreign_id).await
        };
        let details = match looked_up {
            Ok(details) => details,
            Err(err) => {
                // CoinsPaid's text may quote the withdrawal's travel-rule data.
                let mut conn = self.pool.acquire().await?;
                let err = match crate::withdrawals::travel_rule::redactor(&mut conn, id).await? {
                    Some(redactor) => err.scrubbed(&redactor),
                    None => err,
                };
                drop(conn);
                let why = err.to_string();
                return Ok((self.no_record(id, err).await?, Err(why)));
            }
        };
        let mut tx = self.pool.begin().await?;
        let current = store::lock_by_id(&mut tx, id)
            .await?
            .ok_or(sqlx::Error::RowNotFound)?;
        // CoinsPaid has it: a withdrawal this leaves past pending loses its submission job in
        // the same write, whatever the submission attempts said.
        let applied = transition::apply_report(&mut tx, current, &details).await?;
        // CoinsPaid knows it (again): no longer missing.
        sqlx::query!(
            "UPDATE withdrawals SET missing_since = NULL WHERE id = $1 AND missing_since IS NOT NULL",
            id
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::info!(provider_status = %details.provider_status, status = %applied.withdrawal.status, "reconciler: looked up at CoinsPaid");
        let check = if applied.transition == Transition::Anomaly {
            Check::Anomaly
        } else if applied.withdrawal.status.is_terminal() {
            Check::Settled
        } else {
            Check::InProgress
        };
        Ok((check, Ok(details)))
    }

    /// No record to act on. Nothing is released, ever: a failed look-up (a `403`, `429`, `5xx`,
    /// timeout, redirect, or a 2xx without our record) is tried again next round, and even
    /// CoinsPaid saying it has no record only puts a parked submission back in line, which looks
    /// the withdrawal up again before it sends anything (see `submit.rs`).
    async fn no_record(&self, id: Uuid, err: LookupError) -> Result<Check, Error> {
        if !err.is_no_record() {
            tracing::warn!(error = %err, "reconciler: look-up failed; will retry");
            return Ok(Check::LookupFailed);
        }
        let status = store::get(&self.pool, id).await?.map(|w| w.status);
        if status != Some(WithdrawalStatus::Pending) {
            tracing::error!(
                ?status,
                error = %err,
                "reconciler: CoinsPaid gives no record of a withdrawal it accepted; needs an operator"
            );
            // Shown in the operators' queue as `missing` until a look-up finds it again.
            sqlx::query!(
                "UPDATE withdrawals SET missing_since = COALESCE(missing_since, now())
                 WHERE id = $1 AND status = 'processing'",
                id
            )
            .execute(&self.pool)
            .await?;
            return Ok(Check::Missing);
        }
        if queue::unpark(&self.pool, id).await? {
            tracing::warn!(error = %err, "reconciler: CoinsPaid gives no record of this withdrawal; its parked submission is back in line (looked up again before any resend)");
            Ok(Check::Resubmitted)
        } else {
            Ok(Check::NotYetSubmitted)
        }
    }

    /// The loop: a round every `interval_secs` until `shutdown`.
    pub async fn run(self, shutdown: tokio::sync::watch::Receiver<bool>) {
        let interval = Duration::from_secs(self.settings.interval_secs);
        crate::background::every("reconciler", interval, shutdown, || async {
            match crate::db::failover::step_done("reconciler", self.run_once().await) {
                Some(checks) if !checks.is_empty() => {
                    tracing::info!(checked = checks.len(), "reconciler round done")
                }
                _ => {}
            }
        })
        .await;
    }
}
