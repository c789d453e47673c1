//! Group commit of withdrawal creates: concurrent `POST /v1/withdrawals` share one
//! transaction and a handful of multi-row statements, each request still answered with its
//! own outcome, only after its own rows are committed.
//!
//! One batch, one transaction:
//! 1. claim every idempotency key (one `INSERT ... ON CONFLICT DO NOTHING`, in key order);
//! 2. lock the balance rows of the claimed requests (`FOR UPDATE`, in (user, currency) order);
//! 3. with capped currencies in the batch, take their merchant-cap advisory locks (in order);
//! 4. read, in a statement that starts after those locks were granted (so it sees every create
//!    committed while the batch waited), each pair's limits and 24-hour sum, each user's review
//!    facts, the pauses and the merchant-wide sums;
//! 5. decide each request in Rust with [`decide`] (pure): balance, limits, cap, approval
//!    policy, in arrival order, so two requests of one user in one batch see each other;
//! 6. write every accepted request (hold, withdrawal, hold entry, job, travel rule, audit) and
//!    give back the refused ones' keys, in one statement; commit.
//!
//! The locks are taken in the same order as the single-request path (key, balance, cap), so a
//! batch and a single request cannot deadlock. A key already claimed (a replay, or the same
//! key twice in one batch) is answered by the single path after the commit, which replays it.
//! A batch that fails as a whole (a deadlock with another path, a lost connection) is rolled
//! back and each of its requests runs alone.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use rust_decimal::Decimal;
use sqlx::{FromRow, PgConnection, PgPool, Row};
use uuid::Uuid;

use super::request::{self, Admission, CreateError, CreateOutcome, Refusal, ValidWithdrawal};
use super::store::{Withdrawal, COLUMNS};
use crate::batch::{BatchSettings, Batcher};
use crate::config::CurrencyLimits;
use crate::domain::{ForeignId, IdempotencyKey};
use crate::operators::policy::{self, UserFacts};
use crate::operators::settings::ApprovalSettings;
use crate::queue::Lease;

/// One create, as the API hands it over.
#[derive(Debug, Clone)]
pub struct CreateJob {
    pub key: IdempotencyKey,
    pub request: ValidWithdrawal,
}

pub type CreateResult = Result<CreateOutcome, CreateError>;

/// The rules a create is judged by, shared by the batch and the single path.
struct Rules {
    pool: PgPool,
    /// How long the job a create writes stays leased to the request for its first attempt.
    lease_for: Duration,
    limits: Arc<HashMap<String, CurrencyLimits>>,
    merchant_caps: Arc<HashMap<String, Decimal>>,
    approval: Arc<ApprovalSettings>,
}

/// Creates withdrawals, in batches when `[batching]` is on.
#[derive(Clone)]
pub struct Creates {
    rules: Arc<Rules>,
    batcher: Option<Batcher<CreateJob, CreateResult>>,
}

impl Creates {
    pub fn new(
        pool: PgPool,
        lease_for: Duration,
        limits: Arc<HashMap<String, CurrencyLimits>>,
        merchant_caps: Arc<HashMap<String, Decimal>>,
        approval: Arc<ApprovalSettings>,
        batching: &BatchSettings,
    ) -> Self {
        let rules = Arc::new(Rules {
            pool,
            lease_for,
            limits,
            merchant_caps,
            approval,
        });
        let batcher = batching.enabled.then(|| {
            let rules = rules.clone();
            Batcher::spawn("create", batching, move |jobs| {
                let rules = rules.clone();
                async move { rules.batch(jobs).await }
            })
        });
        Self { rules, batcher }
    }

    /// Holds and stores one withdrawal (see [`request::create_with`] for what that means):
    /// in a batch with whatever else is being created right now, or alone.
    pub async fn create(&self, key: IdempotencyKey, request: ValidWithdrawal) -> CreateResult {
        let Some(batcher) = &self.batcher else {
            return self.rules.alone(&key, &request).await;
        };
        let job = CreateJob {
            key: key.clone(),
            request: request.clone(),
        };
        match batcher.submit(job).await {
            Ok(result) => result,
            Err(crate::batch::Unavailable) => self.rules.alone(&key, &request).await,
        }
    }
}

/// What the approval policy needs to know about a user, read in the caller's transaction.
/// `needs_history`: only the first-withdrawal rule walks the user's withdrawals.
async fn user_facts(
    conn: &mut PgConnection,
    user_id: &str,
    needs_history: bool,
) -> Result<UserFacts, sqlx::Error> {
    let (flagged, has_confirmed): (Option<String>, bool) = sqlx::query_as(
        "SELECT (SELECT reason FROM user_review_flags WHERE user_id = $1),
                CASE WHEN $2 THEN EXISTS (SELECT 1 FROM withdrawals
                                          WHERE user_id = $1 AND status = 'confirmed')
                     ELSE true END",
    )
    .bind(user_id)
    .bind(needs_history)
    .fetch_one(conn)
    .await?;
    Ok(UserFacts {
        flagged,
        has_confirmed,
    })
}

impl Rules {
    fn limits_of(&self, currency: &str) -> CurrencyLimits {
        self.limits.get(currency).cloned().unwrap_or_default()
    }

    /// One request in its own transaction: the path of every create when `[batching]` is off,
    /// and the fallback for a batch that failed and for a key claimed elsewhere.
    async fn alone(&self, key: &IdempotencyKey, request: &ValidWithdrawal) -> CreateResult {
        let facts = {
            let mut conn = self.pool.acquire().await?;
            user_facts(
                &mut conn,
                request.user_id.as_str(),
                self.approval.first_withdrawal,
            )
            .await?
        };
        let admission = Admission {
            review: policy::review_reason(
                &self.approval,
                request.currency.as_str(),
                request.amount.value(),
                &facts,
            ),
            merchant_cap: self.merchant_caps.get(request.currency.as_str()).copied(),
        };
        request::create(
            &self.pool,
            key,
            request,
            &self.limits_of(request.currency.as_str()),
            &admission,
            self.lease_for,
        )
        .await
    }

    async fn batch(self: Arc<Self>, jobs: Vec<CreateJob>) -> Vec<CreateResult> {
        // A key repeated within the batch waits for the first of its kind, then replays it.
        let mut seen = HashSet::new();
        let (grouped, repeated): (Vec<usize>, Vec<usize>) =
            (0..jobs.len()).partition(|&i| seen.insert(jobs[i].key.as_str()));
        let mut results: Vec<Option<CreateResult>> = jobs.iter().map(|_| None).collect();
        let mut alone = repeated;
        let group: Vec<&CreateJob> = grouped.iter().map(|&i| &jobs[i]).collect();
        match self.commit_group(&group).await {
            Ok(outcomes) => {
                for (&i, outcome) in grouped.iter().zip(outcomes) {
                    match outcome {
                        Some(result) => results[i] = Some(result),
                        None => alone.push(i),
                    }
                }
            }
            Err(err) => {
                if crate::failover::MaybeUnavailable::database_unavailable(&err) {
                    crate::failover::report("create batch", &err);
                } else {
                    tracing::warn!(error = %err, requests = group.len(), "create batch failed as a whole; its requests run alone");
                }
                metrics::counter!("payoutd_batch_failures_total", "batch" => "create").increment(1);
                alone.extend(grouped);
            }
        }
        let mut running = tokio::task::JoinSet::new();
        for i in alone {
            let (rules, job) = (self.clone(), jobs[i].clone());
            running.spawn(async move { (i, rules.alone(&job.key, &job.request).await) });
        }
        while let Some(done) = running.join_next().await {
            match done {
                Ok((i, answer)) => results[i] = Some(answer),
                // A panic there is a bug; its caller gets "unavailable" and works alone.
                Err(err) => std::panic::resume_unwind(err.into_panic()),
            }
        }
        results
            .into_iter()
            .map(|r| r.expect("every request of the batch was answered"))
            .collect()
    }

    /// The batch's transaction. Per request: `Some(result)`, or `None` when its key was
    /// already claimed (the single path then replays it).
    async fn commit_group(
        &self,
        jobs: &[&CreateJob],
    ) -> Result<Vec<Option<CreateResult>>, sqlx::Error> {
        let rows: Vec<Prepared> = jobs.iter().map(|job| Prepared::new(job)).collect();
        let mut tx = crate::db::begin_batch_transaction(&self.pool).await?;

        // 1. Keys, in key order (as every batch does, so two batches cannot deadlock on them).
        let claimed: HashSet<String> = sqlx::query_scalar(
            "INSERT INTO idempotency_keys (key, request_hash, withdrawal_id)
             SELECT * FROM unnest($1::text[], $2::bytea[], $3::uuid[]) ORDER BY 1
             ON CONFLICT (key) DO NOTHING
             RETURNING key",
        )
        .bind(rows.iter().map(|r| r.job.key.as_str()).collect::<Vec<_>>())
        .bind(
            rows.iter()
                .map(|r| r.fingerprint.clone())
                .collect::<Vec<_>>(),
        )
        .bind(rows.iter().map(|r| r.id).collect::<Vec<_>>())
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .collect();
        let candidates: Vec<usize> = (0..rows.len())
            .filter(|&i| claimed.contains(rows[i].job.key.as_str()))
            .collect();
        if candidates.is_empty() {
            tx.rollback().await?;
            return Ok(rows.iter().map(|_| None).collect());
        }

        // 2. Balance rows, in (user, currency) order.
        let pairs: BTreeSet<(&str, &str)> = candidates
            .iter()
            .map(|&i| (rows[i].user_id(), rows[i].currency()))
            .collect();
        let (pair_users, pair_currencies): (Vec<&str>, Vec<&str>) = pairs.iter().copied().unzip();
        let balances = crate::ledger::lock_balances(&mut tx, &pair_users, &pair_currencies).await?;

        // 3. Merchant caps: the advisory lock per capped currency, after the balance rows,
        //    as `limits::check_merchant_cap` takes it.
        let capped: BTreeSet<&str> = pair_currencies
            .iter()
            .copied()
            .filter(|c| self.merchant_caps.contains_key(*c))
            .collect();
        for currency in &capped {
            sqlx::query(
                "SELECT pg_advisory_xact_lock(hashtextextended('payoutd.merchant_cap.' || $1, 0))",
            )
            .bind(*currency)
            .execute(&mut *tx)
            .await?;
        }

        // 4. What the rules need, read after every lock above was granted.
        let defaults: Vec<CurrencyLimits> =
            pair_currencies.iter().map(|c| self.limits_of(c)).collect();
        let capped: Vec<&str> = capped.into_iter().collect();
        let facts_rows = sqlx::query(
            // Each look-up is a LATERAL subquery whose condition on the outer row or a
            // parameter becomes a one-time filter: it runs only when its rule applies. (As
            // CASE/EXISTS expressions, the generic plan this statement runs with may hash a
            // whole table, e.g. every confirmed withdrawal, on every batch.)
            "SELECT i.user_id, i.currency,
                    COALESCE(l.max_per_withdrawal, i.default_max) AS max_per_withdrawal,
                    COALESCE(l.max_per_day, i.default_day) AS max_per_day,
                    COALESCE(day.used, 0) AS used,
                    f.reason AS flagged,
                    NOT $5 OR confirmed.found IS NOT NULL AS has_confirmed,
                    pause.found IS NOT NULL AS paused,
                    cap.used AS cap_used
             FROM unnest($1::text[], $2::text[], $3::numeric[], $4::numeric[])
                  AS i(user_id, currency, default_max, default_day)
             LEFT JOIN user_limits l ON l.user_id = i.user_id AND l.currency = i.currency
             LEFT JOIN user_review_flags f ON f.user_id = i.user_id
             LEFT JOIN LATERAL (
                 SELECT sum(w.amount) AS used FROM withdrawals w
                 WHERE COALESCE(l.max_per_day, i.default_day) IS NOT NULL
                   AND w.user_id = i.user_id AND w.currency = i.currency
                   AND w.created_at > now() - interval '24 hours'
                   AND w.status NOT IN ('cancelled', 'rejected')) day ON true
             LEFT JOIN LATERAL (
                 SELECT 1 AS found FROM withdrawals w
                 WHERE $5 AND w.user_id = i.user_id AND w.status = 'confirmed'
                 LIMIT 1) confirmed ON true
             LEFT JOIN LATERAL (
                 SELECT 1 AS found FROM submission_pauses p
                 WHERE p.scope IN ('*', i.currency)
                 LIMIT 1) pause ON true
             LEFT JOIN LATERAL (
                 SELECT COALESCE(sum(w.amount), 0) AS used FROM withdrawals w
                 WHERE i.currency = ANY($6)
                   AND w.currency = i.currency
                   AND w.created_at > now() - interval '24 hours'
                   AND w.status NOT IN ('cancelled', 'rejected')
                 HAVING i.currency = ANY($6)) cap ON true",
        )
        .bind(&pair_users)
        .bind(&pair_currencies)
        .bind(
            defaults
                .iter()
                .map(|d| d.max_per_withdrawal)
                .collect::<Vec<_>>(),
        )
        .bind(defaults.iter().map(|d| d.max_per_day).collect::<Vec<_>>())
        .bind(self.approval.first_withdrawal)
        .bind(&capped)
        .fetch_all(&mut *tx)
        .await?;
        let mut facts = BatchFacts::default();
        for (user, currency, available) in balances {
            facts.available.insert((user, currency), available);
        }
        for row in facts_rows {
            let user: String = row.try_get("user_id")?;
            let currency: String = row.try_get("currency")?;
            facts.pairs.insert(
                (user.clone(), currency.clone()),
                PairFacts {
                    max_per_withdrawal: row.try_get("max_per_withdrawal")?,
                    max_per_day: row.try_get("max_per_day")?,
                    used: row.try_get("used")?,
                },
            );
            facts.users.insert(
                user,
                UserFacts {
                    flagged: row.try_get("flagged")?,
                    has_confirmed: row.try_get("has_confirmed")?,
                },
            );
            if row.try_get::<bool, _>("paused")? {
                facts.paused.insert(currency.clone());
            }
            if let Some(used) = row.try_get::<Option<Decimal>, _>("cap_used")? {
                if let Some(cap) = self.merchant_caps.get(&currency) {
                    facts.caps.insert(currency, (*cap, used));
                }
            }
        }

        // 5. Each request decided, in arrival order.
        let asked: Vec<Candidate> = candidates
            .iter()
            .map(|&i| Candidate {
                user_id: rows[i].user_id(),
                currency: rows[i].currency(),
                amount: rows[i].job.request.amount.value(),
            })
            .collect();
        let verdicts = decide(&asked, &facts, &self.approval);

        // 6. One statement writes every accepted request and frees the refused ones' keys.
        let accepted: Vec<(usize, &Option<String>, bool)> = candidates
            .iter()
            .zip(&verdicts)
            .filter_map(|(&i, v)| match v {
                Verdict::Accepted { review, paused } => Some((i, review, *paused)),
                Verdict::Refused(_) => None,
            })
            .collect();
        let refused_keys: Vec<&str> = candidates
            .iter()
            .zip(&verdicts)
            .filter(|(_, v)| matches!(v, Verdict::Refused(_)))
            .map(|(&i, _)| rows[i].job.key.as_str())
            .collect();
        let mut holds: BTreeMap<(&str, &str), Decimal> = BTreeMap::new();
        for &(i, _, _) in &accepted {
            *holds
                .entry((rows[i].user_id(), rows[i].currency()))
                .or_default() += rows[i].job.request.amount.value();
        }
        let stored = write(
            &mut tx,
            &rows,
            &accepted,
            &holds,
            &refused_keys,
            self.lease_for,
        )
        .await?;
        crate::faults::crash_point("create_batch_before_commit");
        tx.commit().await?;
        crate::faults::crash_point("after_hold_commit");

        let mut stored: HashMap<Uuid, Withdrawal> = stored.into_iter().map(|w| (w.id, w)).collect();
        let mut outcomes: Vec<Option<CreateResult>> = rows.iter().map(|_| None).collect();
        for (&i, verdict) in candidates.iter().zip(verdicts) {
            let row = &rows[i];
            outcomes[i] = Some(match verdict {
                Verdict::Refused(refusal) => Err(refusal.into()),
                Verdict::Accepted { review, paused } => {
                    let withdrawal = stored.remove(&row.id).ok_or(sqlx::Error::RowNotFound)?;
                    tracing::info!(
                        withdrawal_id = %withdrawal.id,
                        foreign_id = %withdrawal.foreign_id,
                        user_id = %withdrawal.user_id,
                        amount = %row.job.request.amount,
                        currency = %withdrawal.currency,
                        batch = rows.len(),
                        "withdrawal requested; amount held"
                    );
                    metrics::counter!("payoutd_withdrawals_created_total").increment(1);
                    if review.is_some() || paused {
                        tracing::info!(withdrawal_id = %withdrawal.id, review = review.is_some(), paused, "withdrawal held, not sent yet");
                        Ok(CreateOutcome::Held(withdrawal))
                    } else {
                        Ok(CreateOutcome::Created {
                            lease: Lease::first_attempt(withdrawal.id, row.lease_id),
                            withdrawal,
                        })
                    }
                }
            });
        }
        Ok(outcomes)
    }
}

/// A request with the identifiers it will be stored under, made before the transaction.
struct Prepared<'a> {
    job: &'a CreateJob,
    fingerprint: Vec<u8>,
    id: Uuid,
    foreign_id: ForeignId,
    /// The lease of the job written with it, held by the request for its first attempt.
    lease_id: Uuid,
}

impl<'a> Prepared<'a> {
    fn new(job: &'a CreateJob) -> Self {
        Self {
            job,
            fingerprint: job.request.fingerprint(),
            id: Uuid::now_v7(),
            foreign_id: ForeignId::generate(),
            lease_id: Uuid::now_v7(),
        }
    }

    fn user_id(&self) -> &str {
        self.job.request.user_id.as_str()
    }

    fn currency(&self) -> &str {
        self.job.request.currency.as_str()
    }
}

/// Writes the accepted requests and deletes the refused ones' keys, in one statement. Fails
/// (and so rolls the batch back) if a hold did not find the balance it was decided on.
async fn write(
    conn: &mut PgConnection,
    rows: &[Prepared<'_>],
    accepted: &[(usize, &Option<String>, bool)],
    holds: &BTreeMap<(&str, &str), Decimal>,
    refused_keys: &[&str],
    lease_for: Duration,
) -> Result<Vec<Withdrawal>, sqlx::Error> {
    let take = |f: &dyn Fn(&Prepared) -> Option<String>| -> Vec<Option<String>> {
        accepted.iter().map(|&(i, _, _)| f(&rows[i])).collect()
    };
    let ids_of = |f: &dyn Fn(&Prepared) -> Uuid| -> Vec<Uuid> {
        accepted.iter().map(|&(i, _, _)| f(&rows[i])).collect()
    };
    let ids: Vec<Uuid> = ids_of(&|r| r.id);
    let request = |i: usize| &rows[i].job.request;
    let result = sqlx::query(&format!(
        "WITH input AS (
             SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::numeric[], $5::text[],
                                  $6::text[], $7::text[], $8::text[], $9::text[], $10::text[],
                                  $11::bool[], $12::jsonb[], $13::uuid[], $14::uuid[],
                                  $19::uuid[])
                 AS i(id, foreign_id, user_id, amount, currency, convert_to, address, tag,
                      end_user_reference, review, paused, travel, entry_id, audit_id,
                      lease_id)),
         moved AS (
             UPDATE balances b
             SET available = b.available - h.total, held = b.held + h.total, updated_at = now()
             FROM unnest($15::text[], $16::text[], $17::numeric[]) AS h(user_id, currency, total)
             WHERE b.user_id = h.user_id AND b.currency = h.currency AND b.available >= h.total
             RETURNING b.user_id),
         stored AS (
             INSERT INTO withdrawals
                 (id, foreign_id, user_id, amount, currency, convert_to, address, tag,
                  end_user_reference, status, review_reason)
             SELECT id, foreign_id, user_id, amount, currency, convert_to, address, tag,
                    end_user_reference,
                    CASE WHEN review IS NULL THEN 'pending' ELSE 'awaiting_approval' END, review
             FROM input
             RETURNING {COLUMNS}),
         hold_entry AS (
             INSERT INTO ledger_entries (id, user_id, currency, kind, amount, withdrawal_id)
             SELECT entry_id, user_id, currency, 'hold', amount, id FROM input),
         -- Leased to each request for its first attempt, unless its currency is paused.
         job AS (
             INSERT INTO submission_jobs (withdrawal_id, lease_id, attempts, run_at)
             SELECT id, CASE WHEN paused THEN NULL ELSE lease_id END,
                    CASE WHEN paused THEN 0 ELSE 1 END,
                    CASE WHEN paused THEN now() ELSE now() + make_interval(secs => $20) END
             FROM input WHERE review IS NULL),
         travel AS (
             INSERT INTO withdrawal_travel_rules (withdrawal_id, data)
             SELECT id, travel FROM input WHERE travel IS NOT NULL),
         audit AS (
             INSERT INTO audit_log (id, actor, action, withdrawal_id, reason, after)
             SELECT audit_id, 'policy', 'hold_for_approval', id, review,
                    jsonb_build_object('status', 'awaiting_approval')
             FROM input WHERE review IS NOT NULL),
         freed AS (
             DELETE FROM idempotency_keys WHERE key = ANY($18::text[]))
         SELECT (SELECT count(*) FROM moved) AS holds_made, stored.*
         FROM stored"
    ))
    .bind(&ids)
    .bind(take(&|r| Some(r.foreign_id.as_str().to_owned())))
    .bind(take(&|r| Some(r.user_id().to_owned())))
    .bind(
        accepted
            .iter()
            .map(|&(i, _, _)| request(i).amount.value())
            .collect::<Vec<_>>(),
    )
    .bind(take(&|r| Some(r.currency().to_owned())))
    .bind(take(&|r| {
        r.job
            .request
            .convert_to
            .as_ref()
            .map(|c| c.as_str().to_owned())
    }))
    .bind(take(&|r| Some(r.job.request.address.clone())))
    .bind(take(&|r| r.job.request.tag.clone()))
    .bind(take(&|r| Some(r.job.request.end_user_reference.clone())))
    .bind(
        accepted
            .iter()
            .map(|&(_, review, _)| review.clone())
            .collect::<Vec<_>>(),
    )
    .bind(
        accepted
            .iter()
            .map(|&(_, _, paused)| paused)
            .collect::<Vec<_>>(),
    )
    .bind(
        accepted
            .iter()
            .map(|&(i, _, _)| request(i).travel_rule.to_json())
            .collect::<Vec<_>>(),
    )
    .bind(accepted.iter().map(|_| Uuid::now_v7()).collect::<Vec<_>>())
    .bind(accepted.iter().map(|_| Uuid::now_v7()).collect::<Vec<_>>())
    .bind(holds.keys().map(|(u, _)| *u).collect::<Vec<_>>())
    .bind(holds.keys().map(|(_, c)| *c).collect::<Vec<_>>())
    .bind(holds.values().copied().collect::<Vec<_>>())
    .bind(refused_keys)
    .bind(ids_of(&|r| r.lease_id))
    .bind(lease_for.as_secs_f64())
    .fetch_all(&mut *conn)
    .await?;
    let mut stored = Vec::with_capacity(result.len());
    for row in &result {
        let holds_made: i64 = row.try_get("holds_made")?;
        if holds_made != holds.len() as i64 {
            // Cannot happen under the balance locks; if it does, nothing of this batch stays.
            return Err(sqlx::Error::Protocol(format!(
                "create batch: {holds_made} of {} holds found their balance",
                holds.len()
            )));
        }
        stored.push(Withdrawal::from_row(row)?);
    }
    if stored.len() != accepted.len() {
        return Err(sqlx::Error::Protocol(format!(
            "create batch: {} of {} withdrawals stored",
            stored.len(),
            accepted.len()
        )));
    }
    Ok(stored)
}

/// One request as the rules see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate<'a> {
    pub user_id: &'a str,
    pub currency: &'a str,
    pub amount: Decimal,
}

/// A (user, currency) pair's limits and what was requested in the last 24 hours.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PairFacts {
    pub max_per_withdrawal: Option<Decimal>,
    pub max_per_day: Option<Decimal>,
    pub used: Decimal,
}

/// Everything [`decide`] needs, read under the batch's locks.
#[derive(Debug, Clone, Default)]
pub struct BatchFacts {
    /// Available balance per (user, currency); a pair without a row has nothing available.
    pub available: HashMap<(String, String), Decimal>,
    pub pairs: HashMap<(String, String), PairFacts>,
    pub users: HashMap<String, UserFacts>,
    /// Currencies whose submissions are paused.
    pub paused: HashSet<String>,
    /// Per capped currency: the cap and what all users requested in the last 24 hours.
    pub caps: HashMap<String, (Decimal, Decimal)>,
}

/// What becomes of one request of a batch.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Refused(Refusal),
    /// Held and stored; `review`: waits for an operator; `paused`: queued, not sent now.
    Accepted {
        review: Option<String>,
        paused: bool,
    },
}

/// Judges a batch's requests one after another, as if each had been its own transaction in
/// this order: the balance first, then the user's limits, then the merchant-wide cap, then
/// the approval policy. An accepted request counts against the ones after it (its hold, its
/// amount in the 24-hour sums); a refused one leaves no trace. Pure.
pub fn decide(
    requests: &[Candidate<'_>],
    facts: &BatchFacts,
    approval: &ApprovalSettings,
) -> Vec<Verdict> {
    let mut available = facts.available.clone();
    let mut pairs = facts.pairs.clone();
    let mut caps = facts.caps.clone();
    requests
        .iter()
        .map(|r| {
            let pair = (r.user_id.to_owned(), r.currency.to_owned());
            let funds = available.get(&pair).copied().unwrap_or_default();
            if funds < r.amount {
                return Verdict::Refused(Refusal::InsufficientFunds);
            }
            let limits = pairs.get(&pair).cloned().unwrap_or_default();
            if let Err(refusal) = super::limits::judge(
                r.amount,
                r.currency,
                limits.max_per_withdrawal,
                limits.max_per_day,
                limits.used,
            ) {
                return Verdict::Refused(refusal);
            }
            if let Some(&(cap, used)) = caps.get(r.currency) {
                if let Err(refusal) =
                    super::limits::judge_merchant_cap(r.amount, r.currency, cap, used)
                {
                    return Verdict::Refused(refusal);
                }
            }
            available.insert(pair.clone(), funds - r.amount);
            pairs.entry(pair).or_default().used += r.amount;
            if let Some((_, used)) = caps.get_mut(r.currency) {
                *used += r.amount;
            }
            let user = facts.users.get(r.user_id).cloned().unwrap_or_default();
            Verdict::Accepted {
                review: policy::review_reason(approval, r.currency, r.amount, &user),
                paused: facts.paused.contains(r.currency),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(text: &str) -> Decimal {
        text.parse().unwrap()
    }

    fn ask<'a>(user_id: &'a str, amount: &str) -> Candidate<'a> {
        Candidate {
            user_id,
            currency: "EUR",
            amount: d(amount),
        }
    }

    fn funded(pairs: &[(&str, &str)]) -> BatchFacts {
        let mut facts = BatchFacts::default();
        for (user, available) in pairs {
            facts
                .available
                .insert(((*user).into(), "EUR".into()), d(available));
            facts.users.insert(
                (*user).into(),
                UserFacts {
                    flagged: None,
                    has_confirmed: true,
                },
            );
        }
        facts
    }

    fn accepted() -> Verdict {
        Verdict::Accepted {
            review: None,
            paused: false,
        }
    }

    #[test]
    fn requests_of_one_user_in_one_batch_draw_on_one_balance_in_arrival_order() {
        let facts = funded(&[("u1", "25"), ("u2", "5")]);
        let verdicts = decide(
            &[
                ask("u1", "10"),
                ask("u2", "10"),
                ask("u1", "10"),
                ask("u1", "10"),
                ask("u1", "5"),
                ask("nobody", "1"),
            ],
            &facts,
            &crate::config::Settings::defaults().approval,
        );
        assert_eq!(
            verdicts,
            vec![
                accepted(),
                Verdict::Refused(Refusal::InsufficientFunds),
                accepted(),
                // 5 left: this one is refused and leaves no trace, the next one fits.
                Verdict::Refused(Refusal::InsufficientFunds),
                accepted(),
                Verdict::Refused(Refusal::InsufficientFunds),
            ]
        );
    }

    #[test]
    fn daily_limits_and_the_merchant_cap_count_earlier_requests_of_the_batch() {
        let mut facts = funded(&[("u1", "1000"), ("u2", "1000")]);
        facts.pairs.insert(
            ("u1".into(), "EUR".into()),
            PairFacts {
                max_per_withdrawal: Some(d("50")),
                max_per_day: Some(d("100")),
                used: d("40"),
            },
        );
        facts.caps.insert("EUR".into(), (d("200"), d("60")));
        let verdicts = decide(
            &[
                ask("u1", "60"), // over the per-withdrawal limit
                ask("u1", "50"), // 40 + 50 = 90 <= 100
                ask("u1", "20"), // 90 + 20 > 100
                ask("u2", "80"), // cap: 60 + 50 + 80 = 190 <= 200
                ask("u2", "20"), // cap: 190 + 20 > 200
                ask("u2", "10"), // cap: 200 <= 200
            ],
            &facts,
            &crate::config::Settings::defaults().approval,
        );
        let codes: Vec<&str> = verdicts
            .iter()
            .map(|v| match v {
                Verdict::Refused(r) => r.code(),
                Verdict::Accepted { .. } => "ok",
            })
            .collect();
        assert_eq!(
            codes,
            vec![
                "limit_exceeded",
                "ok",
                "limit_exceeded",
                "ok",
                "limit_exceeded",
                "ok"
            ]
        );
        let Verdict::Refused(daily) = &verdicts[2] else {
            unreachable!()
        };
        assert!(
            daily.to_string().contains("90 already requested"),
            "{daily}"
        );
    }

    #[test]
    fn the_approval_policy_and_pauses_hold_accepted_requests_without_refusing_them() {
        let mut facts = funded(&[("u1", "5000"), ("u2", "5000")]);
        facts.users.insert(
            "u2".into(),
            UserFacts {
                flagged: Some("chargebacks".into()),
                has_confirmed: true,
            },
        );
        facts.paused.insert("EUR".into());
        let approval = ApprovalSettings {
            first_withdrawal: false,
            thresholds: [("EUR".to_owned(), d("1000"))].into(),
        };
        let verdicts = decide(
            &[ask("u1", "1000"), ask("u1", "10"), ask("u2", "10")],
            &facts,
            &approval,
        );
        assert!(
            matches!(&verdicts[0], Verdict::Accepted { review: Some(r), paused: true } if r.contains("1000 EUR"))
        );
        assert_eq!(
            verdicts[1],
            Verdict::Accepted {
                review: None,
                paused: true
            }
        );
        assert!(
            matches!(&verdicts[2], Verdict::Accepted { review: Some(r), .. } if r.contains("chargebacks"))
        );
    }
}
