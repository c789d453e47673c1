//! Submitting withdrawals to CoinsPaid: lease, call with no transaction open, record.
//!
//! Once any request for a withdrawal may have reached CoinsPaid without a definitive answer
//! (a timeout, a 5xx, a redirect, an unreadable answer, our credentials refused, a crash
//! mid-call), the withdrawal's one-way `outcome_unknown` flag says so for good, and it alone
//! decides what an answer may mean:
//! - before sending such a withdrawal again, it is looked up: found, the record is applied and
//!   nothing is sent; sent again (same foreign_id) only when CoinsPaid says it has no record and
//!   the quiet period since the last such request has passed, so the look-up cannot race a
//!   slow create; a failed look-up is retried, never read as "no record";
//! - a refusal is looked up, never taken as proof: only CoinsPaid's `cancelled`/`declined` or
//!   an audited operator resolution releases the hold.
//!
//! Without the flag, every earlier attempt had a definitive answer, so a field refusal is proof
//! that nothing was created and releases the hold.

pub mod first_attempt;
pub mod reconcile;

use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::Semaphore;
use tracing::Instrument;

use crate::coinspaid::callback::ProviderDetails;
use crate::coinspaid::wire::{CurrencyAmount, TravelRuleFields, WithdrawalRequest};
use crate::coinspaid::{CoinsPaidClient, SubmitOutcome};
use crate::db::batch::{BatchSettings, Batcher};
use crate::domain::travel_rule::Redactor;
use crate::domain::{ProviderEvent, WithdrawalStatus};
use crate::error::Error;
use crate::withdrawals::queue::{self, Lease, ParkReason, RemovedJob};
use crate::withdrawals::settle::transition;
use crate::withdrawals::store::{self, withdrawal_from_record, Withdrawal};
use std::collections::HashMap;
use uuid::Uuid;

/// `[worker]`: the submission worker and first attempts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerSettings {
    /// Run the submission worker in this process (turn off for API-only replicas).
    pub enabled: bool,
    pub poll_interval_ms: u64,
    /// After this many failed attempts a submission parks: still held, visible in metrics.
    pub max_attempts: i32,
    /// How long a worker owns a submission; must exceed the provider timeout.
    pub lease_secs: u64,
    pub backoff_base_ms: u64,
    pub backoff_max_secs: u64,
    /// How long `POST /v1/withdrawals` waits for its first submission attempt before it
    /// answers with the withdrawal as it stands (the attempt goes on in the background).
    /// Absent: half of `server.request_timeout_secs`, so the answer usually says
    /// `processing` or `rejected`. 0: answer `pending` as soon as the amount is held.
    pub first_attempt_wait_ms: Option<u64>,
    /// First submission attempts running at once in this process; more wait their turn.
    pub max_in_flight: usize,
    /// A withdrawal whose outcome is unknown is sent again only after a look-up finds no
    /// record of it, and no sooner than `coinspaid.timeout_secs` plus this many seconds after
    /// the last request that may have reached CoinsPaid: time for a slow create to show up in
    /// the look-up.
    pub resend_margin_secs: u64,
}

/// What to do when a look-up made after a refusal says CoinsPaid has no record. A look-up
/// that fails is always retried later.
#[derive(Debug, Clone, Copy)]
enum IfNoRecord {
    /// The outcome is still merely unknown: try again later.
    Retry,
    /// CoinsPaid refused after an unknown outcome and has no record: a person must decide.
    Park,
}

/// Sends leased withdrawals to CoinsPaid and records what it answered.
#[derive(Clone)]
pub struct Submitter {
    pool: PgPool,
    client: CoinsPaidClient,
    settings: WorkerSettings,
    /// How long after a request that may have reached CoinsPaid it may be sent again: the
    /// CoinsPaid timeout plus `worker.resend_margin_secs`.
    quiet: Duration,
    /// Group commit of acceptances (`[batching]`); `None`: one statement each.
    accepted: Option<Batcher<Accepted, AcceptedResult>>,
}

/// CoinsPaid's acceptance of one withdrawal, to be recorded.
pub struct Accepted {
    lease: Lease,
    details: ProviderDetails,
}

/// `Some((lease still ours, row))` when recorded; `None` when the withdrawal was no longer
/// `pending` (the general path then applies the acceptance under the row lock).
type AcceptedResult = Result<Option<(bool, Withdrawal)>, String>;

/// What one attempt ended in, for the caller's logs and answer.
#[derive(Debug, Clone)]
pub enum Attempt {
    /// The withdrawal reached a status past `pending`, or the job was stale: the row as it
    /// now stands.
    Recorded(Box<Withdrawal>),
    /// Outcome unknown; the job will run again later.
    Retrying,
    /// Outcome unknown and attempts used up; the job is parked for an operator.
    Parked,
}

/// The body of every attempt for `w`: built only from stored rows, so each retry sends the
/// same bytes.
fn request_of(w: &Withdrawal, travel_rule: Option<TravelRuleFields>) -> WithdrawalRequest {
    WithdrawalRequest {
        foreign_id: w.foreign_id.to_string(),
        amount: w.amount.to_string(),
        currency: w.currency.to_string(),
        convert_to: w.convert_to.as_ref().map(|c| c.to_string()),
        address: w.address.clone(),
        tag: w.tag.clone(),
        end_user_reference: Some(w.end_user_reference.clone()),
        travel_rule: travel_rule.unwrap_or_default(),
    }
}

/// The acceptance statement: for every withdrawal of `jobs` still `pending`, the status
/// change to `processing` with CoinsPaid's id and amounts, the outbox notification and the
/// job's removal, in one statement committed on its own (one round trip and one WAL flush for
/// the whole batch). The rows are locked in id order first, as the settlement batch locks
/// them, so two batches cannot deadlock. `UPDATE ... WHERE status = 'pending'` re-checks the
/// status on the row it then sees: one a callback moved first is left to the general path.
async fn accept_statement(
    pool: &PgPool,
    jobs: &[(&Lease, &ProviderDetails)],
) -> Result<Vec<(RemovedJob, Withdrawal)>, sqlx::Error> {
    let from = WithdrawalStatus::Pending;
    let to = WithdrawalStatus::Processing;
    // Owned before the first await: the statement's future then borrows nothing of `jobs`.
    let ids: Vec<Uuid> = jobs.iter().map(|(l, _)| l.withdrawal_id).collect();
    let provider_ids: Vec<Option<i64>> = jobs.iter().map(|(_, d)| d.provider_id).collect();
    let provider_statuses: Vec<Option<String>> = jobs
        .iter()
        .map(|(_, d)| Some(d.provider_status.clone()).filter(|s| !s.is_empty()))
        .collect();
    let sent_amounts: Vec<Option<rust_decimal::Decimal>> = jobs
        .iter()
        .map(|(_, d)| d.sent.as_ref().map(|a| a.amount))
        .collect();
    let sent_currencies: Vec<Option<String>> = jobs
        .iter()
        .map(|(_, d)| d.sent.as_ref().map(|a| a.currency.clone()))
        .collect();
    let received_amounts: Vec<Option<rust_decimal::Decimal>> = jobs
        .iter()
        .map(|(_, d)| d.received.as_ref().map(|a| a.amount))
        .collect();
    let received_currencies: Vec<Option<String>> = jobs
        .iter()
        .map(|(_, d)| d.received.as_ref().map(|a| a.currency.clone()))
        .collect();
    let event_ids: Vec<Uuid> = jobs.iter().map(|_| Uuid::now_v7()).collect();
    // Its own transaction only for the batch settings (generic plan, no JIT; see
    // `db::begin_batch_transaction`): still one statement and one commit.
    let mut tx = crate::db::begin_batch_transaction(pool).await?;
    crate::faults::crash_point("before_record_commit");
    let rows = crate::notify::status_change_query!(
        query!(),
        ["WITH input AS (
             SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::numeric[],
                                  $5::text[], $6::numeric[], $7::text[], $8::uuid[])
                 AS i(id, provider_id, provider_status, sent_amount, sent_currency,
                      received_amount, received_currency, event_id)),
         locked AS (
             SELECT w.id FROM withdrawals w
             WHERE w.id IN (SELECT id FROM input) AND w.status = $9
             ORDER BY w.id
             FOR UPDATE),
         moved AS (
             UPDATE withdrawals w SET
                 status = $10,
                 provider_id = COALESCE(w.provider_id, i.provider_id),
                 provider_status = COALESCE(i.provider_status, w.provider_status),
                 sent_amount = COALESCE(i.sent_amount, w.sent_amount),
                 sent_currency = COALESCE(i.sent_currency, w.sent_currency),
                 received_amount = COALESCE(i.received_amount, w.received_amount),
                 received_currency = COALESCE(i.received_currency, w.received_currency),
                 updated_at = now()
             FROM locked l JOIN input i ON i.id = l.id
             WHERE w.id = l.id AND w.status = $9
             RETURNING w.*, i.event_id, $9::text AS previous_status),
         job AS (
             DELETE FROM submission_jobs j USING moved m
             WHERE j.withdrawal_id = m.id
             RETURNING j.withdrawal_id, j.lease_id),
         outbox AS (
             INSERT INTO notification_outbox (id, withdrawal_id, payload)
             SELECT moved.event_id, moved.id, "],
        [" FROM moved)
         SELECT job.withdrawal_id IS NOT NULL AS \"had_job!\", job.lease_id AS job_lease, "],
        [" FROM moved LEFT JOIN job ON job.withdrawal_id = moved.id"],
        &ids,
        &provider_ids as &[Option<i64>],
        &provider_statuses as &[Option<String>],
        &sent_amounts as &[Option<rust_decimal::Decimal>],
        &sent_currencies as &[Option<String>],
        &received_amounts as &[Option<rust_decimal::Decimal>],
        &received_currencies as &[Option<String>],
        &event_ids,
        from.as_str(),
        to.as_str()
    )
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let job = row.had_job.then_some(row.job_lease);
            (job, withdrawal_from_record!(row))
        })
        .collect())
}

/// One acceptance in its own statement.
async fn record_accepted_alone(
    pool: &PgPool,
    lease: &Lease,
    details: &ProviderDetails,
) -> Result<Option<(bool, Withdrawal)>, sqlx::Error> {
    let mut rows = accept_statement(pool, &[(lease, details)]).await?;
    Ok(rows
        .pop()
        .map(|(job_lease, w)| (lease_was_ours(lease, job_lease), w)))
}

/// Whether the job the acceptance removed (`job_lease`: its lease, `None` when there was no
/// job) was still leased to `lease`.
fn lease_was_ours(lease: &Lease, job_lease: RemovedJob) -> bool {
    job_lease == Some(Some(lease.lease_id))
}

/// A batch of acceptances in one statement; one answer per job, in order.
async fn record_accepted_batch(pool: &PgPool, jobs: Vec<Accepted>) -> Vec<AcceptedResult> {
    let pairs: Vec<(&Lease, &ProviderDetails)> =
        jobs.iter().map(|j| (&j.lease, &j.details)).collect();
    match accept_statement(pool, &pairs).await {
        Ok(rows) => {
            let mut by_id: HashMap<Uuid, (RemovedJob, Withdrawal)> = rows
                .into_iter()
                .map(|(job_lease, w)| (w.id, (job_lease, w)))
                .collect();
            jobs.iter()
                .map(|j| {
                    Ok(by_id
                        .remove(&j.lease.withdrawal_id)
                        .map(|(job_lease, w)| (lease_was_ours(&j.lease, job_lease), w)))
                })
                .collect()
        }
        Err(err) => {
            tracing::warn!(error = %err, requests = jobs.len(), "acceptance batch failed as a whole; each is recorded alone");
            metrics::counter!("payoutd_batch_failures_total", "batch" => "accepted").increment(1);
            jobs.iter().map(|_| Err(err.to_string())).collect()
        }
    }
}

impl Submitter {
    pub fn new(pool: PgPool, client: CoinsPaidClient, settings: WorkerSettings) -> Self {
        let quiet = client.timeout() + Duration::from_secs(settings.resend_margin_secs);
        Self {
            pool,
            client,
            settings,
            quiet,
            accepted: None,
        }
    }

    /// The process's one bound on withdrawal work at CoinsPaid
    /// ([`CoinsPaidClient::call_slots`]): every caller of an attempt holds one slot for it.
    pub fn call_slots(&self) -> Arc<Semaphore> {
        self.client.call_slots()
    }

    /// The quiet period before a withdrawal whose outcome is unknown may be sent again.
    pub fn resend_quiet_period(&self) -> Duration {
        self.quiet
    }

    /// What the queue records for an attempt whose request may have reached CoinsPaid.
    fn maybe_created(&self) -> queue::Sent {
        queue::Sent::MaybeCreated { quiet: self.quiet }
    }

    /// Records CoinsPaid's acceptances in shared statements when `[batching]` is on: each
    /// create's second write, gathered like the creates themselves (see `batch.rs`).
    pub fn with_batching(mut self, batching: &BatchSettings) -> Self {
        if batching.enabled {
            let pool = self.pool.clone();
            self.accepted = Some(Batcher::spawn("accepted", batching, move |jobs| {
                let pool = pool.clone();
                async move { record_accepted_batch(&pool, jobs).await }
            }));
        }
        self
    }

    pub fn lease_duration(&self) -> Duration {
        Duration::from_secs(self.settings.lease_secs)
    }

    /// Makes one submission attempt under `lease`. No transaction is open during the provider
    /// call; the answer is recorded in its own transaction, under the withdrawal's row lock.
    pub async fn attempt(&self, lease: Lease) -> Result<Attempt, Error> {
        let Some(withdrawal) = store::get(&self.pool, lease.withdrawal_id).await? else {
            return Err(Error::Database(sqlx::Error::RowNotFound));
        };
        self.attempt_with(lease, withdrawal).await
    }

    /// An attempt for a withdrawal the caller has just read or, for the request that created
    /// it and holds its lease, just written: no need to read it again.
    pub async fn attempt_with(
        &self,
        lease: Lease,
        withdrawal: Withdrawal,
    ) -> Result<Attempt, Error> {
        // Not known whether travel-rule data was stored: read it back.
        self.attempt_created(lease, withdrawal, true).await
    }

    /// [`Self::attempt_with`] for the request that has just created `withdrawal` and knows
    /// whether it stored travel-rule data: without any, there is nothing to read back (one
    /// query fewer on every create).
    pub async fn attempt_created(
        &self,
        lease: Lease,
        withdrawal: Withdrawal,
        has_travel_rule: bool,
    ) -> Result<Attempt, Error> {
        let span = tracing::info_span!(
            "withdrawal.submit",
            withdrawal_id = %withdrawal.id,
            foreign_id = %withdrawal.foreign_id,
            attempt = lease.attempts,
        );
        self.attempt_for(lease, withdrawal, has_travel_rule)
            .instrument(span)
            .await
    }

    async fn attempt_for(
        &self,
        lease: Lease,
        withdrawal: Withdrawal,
        may_have_travel_rule: bool,
    ) -> Result<Attempt, Error> {
        if withdrawal.status != WithdrawalStatus::Pending {
            // A callback got here first: CoinsPaid has it, nothing left to submit.
            let mut conn = self.pool.acquire().await?;
            queue::discard(&mut conn, withdrawal.id).await?;
            tracing::info!(status = %withdrawal.status, "submission no longer needed");
            return Ok(Attempt::Recorded(Box::new(withdrawal)));
        }
        let travel_rule = if may_have_travel_rule {
            crate::withdrawals::travel_rule::load(&self.pool, withdrawal.id).await?
        } else {
            None
        };
        let request = request_of(&withdrawal, travel_rule);
        // CoinsPaid's text about this withdrawal may quote its travel-rule data.
        let redactor = request.travel_rule.redactor();
        if withdrawal.outcome_unknown {
            if let Some(done) = self
                .look_up_before_resend(&lease, &withdrawal, &redactor)
                .await?
            {
                return Ok(done);
            }
        }
        crate::faults::crash_point("before_provider_call");
        let outcome = self.client.submit_withdrawal(&request).await;
        crate::faults::crash_point("after_provider_call");
        metrics::counter!("payoutd_submissions_total", "outcome" => outcome.label()).increment(1);
        match outcome {
            SubmitOutcome::Accepted(data) => {
                tracing::info!(provider_id = data.id, provider_status = ?data.status, "CoinsPaid accepted the withdrawal");
                let details = ProviderDetails {
                    provider_id: Some(data.id),
                    provider_status: data.status.unwrap_or_default(),
                    kind: data.kind,
                    sent: data
                        .sender_amount
                        .zip(data.sender_currency)
                        .map(|(amount, currency)| CurrencyAmount { currency, amount }),
                    received: data
                        .receiver_amount
                        .zip(data.receiver_currency)
                        .map(|(amount, currency)| CurrencyAmount { currency, amount }),
                    ..ProviderDetails::default()
                };
                self.record_accepted(&lease, details).await
            }
            SubmitOutcome::Refused { status, reason } if !withdrawal.outcome_unknown => {
                tracing::warn!(http_status = status, %reason, "CoinsPaid refused the withdrawal; releasing the hold");
                let details = ProviderDetails {
                    error: Some(reason),
                    ..ProviderDetails::default()
                };
                self.record(&lease, &[(ProviderEvent::SubmitRefused, details)])
                    .await
            }
            SubmitOutcome::Refused { status, reason } => {
                tracing::warn!(http_status = status, %reason, "CoinsPaid refused a withdrawal it may already have; looking it up, nothing is released");
                self.settle_by_lookup(
                    &lease,
                    withdrawal.foreign_id.as_str(),
                    &redactor,
                    &format!("refused after an unknown outcome ({reason})"),
                    IfNoRecord::Park,
                )
                .await
            }
            SubmitOutcome::AlreadyExists { reason } => {
                tracing::warn!(%reason, "CoinsPaid already knows this foreign_id; looking it up");
                self.settle_by_lookup(
                    &lease,
                    withdrawal.foreign_id.as_str(),
                    &redactor,
                    &format!("foreign_id refused as used ({reason})"),
                    IfNoRecord::Retry,
                )
                .await
            }
            SubmitOutcome::OursToFix { status, reason } => {
                // Our key, signature or body: every payout fails until someone fixes it. A
                // proxy or a half-applied key change could still have passed it on: the payout
                // may exist.
                tracing::error!(http_status = status, %reason, "CoinsPaid refused our credentials or body format; check COINSPAID_API_KEY/SECRET; amount stays held, will look it up and retry");
                self.retry(&lease, &reason, self.maybe_created()).await
            }
            SubmitOutcome::Unknown(err) => {
                self.retry(&lease, &err.to_string(), self.maybe_created())
                    .await
            }
        }
    }

    /// The look-up that must come before a withdrawal whose outcome is unknown is sent again.
    /// `Some` when the attempt ends here: CoinsPaid's record was applied, the look-up failed
    /// (retried later), or CoinsPaid has no record but the quiet period has not passed yet (the
    /// job waits for it, uncounted). `None`: CoinsPaid has no record after the quiet period, so
    /// the same request may go again.
    async fn look_up_before_resend(
        &self,
        lease: &Lease,
        withdrawal: &Withdrawal,
        redactor: &Redactor,
    ) -> Result<Option<Attempt>, Error> {
        let err = match self
            .client
            .transaction_info(withdrawal.foreign_id.as_str())
            .await
        {
            Ok(details) => {
                metrics::counter!("payoutd_lookups_total", "result" => "found").increment(1);
                tracing::info!(provider_status = %details.provider_status, "CoinsPaid has the withdrawal; not sending it again");
                return self
                    .apply_lookup(lease, &details, "found by the look-up before a resend")
                    .await
                    .map(Some);
            }
            Err(err) => err.scrubbed(redactor),
        };
        metrics::counter!("payoutd_lookups_total", "result" => err.label()).increment(1);
        if !err.is_no_record() {
            tracing::warn!(error = %err, "look-up before a resend failed; nothing is sent, will ask again");
            let error = format!("look-up before a resend failed: {err}");
            return self
                .retry(lease, &error, queue::Sent::NothingUnknown)
                .await
                .map(Some);
        }
        let mut conn = self.pool.acquire().await?;
        if let Some(wait) = queue::resend_wait(&mut conn, withdrawal.id).await? {
            drop(conn);
            tracing::info!(wait_ms = wait.as_millis() as u64, "CoinsPaid has no record yet; an earlier request may still be on its way, so the resend waits out the quiet period");
            let why = "no record at CoinsPaid yet; waiting out the quiet period before a resend";
            queue::hand_over_unused(&self.pool, lease, why, wait).await?;
            return Ok(Some(Attempt::Retrying));
        }
        tracing::warn!(error = %err, "CoinsPaid has no record of the withdrawal after the quiet period; sending it again with the same foreign_id");
        Ok(None)
    }

    /// Asks CoinsPaid what became of the withdrawal after a refusal and applies its answer like
    /// a callback's (checked against the withdrawal first). Without a record, nothing is
    /// released: a failed look-up is retried, and "no record" is retried or parked for a person
    /// as `if_no_record` says. A refusal of a foreign_id as used means the payout may exist, so
    /// that is recorded for good either way.
    async fn settle_by_lookup(
        &self,
        lease: &Lease,
        foreign_id: &str,
        redactor: &Redactor,
        why: &str,
        if_no_record: IfNoRecord,
    ) -> Result<Attempt, Error> {
        let details = match self.client.transaction_info(foreign_id).await {
            Ok(details) => details,
            Err(err) => {
                let err = err.scrubbed(redactor);
                metrics::counter!("payoutd_lookups_total", "result" => err.label()).increment(1);
                return match (err.is_no_record(), if_no_record) {
                    (true, IfNoRecord::Park) => {
                        let error = format!("{why}; CoinsPaid has no record: {err}");
                        self.park(lease, &error).await
                    }
                    _ => {
                        let error = format!("{why}; look-up gave no record: {err}");
                        self.retry(lease, &error, self.maybe_created()).await
                    }
                };
            }
        };
        metrics::counter!("payoutd_lookups_total", "result" => "found").increment(1);
        self.apply_lookup(lease, &details, why).await
    }

    /// Applies a look-up's record under the row lock, as a callback's would be. A record that
    /// does not match the withdrawal moves nothing and parks the job for a person.
    async fn apply_lookup(
        &self,
        lease: &Lease,
        details: &ProviderDetails,
        why: &str,
    ) -> Result<Attempt, Error> {
        let mut tx = self.pool.begin().await?;
        let current = store::lock_by_id(&mut tx, lease.withdrawal_id)
            .await?
            .ok_or(sqlx::Error::RowNotFound)?;
        let applied = transition::apply_report(&mut tx, current, details).await?;
        if applied.withdrawal.status == WithdrawalStatus::Pending {
            // The record did not match: nothing moved, and no retry can tell more.
            tx.commit().await?;
            let error = format!(
                "{why}; look-up did not match: {}",
                applied.anomaly.as_deref().unwrap_or("unknown")
            );
            return self.park(lease, &error).await;
        }
        // Past pending: the settlement removed the job, whoever held it.
        tx.commit().await?;
        tracing::info!(provider_status = %details.provider_status, status = %applied.withdrawal.status, "settled from CoinsPaid's look-up");
        Ok(Attempt::Recorded(Box::new(applied.withdrawal)))
    }

    /// Records provider events and completes the job, in one transaction.
    async fn record(
        &self,
        lease: &Lease,
        events: &[(ProviderEvent, ProviderDetails)],
    ) -> Result<Attempt, Error> {
        let mut tx = self.pool.begin().await?;
        let mut current = store::lock_by_id(&mut tx, lease.withdrawal_id)
            .await?
            .ok_or(sqlx::Error::RowNotFound)?;
        let mut removed = None;
        for (event, details) in events {
            if current.status.apply(event) == crate::domain::Transition::Duplicate {
                // Nothing to write (an acceptance arriving after the callback that settled
                // the withdrawal): the job is handled below, as for any write that removed
                // none.
                tracing::debug!(status = %current.status, event = ?event, "repeated or stale provider report ignored");
                continue;
            }
            let applied = transition::apply(&mut tx, current, *event, details).await?;
            removed = removed.or(applied.job);
            current = applied.withdrawal;
        }
        // A settlement that left the withdrawal past pending removed the job, whoever held it.
        // When this one removed none: ours is still there, another worker's is (our lease ran
        // out), or an earlier settlement removed it (a callback that beat the acceptance,
        // which is no lease of anyone's running out).
        let ours = match removed {
            Some(job) => lease_was_ours(lease, Some(job)),
            None => {
                queue::complete(&mut tx, lease).await?
                    || !queue::discard(&mut tx, lease.withdrawal_id).await?
            }
        };
        if !ours {
            tracing::warn!("submission lease had expired; outcome recorded anyway");
        }
        crate::faults::crash_point("before_record_commit");
        tx.commit().await?;
        Ok(Attempt::Recorded(Box::new(current)))
    }

    /// Records CoinsPaid's acceptance of a withdrawal still `pending`: the status change, the
    /// outbox notification and the job's removal in one statement ([`accept_statement`]),
    /// shared with the other acceptances of the moment when batching is on (this is every
    /// create's second write, see BENCHMARKS.md). A withdrawal a callback moved first is left
    /// to the general path ([`Self::record`]), which applies the acceptance under the row lock
    /// through the state machine. The job is removed whoever holds it, as `record` does.
    async fn record_accepted(
        &self,
        lease: &Lease,
        details: ProviderDetails,
    ) -> Result<Attempt, Error> {
        let from = WithdrawalStatus::Pending;
        let to = WithdrawalStatus::Processing;
        let crate::domain::Transition::Move {
            to: WithdrawalStatus::Processing,
            effect: crate::domain::Effect::None,
        } = from.apply(&ProviderEvent::SubmitAccepted)
        else {
            // Not a plain status change (the state machine changed): the general path.
            return self
                .record(lease, &[(ProviderEvent::SubmitAccepted, details)])
                .await;
        };
        let row = match &self.accepted {
            Some(batcher) => {
                let job = Accepted {
                    lease: *lease,
                    details: details.clone(),
                };
                match batcher.submit(job).await {
                    Ok(Ok(row)) => row,
                    // The batch failed as a whole (or its runner is gone): this one alone.
                    Ok(Err(_)) | Err(_) => {
                        record_accepted_alone(&self.pool, lease, &details).await?
                    }
                }
            }
            None => record_accepted_alone(&self.pool, lease, &details).await?,
        };
        let Some((ours, updated)) = row else {
            // No longer pending: a callback (or a person) got there first.
            return self
                .record(lease, &[(ProviderEvent::SubmitAccepted, details)])
                .await;
        };
        if !ours {
            tracing::warn!("submission lease had expired; outcome recorded anyway");
        }
        tracing::info!(from = %from, to = %to, provider_status = %details.provider_status, "withdrawal status changed");
        metrics::counter!("payoutd_withdrawal_transitions_total",
            "from" => from.as_str(), "to" => to.as_str())
        .increment(1);
        Ok(Attempt::Recorded(Box::new(updated)))
    }

    /// Tries again later; parks after the last attempt. `sent` says whether this attempt's
    /// request may have reached CoinsPaid without a definitive answer.
    async fn retry(&self, lease: &Lease, error: &str, sent: queue::Sent) -> Result<Attempt, Error> {
        let park = lease.attempts >= self.settings.max_attempts;
        let delay = crate::background::backoff(
            lease.attempts,
            Duration::from_millis(self.settings.backoff_base_ms),
            Duration::from_secs(self.settings.backoff_max_secs),
        );
        queue::retry_later(
            &self.pool,
            lease,
            error,
            delay,
            park.then_some(ParkReason::AttemptsExhausted),
            sent,
        )
        .await?;
        if park {
            tracing::error!(%error, attempts = lease.attempts, "submission outcome still unknown after the last attempt; parked, amount stays held");
            metrics::counter!("payoutd_submissions_parked_total", "reason" => ParkReason::AttemptsExhausted.as_str()).increment(1);
            Ok(Attempt::Parked)
        } else {
            tracing::warn!(%error, retry_in_ms = delay.as_millis() as u64, "submission outcome unknown; will retry with the same foreign_id");
            Ok(Attempt::Retrying)
        }
    }

    /// Parks the job for a person now; the amount stays held.
    async fn park(&self, lease: &Lease, error: &str) -> Result<Attempt, Error> {
        queue::retry_later(
            &self.pool,
            lease,
            error,
            Duration::ZERO,
            Some(ParkReason::NeedsOperator),
            self.maybe_created(),
        )
        .await?;
        tracing::error!(%error, "what happened to this payout cannot be told from CoinsPaid's answers; parked for an operator, amount stays held");
        metrics::counter!("payoutd_submissions_parked_total", "reason" => ParkReason::NeedsOperator.as_str()).increment(1);
        Ok(Attempt::Parked)
    }

    /// Runs every job that is due now, one after another; returns how many ran. Tests call
    /// this to drive the queue deterministically; the worker loop calls
    /// [`Self::drain_concurrently`].
    pub async fn drain_once(&self) -> Result<usize, Error> {
        let mut ran = 0;
        while let Some(lease) =
            queue::claim_due(&self.pool, self.lease_duration(), self.quiet).await?
        {
            let _slot = self.client.call_slot().await;
            if let Err(err) = self.attempt(lease).await {
                // The lease expires and the job runs again; nothing was half-written.
                attempt_failed(lease.withdrawal_id, &err);
            }
            ran += 1;
        }
        Ok(ran)
    }

    /// The worker's step: [`Self::drain_once`], but up to `worker.max_in_flight` attempts at
    /// once, each under its own lease (so never two for one withdrawal). After an outage
    /// thousands of jobs fall due together; one at a time, each waiting for CoinsPaid's
    /// answer, they would take hours. Every attempt started ends before this returns.
    pub async fn drain_concurrently(&self) -> Result<usize, Error> {
        // The process's shared bound: first attempts, look-ups and operators take the same slots.
        let slots = self.client.call_slots();
        let mut running = tokio::task::JoinSet::new();
        let mut ran = 0;
        let claimed = loop {
            let Ok(slot) = slots.clone().acquire_owned().await else {
                break Ok(());
            };
            let lease = match queue::claim_due(&self.pool, self.lease_duration(), self.quiet).await
            {
                Ok(Some(lease)) => lease,
                Ok(None) => break Ok(()),
                // Stop claiming, but let the attempts under way finish first.
                Err(err) => break Err(err),
            };
            let submitter = self.clone();
            running.spawn(async move {
                let _slot = slot;
                if let Err(err) = submitter.attempt(lease).await {
                    // The lease expires and the job runs again; nothing was half-written.
                    attempt_failed(lease.withdrawal_id, &err);
                }
            });
            ran += 1;
        };
        while let Some(ended) = running.join_next().await {
            if let Err(err) = ended {
                // As an error above: the lease expires and the job runs again.
                tracing::error!(error = %err, "submission attempt panicked");
            }
        }
        claimed?;
        Ok(ran)
    }

    /// The worker loop: drain (concurrently), sleep, repeat, until `shutdown` fires. The
    /// current step always finishes before the loop exits.
    pub async fn run(self, shutdown: tokio::sync::watch::Receiver<bool>) {
        let interval = Duration::from_millis(self.settings.poll_interval_ms);
        crate::background::every("submission worker", interval, shutdown, || async {
            crate::db::failover::step_done("submission worker", self.drain_concurrently().await);
        })
        .await;
    }
}

/// A submission attempt that failed before recording an outcome. While the database is away
/// every due job fails this way in every round: that is one outage, reported once.
pub(crate) fn attempt_failed(withdrawal_id: Uuid, err: &Error) {
    use crate::db::failover::MaybeUnavailable;
    if err.database_unavailable() {
        crate::db::failover::report("submission attempt", err);
    } else {
        tracing::error!(%withdrawal_id, error = %err, "submission attempt failed");
    }
}
