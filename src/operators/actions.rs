//! What operators (and, for its own requests, the website) do to a withdrawal. Each action
//! takes the withdrawal's row lock, decides through the state machine
//! (`transition::decide`), writes its audit row in the same transaction, and commits; only
//! then is anything sent to CoinsPaid. Of racing decisions (approve, reject, cancel, a
//! resolution and a callback) the first to take the lock wins; the others find the status
//! they need gone and change nothing.

use std::time::Duration;

use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

use super::audit::{self, snapshot};
use super::policy::{self, Outcome};
use crate::coinspaid::callback::ProviderDetails;
use crate::coinspaid::CoinsPaidClient;
use crate::domain::travel_rule::Redactor;
use crate::domain::withdrawal::Decision;
use crate::domain::{UserId, WithdrawalStatus};
use crate::error::Error;
use crate::withdrawals::queue;
use crate::withdrawals::settle::{matching, transition};
use crate::withdrawals::submit::reconcile::Reconciler;
use crate::withdrawals::submit::{Attempt, Submitter};
use crate::withdrawals::{store, travel_rule, Withdrawal};

/// The actor name of the website's own decisions (cancel, review flags) in the audit trail.
pub const WEBSITE: &str = "website";

#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("withdrawal not found")]
    NotFound,
    /// The withdrawal is not in a status this action is for (someone or something else
    /// decided first, or it was never eligible).
    #[error("cannot {action} a withdrawal that is {status}")]
    WrongStatus {
        action: &'static str,
        status: WithdrawalStatus,
    },
    /// A submission attempt holds the withdrawal right now: try again in a moment.
    #[error("a submission attempt is in flight; try again once it has finished")]
    InFlight,
    /// The fresh look-up does not back the resolution; pass `override` to resolve anyway.
    #[error("{0}")]
    LookupDisagrees(String),
    /// Nothing to acknowledge: no anomaly was recorded, or every one has been acknowledged.
    #[error("the withdrawal has no unacknowledged anomaly")]
    NoAnomaly,
    /// The database is away, or one of its money guards refused the write (`crate::error`).
    #[error(transparent)]
    Failed(#[from] Error),
}

impl From<sqlx::Error> for ActionError {
    fn from(e: sqlx::Error) -> Self {
        Self::Failed(e.into())
    }
}

/// A fresh look-up as operators see it.
#[derive(Debug, Clone)]
pub struct LookupReport {
    /// What the look-up achieved (the reconciler's labels: `settled`, `in_progress`,
    /// `missing`, `anomaly`, `resubmitted`, `not_yet_submitted`, `lookup_failed`), or
    /// `checked` when it was only compared, not applied.
    pub result: String,
    /// CoinsPaid's record, or why there is none.
    pub record: Result<Value, String>,
}

fn record_json(d: &ProviderDetails) -> Value {
    json!({
        "provider_id": d.provider_id,
        "provider_status": d.provider_status,
        "type": d.kind,
        "sent": d.sent.as_ref().map(|a| json!({"amount": a.amount.to_string(), "currency": a.currency})),
        "received": d.received.as_ref().map(|a| json!({"amount": a.amount.to_string(), "currency": a.currency})),
        "txids": d.txids,
        "error": d.error,
    })
}

/// The operator use cases. Cheap to clone.
#[derive(Clone)]
pub struct Operators {
    pool: PgPool,
    submitter: Submitter,
    reconciler: Reconciler,
    client: CoinsPaidClient,
}

impl Operators {
    pub fn new(
        pool: PgPool,
        submitter: Submitter,
        reconciler: Reconciler,
        client: CoinsPaidClient,
    ) -> Self {
        Self {
            pool,
            submitter,
            reconciler,
            client,
        }
    }

    /// What scrubs the withdrawal's travel-rule values from CoinsPaid's text that an action
    /// shows and audits (a look-up's record and error).
    async fn redactor_of(&self, id: Uuid) -> Result<Redactor, sqlx::Error> {
        let mut conn = self.pool.acquire().await?;
        Ok(travel_rule::redactor(&mut conn, id)
            .await?
            .unwrap_or_default())
    }

    /// Locks `id`, applies `decision`, records the audit row; one transaction. A resolution is
    /// refused while a submission attempt holds the job; an approval adds the job.
    async fn decide(
        &self,
        id: Uuid,
        by: &str,
        decision: Decision,
        reason: Option<&str>,
        error: Option<&str>,
        extra: Option<Value>,
    ) -> Result<Withdrawal, ActionError> {
        let mut tx = self.pool.begin().await?;
        let current = store::lock_by_id(&mut tx, id)
            .await?
            .ok_or(ActionError::NotFound)?;
        let before = snapshot(&current);
        let status = current.status;
        let wrong_status = ActionError::WrongStatus {
            action: decision.as_str(),
            status,
        };
        if status.decide(decision).is_none() {
            return Err(wrong_status);
        }
        if matches!(decision, Decision::ResolvePaid | Decision::ResolveNotPaid) {
            // The lock on the job row waits for a worker that is claiming it; a lease still
            // running means a provider call may be under way, whose answer would arrive after
            // our settlement: refuse rather than race it. The settlement removes the job.
            let in_flight = sqlx::query_scalar!(
                r#"SELECT lease_id IS NOT NULL AND run_at > now() AND NOT parked AS "in_flight!"
                   FROM submission_jobs WHERE withdrawal_id = $1 FOR UPDATE"#,
                id
            )
            .fetch_optional(&mut *tx)
            .await?;
            if in_flight == Some(true) {
                tx.rollback().await?;
                return Err(ActionError::InFlight);
            }
        }
        let Some(updated) = transition::decide(&mut tx, current, decision, error).await? else {
            return Err(wrong_status);
        };
        if decision == Decision::Approve {
            sqlx::query!(
                "INSERT INTO submission_jobs (withdrawal_id) VALUES ($1)
                 ON CONFLICT (withdrawal_id) DO NOTHING",
                id
            )
            .execute(&mut *tx)
            .await?;
        }
        let mut after = snapshot(&updated);
        if let (Some(extra), Some(map)) = (extra, after.as_object_mut()) {
            map.insert("details".into(), extra);
        }
        audit::record(
            &mut tx,
            by,
            decision.as_str(),
            Some(id),
            reason,
            Some(before),
            Some(after),
        )
        .await?;
        tx.commit().await?;
        Ok(updated)
    }

    /// Approves a withdrawal awaiting approval: it becomes `pending` with a submission job and
    /// is sent at once with its foreign_id (unless its currency is paused). One transaction,
    /// then the attempt.
    pub async fn approve(
        &self,
        id: Uuid,
        by: &str,
        reason: Option<&str>,
    ) -> Result<Withdrawal, ActionError> {
        let approved = self
            .decide(id, by, Decision::Approve, reason, None, None)
            .await?;
        Ok(self.send_now(approved).await)
    }

    /// Rejects a withdrawal awaiting approval: `rejected`, the hold released; the reason is
    /// shown to the website as the withdrawal's `error`. One transaction.
    pub async fn reject(
        &self,
        id: Uuid,
        by: &str,
        reason: &str,
    ) -> Result<Withdrawal, ActionError> {
        let error = format!("rejected by an operator: {reason}");
        self.decide(id, by, Decision::Reject, Some(reason), Some(&error), None)
            .await
    }

    /// The website cancels its own withdrawal while it awaits approval: `cancelled`, released.
    /// Idempotent: cancelling a cancelled one answers it unchanged. One transaction.
    pub async fn cancel(&self, id: Uuid, reason: Option<&str>) -> Result<Withdrawal, ActionError> {
        match self
            .decide(
                id,
                WEBSITE,
                Decision::Cancel,
                reason,
                Some("cancelled by the website before it was sent"),
                None,
            )
            .await
        {
            Err(ActionError::WrongStatus {
                status: WithdrawalStatus::Cancelled,
                ..
            }) => store::get(&self.pool, id)
                .await?
                .ok_or(ActionError::NotFound),
            other => other,
        }
    }

    /// Resolves a withdrawal that may have been sent as paid (debit) or not paid (release).
    /// CoinsPaid is asked first (no transaction open); the resolution must agree with its
    /// record unless `override_lookup`. Then one transaction under the row lock: if a callback
    /// settled it meanwhile, the resolution changes nothing and says so.
    pub async fn resolve(
        &self,
        id: Uuid,
        by: &str,
        outcome: Outcome,
        reason: &str,
        override_lookup: bool,
    ) -> Result<(Withdrawal, LookupReport), ActionError> {
        let current = store::get(&self.pool, id)
            .await?
            .ok_or(ActionError::NotFound)?;
        let decision = match outcome {
            Outcome::Paid => Decision::ResolvePaid,
            Outcome::NotPaid => Decision::ResolveNotPaid,
        };
        if current.status.decide(decision).is_none() {
            return Err(ActionError::WrongStatus {
                action: decision.as_str(),
                status: current.status,
            });
        }
        let redactor = self.redactor_of(id).await?;
        let lookup = {
            let _slot = self.client.call_slot().await;
            self.client
                .transaction_info(current.foreign_id.as_str())
                .await
        };
        let lookup = lookup
            .map(|details| details.scrubbed(&redactor))
            .map_err(|err| redactor.scrub(&err.to_string()));
        let verdict = match &lookup {
            Ok(details) => {
                let mismatches = matching::mismatches(&current, details);
                if mismatches.is_empty() {
                    policy::agrees(outcome, Ok(details.status()))
                } else {
                    Err(format!(
                        "CoinsPaid's record does not match the withdrawal: {}",
                        mismatches.join("; ")
                    ))
                }
            }
            Err(err) => policy::agrees(outcome, Err(err)),
        };
        if let Err(why) = &verdict {
            if !override_lookup {
                return Err(ActionError::LookupDisagrees(format!(
                    "{why}; check CoinsPaid's dashboard and resolve with override to decide anyway"
                )));
            }
        }
        let report = LookupReport {
            result: "checked".into(),
            record: lookup.as_ref().map(record_json).map_err(Clone::clone),
        };
        let extra = json!({
            "lookup": report.record.clone().unwrap_or_else(|e| json!({"none": e})),
            "lookup_agrees": verdict.is_ok(),
            "override": override_lookup && verdict.is_err(),
        });
        let error = match outcome {
            Outcome::Paid => None,
            Outcome::NotPaid => Some("resolved as not paid by an operator"),
        };
        let resolved = self
            .decide(id, by, decision, Some(reason), error, Some(extra))
            .await?;
        Ok((resolved, report))
    }

    /// Sends a pending withdrawal again now, with its foreign_id: a parked job is put back
    /// with fresh attempts (or a job made if none is left) and leased at once. Refused while
    /// another attempt holds the lease. One transaction, then the attempt.
    pub async fn retry_now(
        &self,
        id: Uuid,
        by: &str,
        reason: Option<&str>,
    ) -> Result<Withdrawal, ActionError> {
        let mut tx = self.pool.begin().await?;
        let current = store::lock_by_id(&mut tx, id)
            .await?
            .ok_or(ActionError::NotFound)?;
        if current.status != WithdrawalStatus::Pending {
            return Err(ActionError::WrongStatus {
                action: "retry",
                status: current.status,
            });
        }
        let queued = sqlx::query_scalar!(
            "INSERT INTO submission_jobs (withdrawal_id) VALUES ($1)
             ON CONFLICT (withdrawal_id) DO UPDATE
                 SET parked = false, park_reason = NULL, attempts = 0, run_at = now(),
                     lease_id = NULL
                 WHERE submission_jobs.parked OR submission_jobs.lease_id IS NULL
                    OR submission_jobs.run_at <= now()
             RETURNING withdrawal_id",
            id
        )
        .fetch_optional(&mut *tx)
        .await?;
        if queued.is_none() {
            return Err(ActionError::InFlight);
        }
        let state = snapshot(&current);
        audit::record(
            &mut tx,
            by,
            "retry",
            Some(id),
            reason,
            Some(state.clone()),
            Some(state),
        )
        .await?;
        tx.commit().await?;
        Ok(self.send_now(current).await)
    }

    /// Asks CoinsPaid now and applies the answer as the reconciler would (a final status
    /// settles it; nothing is ever released on a missing answer). Audited.
    pub async fn look_up(
        &self,
        id: Uuid,
        by: &str,
    ) -> Result<(Withdrawal, LookupReport), ActionError> {
        let current = store::get(&self.pool, id)
            .await?
            .ok_or(ActionError::NotFound)?;
        if current.status == WithdrawalStatus::AwaitingApproval {
            return Err(ActionError::WrongStatus {
                action: "look up",
                status: current.status,
            });
        }
        let (check, record) = self
            .reconciler
            .look_up(id, current.foreign_id.as_str())
            .await?;
        let redactor = self.redactor_of(id).await?;
        let report = LookupReport {
            result: check.label().into(),
            record: record
                .as_ref()
                .map(|details| record_json(&details.scrubbed(&redactor)))
                .map_err(|err| redactor.scrub(err)),
        };
        let after = store::get(&self.pool, id)
            .await?
            .ok_or(ActionError::NotFound)?;
        let mut conn = self.pool.acquire().await?;
        let mut after_json = snapshot(&after);
        after_json["details"] = json!({
            "result": report.result,
            "lookup": report.record.clone().unwrap_or_else(|e| json!({"none": e})),
        });
        audit::record(
            &mut conn,
            by,
            "look_up",
            Some(id),
            None,
            Some(snapshot(&current)),
            Some(after_json),
        )
        .await?;
        Ok((after, report))
    }

    /// Records that a person has handled the withdrawal's anomaly: it leaves the stuck list
    /// until another one is recorded. Changes no status and no money, nor `updated_at` (the
    /// website sees nothing new). One transaction with its audit row, under the row lock, so
    /// an anomaly recorded concurrently is either acknowledged here (and in the audit row's
    /// `before`) or counted after it and listed again.
    pub async fn acknowledge(
        &self,
        id: Uuid,
        by: &str,
        reason: &str,
    ) -> Result<Withdrawal, ActionError> {
        let mut tx = self.pool.begin().await?;
        let current = store::lock_by_id(&mut tx, id)
            .await?
            .ok_or(ActionError::NotFound)?;
        let acknowledged = sqlx::query_scalar!(
            "UPDATE withdrawals SET anomaly_acknowledged_seq = anomaly_seq,
                 anomaly_acknowledged_at = now(), anomaly_acknowledged_by = $2
             WHERE id = $1 AND anomaly_seq > anomaly_acknowledged_seq
             RETURNING anomaly_seq",
            id,
            by
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some(seq) = acknowledged else {
            return Err(ActionError::NoAnomaly);
        };
        let before = snapshot(&current);
        let mut after = before.clone();
        after["details"] = json!({"anomaly_acknowledged": seq});
        audit::record(
            &mut tx,
            by,
            "acknowledge",
            Some(id),
            Some(reason),
            Some(before),
            Some(after),
        )
        .await?;
        tx.commit().await?;
        tracing::info!(withdrawal_id = %id, foreign_id = %current.foreign_id, operator = %by, "anomaly acknowledged");
        Ok(current)
    }

    /// Flags (or with `None`, unflags) a user: while flagged, every new withdrawal of theirs
    /// waits for approval. One transaction with its audit row.
    pub async fn set_review_flag(
        &self,
        user: &UserId,
        reason: Option<&str>,
        by: &str,
    ) -> Result<(), ActionError> {
        let user_id = user.as_str();
        let mut tx = self.pool.begin().await?;
        let before = sqlx::query_scalar!(
            "SELECT reason FROM user_review_flags WHERE user_id = $1",
            user_id
        )
        .fetch_optional(&mut *tx)
        .await?;
        match reason {
            Some(reason) => {
                sqlx::query!(
                    "INSERT INTO user_review_flags (user_id, reason, set_by) VALUES ($1, $2, $3)
                     ON CONFLICT (user_id) DO UPDATE SET reason = $2, set_by = $3, created_at = now()",
                    user_id,
                    reason,
                    by
                )
                .execute(&mut *tx)
                .await?;
            }
            None => {
                sqlx::query!("DELETE FROM user_review_flags WHERE user_id = $1", user_id)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        audit::record(
            &mut tx,
            by,
            if reason.is_some() {
                "flag_user"
            } else {
                "unflag_user"
            },
            None,
            reason,
            Some(json!({"user_id": user_id, "flagged": before})),
            Some(json!({"user_id": user_id, "flagged": reason})),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Leases the withdrawal's job and makes one attempt now, in its own task (a client that
    /// hangs up does not cut it short). Paused, leased elsewhere or failed: the row as it
    /// stands; the worker carries on.
    async fn send_now(&self, w: Withdrawal) -> Withdrawal {
        // A slot of the process's bound on work at CoinsPaid first, so waiting for one never
        // eats into the lease.
        let slot = self.client.call_slot().await;
        let lease_for = self.submitter.lease_duration();
        let quiet = self.submitter.resend_quiet_period();
        let lease = match queue::claim_one(&self.pool, w.id, lease_for, quiet).await {
            Ok(Some(lease)) => lease,
            Ok(None) => return w,
            Err(err) => {
                tracing::error!(withdrawal_id = %w.id, error = %err, "could not lease the submission");
                return w;
            }
        };
        let submitter = self.submitter.clone();
        let current = w.clone();
        let attempt = tokio::spawn(async move {
            let _slot = slot;
            submitter.attempt_with(lease, current).await
        });
        match attempt.await {
            Ok(Ok(Attempt::Recorded(now))) => *now,
            _ => tokio::time::timeout(Duration::from_secs(5), store::get(&self.pool, w.id))
                .await
                .ok()
                .and_then(Result::ok)
                .flatten()
                .unwrap_or(w),
        }
    }
}
