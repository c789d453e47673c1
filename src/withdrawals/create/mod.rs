//! Creating withdrawals: every `POST /v1/withdrawals` is held and stored by [`Creates`], in one
//! transaction shared with whatever other creates are queued at the same moment (group
//! commit, `[batching]`), or in a transaction of its own: a batch of one. Either way the same
//! statements run; each request is answered with its own outcome, only after its own rows are
//! committed, and one request's refusal never touches another's.
//!
//! One batch, one transaction:
//! 1. claim every idempotency key (`INSERT ... ON CONFLICT DO NOTHING`, in key order), then
//!    lock the balance rows of the claimed requests (`FOR UPDATE`, in (user, currency) order):
//!    one statement;
//! 2. with capped currencies in the batch, take their merchant-cap advisory locks (in order);
//! 3. read, in a statement that starts after those locks were granted (so it sees every create
//!    committed while the batch waited), each pair's limits and 24-hour sum, each user's review
//!    facts, the pauses and the merchant-wide sums;
//! 4. decide each request in Rust with [`decide`] (pure): balance, limits, cap, approval
//!    policy, in arrival order, so two requests of one user in one batch see each other;
//! 5. write every accepted request (hold, withdrawal, hold entry, job, travel rule, audit) and
//!    give back the refused ones' keys, in one statement; commit.
//!
//! A key another request claimed is answered after the commit from what that request stored:
//! a replay, or `KeyReused` for a different request. A key repeated within one batch waits
//! for the next round, which replays it (or judges it afresh if the first was refused). A
//! batch that fails as a whole (a deadlock, a lost connection) is rolled back and each of its
//! requests runs again as a batch of one.
//!
//! Locks are taken in one order everywhere (keys, balances, caps; settlements take the
//! withdrawal rows before their balances and no keys), so no two transactions deadlock.

pub mod approval;
pub mod limits;
pub mod request;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use rust_decimal::Decimal;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use self::approval::{ApprovalSettings, UserFacts};
use self::limits::CurrencyLimits;
use crate::db::batch::{BatchSettings, Batcher};
use crate::domain::{ForeignId, IdempotencyKey};
use crate::error::Error;
use crate::withdrawals::create::request::{CreateError, CreateOutcome, Refusal, ValidWithdrawal};
use crate::withdrawals::queue::Lease;
use crate::withdrawals::store::{withdrawal_from_record, withdrawal_query, Withdrawal};

/// One create, as the API hands it over.
#[derive(Debug, Clone)]
pub struct CreateJob {
    pub key: IdempotencyKey,
    pub request: ValidWithdrawal,
}

pub type CreateResult = Result<CreateOutcome, CreateError>;

/// The rules a create is judged by.
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
                async move { rules.run(jobs).await }
            })
        });
        Self { rules, batcher }
    }

    /// Holds the amount and stores the withdrawal with a fresh foreign_id, or replays what an
    /// earlier request with this key stored. Idempotent on the key: it is claimed first, so a
    /// concurrent duplicate waits for the claiming transaction and then replays it.
    ///
    /// The job written with the withdrawal is leased to the caller for its first attempt
    /// ([`CreateOutcome::Created`]); a withdrawal held for review gets no job and an audit row
    /// from `policy`, and one created while its currency is paused gets a job nobody leases
    /// until the pause ends (both come back as [`CreateOutcome::Held`]).
    pub async fn create(&self, key: IdempotencyKey, request: ValidWithdrawal) -> CreateResult {
        let job = CreateJob { key, request };
        let Some(batcher) = &self.batcher else {
            return self.rules.alone(job).await;
        };
        match batcher.submit(job.clone()).await {
            Ok(result) => result,
            Err(crate::db::batch::Unavailable) => self.rules.alone(job).await,
        }
    }
}

impl Rules {
    fn limits_of(&self, currency: &str) -> CurrencyLimits {
        self.limits.get(currency).cloned().unwrap_or_default()
    }

    /// A create with no batch to join (`[batching]` off, or its runner gone): a batch of one.
    async fn alone(self: &Arc<Self>, job: CreateJob) -> CreateResult {
        let mut answers = self.clone().run(vec![job]).await;
        answers.pop().expect("one answer for one request")
    }

    /// Answers every request of a batch, in rounds: each round commits the first request of
    /// every key still unanswered; a repeated key, or one that vanished between its conflict
    /// and its replay (deleted by retention), goes to the next round.
    async fn run(self: Arc<Self>, jobs: Vec<CreateJob>) -> Vec<CreateResult> {
        let mut results: Vec<Option<CreateResult>> = jobs.iter().map(|_| None).collect();
        let mut unanswered: Vec<usize> = (0..jobs.len()).collect();
        // Each round answers at least the first request of each key, barring a vanished key.
        let mut rounds_left = jobs.len() + 2;
        while !unanswered.is_empty() && rounds_left > 0 {
            rounds_left -= 1;
            let mut seen = HashSet::new();
            let (round, mut later): (Vec<usize>, Vec<usize>) = unanswered
                .into_iter()
                .partition(|&i| seen.insert(jobs[i].key.as_str()));
            let group: Vec<&CreateJob> = round.iter().map(|&i| &jobs[i]).collect();
            for (i, answer) in round.into_iter().zip(self.round(&group).await) {
                match answer {
                    Some(result) => results[i] = Some(result),
                    None => later.push(i),
                }
            }
            later.sort_unstable();
            unanswered = later;
        }
        results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    Err(Error::Inconsistent(
                        "the idempotency key kept vanishing before its replay".into(),
                    )
                    .into())
                })
            })
            .collect()
    }

    /// One round: one transaction for all of `jobs` (distinct keys); if it fails as a whole,
    /// each job again in a transaction of its own, concurrently, so each gets the answer it
    /// would have got alone.
    async fn round(self: &Arc<Self>, jobs: &[&CreateJob]) -> Vec<Option<CreateResult>> {
        let err = match self.commit(jobs).await {
            Ok(answers) => return answers,
            Err(err) if jobs.len() == 1 => return vec![Some(Err(err.into()))],
            Err(err) => err,
        };
        if crate::db::failover::MaybeUnavailable::database_unavailable(&err) {
            crate::db::failover::report("create batch", &err);
        } else {
            tracing::warn!(error = %err, requests = jobs.len(), "create batch failed as a whole; its requests run alone");
        }
        metrics::counter!("payoutd_batch_failures_total", "batch" => "create").increment(1);
        let mut running = tokio::task::JoinSet::new();
        for (i, job) in jobs.iter().enumerate() {
            let (rules, job) = (self.clone(), (*job).clone());
            running.spawn(async move {
                let answer = match rules.commit(&[&job]).await {
                    Ok(mut answers) => answers.pop().flatten(),
                    Err(err) => Some(Err(err.into())),
                };
                (i, answer)
            });
        }
        let mut answers: Vec<Option<CreateResult>> = jobs.iter().map(|_| None).collect();
        while let Some(done) = running.join_next().await {
            match done {
                Ok((i, answer)) => answers[i] = answer,
                // A panic there is a bug; its caller gets "unavailable" and works alone.
                Err(err) => std::panic::resume_unwind(err.into_panic()),
            }
        }
        answers
    }

    /// The batch's transaction, for requests with distinct keys. Per request: its answer, or
    /// `None` when its key vanished before it could be replayed.
    async fn commit(&self, jobs: &[&CreateJob]) -> Result<Vec<Option<CreateResult>>, Error> {
        let rows: Vec<Prepared> = jobs.iter().map(|job| Prepared::new(job)).collect();
        let mut tx = crate::db::begin_batch_transaction(&self.pool).await?;

        // 1. Keys in key order (so two batches cannot deadlock on them); once every key is
        //    claimed, the references of the requests whose key was claimed, in order; then the
        //    balance rows of the requests that claimed both, in (user, currency) order. Each
        //    step reads the one before through an aggregate, which reads it whole first: no
        //    reference is claimed while a key is, no balance row locked while either is.
        let keys: Vec<&str> = rows.iter().map(|r| r.job.key.as_str()).collect();
        let fingerprints: Vec<Vec<u8>> = rows.iter().map(|r| r.fingerprint.clone()).collect();
        let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
        let users: Vec<&str> = rows.iter().map(|r| r.user_id()).collect();
        let currencies: Vec<&str> = rows.iter().map(|r| r.currency()).collect();
        let references: Vec<Option<&str>> = rows
            .iter()
            .map(|r| r.job.request.reference.as_deref())
            .collect();
        let claimed = sqlx::query!(
            "WITH claim AS (
                 INSERT INTO idempotency_keys (key, request_hash, withdrawal_id)
                 SELECT * FROM unnest($1::text[], $2::bytea[], $3::uuid[]) ORDER BY 1
                 ON CONFLICT (key) DO NOTHING
                 RETURNING key, withdrawal_id),
             input AS (
                 SELECT * FROM unnest($3::uuid[], $4::text[], $5::text[], $6::text[], $2::bytea[])
                     AS i(id, user_id, currency, reference, request_hash)),
             keyed AS (SELECT array_agg(withdrawal_id) AS ids FROM claim),
             reference_claim AS (
                 INSERT INTO withdrawal_references (reference, request_hash, withdrawal_id)
                 SELECT reference, request_hash, id FROM input
                 WHERE reference IS NOT NULL AND id = ANY ((SELECT ids FROM keyed)::uuid[])
                 ORDER BY 1
                 ON CONFLICT (reference) DO NOTHING
                 RETURNING withdrawal_id),
             claimed AS (
                 SELECT array_agg(c.key) AS keys,
                        array_agg(i.id) FILTER (WHERE i.reference IS NULL OR r.withdrawal_id IS NOT NULL)
                            AS ids,
                        array_agg(i.user_id) FILTER (WHERE i.reference IS NULL OR r.withdrawal_id IS NOT NULL)
                            AS users,
                        array_agg(i.currency) FILTER (WHERE i.reference IS NULL OR r.withdrawal_id IS NOT NULL)
                            AS currencies
                 FROM claim c
                 JOIN input i ON i.id = c.withdrawal_id
                 LEFT JOIN reference_claim r ON r.withdrawal_id = i.id),
             locked AS MATERIALIZED (
                 SELECT b.user_id, b.currency, b.available FROM balances b
                 WHERE (b.user_id, b.currency) IN
                       (SELECT * FROM unnest((SELECT users FROM claimed),
                                             (SELECT currencies FROM claimed)))
                 ORDER BY b.user_id, b.currency
                 FOR UPDATE)
             SELECT (SELECT keys FROM claimed) AS keys, (SELECT ids FROM claimed) AS ids,
                    (SELECT array_agg(user_id ORDER BY user_id, currency) FROM locked) AS users,
                    (SELECT array_agg(currency ORDER BY user_id, currency) FROM locked)
                        AS currencies,
                    (SELECT array_agg(available ORDER BY user_id, currency) FROM locked)
                        AS available",
            &keys as &[&str],
            &fingerprints,
            &ids,
            &users as &[&str],
            &currencies as &[&str],
            &references as &[Option<&str>]
        )
        .fetch_one(&mut *tx)
        .await?;
        let claimed_keys: HashSet<String> = claimed.keys.unwrap_or_default().into_iter().collect();
        let claimed_ids: HashSet<Uuid> = claimed.ids.unwrap_or_default().into_iter().collect();
        // Claimed both key and reference: judged here. Only the key: its reference names
        // another withdrawal, so its key is given back and it is answered from that one.
        // Neither: answered from the withdrawal its key names.
        let candidates: Vec<usize> = (0..rows.len())
            .filter(|&i| claimed_ids.contains(&rows[i].id))
            .collect();
        let (by_reference, by_key): (Vec<usize>, Vec<usize>) = (0..rows.len())
            .filter(|&i| !claimed_ids.contains(&rows[i].id))
            .partition(|&i| claimed_keys.contains(rows[i].job.key.as_str()));
        if candidates.is_empty() {
            tx.rollback().await?;
            return Ok(self.replay(&rows, &by_key, &by_reference).await?);
        }
        let mut facts = BatchFacts::default();
        let locked_users = claimed.users.unwrap_or_default();
        let locked_currencies = claimed.currencies.unwrap_or_default();
        let locked_available = claimed.available.unwrap_or_default();
        for ((user, currency), available) in locked_users
            .into_iter()
            .zip(locked_currencies)
            .zip(locked_available)
        {
            facts.available.insert((user, currency), available);
        }
        let pairs: BTreeSet<(&str, &str)> = candidates
            .iter()
            .map(|&i| (rows[i].user_id(), rows[i].currency()))
            .collect();
        let (pair_users, pair_currencies): (Vec<&str>, Vec<&str>) = pairs.iter().copied().unzip();

        // 2. Merchant caps: the advisory lock per capped currency, after the balance rows.
        let capped: BTreeSet<&str> = pair_currencies
            .iter()
            .copied()
            .filter(|c| self.merchant_caps.contains_key(*c))
            .collect();
        for currency in &capped {
            sqlx::query!(
                "SELECT pg_advisory_xact_lock(hashtextextended('payoutd.merchant_cap.' || $1, 0))",
                currency
            )
            .execute(&mut *tx)
            .await?;
        }

        // 3. What the rules need, read after every lock above was granted.
        let defaults: Vec<CurrencyLimits> =
            pair_currencies.iter().map(|c| self.limits_of(c)).collect();
        let capped: Vec<&str> = capped.into_iter().collect();
        let default_max: Vec<Option<Decimal>> =
            defaults.iter().map(|d| d.max_per_withdrawal).collect();
        let default_day: Vec<Option<Decimal>> = defaults.iter().map(|d| d.max_per_day).collect();
        let facts_rows = sqlx::query!(
            // Each look-up is a LATERAL subquery whose condition on the outer row or a
            // parameter becomes a one-time filter: it runs only when its rule applies. (As
            // CASE/EXISTS expressions, the generic plan this statement runs with may hash a
            // whole table, e.g. every confirmed withdrawal, on every batch.)
            r#"SELECT i.user_id AS "user_id!", i.currency AS "currency!",
                    COALESCE(l.max_per_withdrawal, i.default_max) AS max_per_withdrawal,
                    COALESCE(l.max_per_day, i.default_day) AS max_per_day,
                    COALESCE(day.used, 0) AS "used!",
                    f.reason AS flagged,
                    NOT $5 OR confirmed.found IS NOT NULL AS "has_confirmed!",
                    pause.found IS NOT NULL AS "paused!",
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
                 HAVING i.currency = ANY($6)) cap ON true"#,
            &pair_users as &[&str],
            &pair_currencies as &[&str],
            &default_max as &[Option<Decimal>],
            &default_day as &[Option<Decimal>],
            self.approval.first_withdrawal,
            &capped as &[&str]
        )
        .fetch_all(&mut *tx)
        .await?;
        for row in facts_rows {
            let (user, currency) = (row.user_id, row.currency);
            facts.pairs.insert(
                (user.clone(), currency.clone()),
                PairFacts {
                    max_per_withdrawal: row.max_per_withdrawal,
                    max_per_day: row.max_per_day,
                    used: row.used,
                },
            );
            facts.users.insert(
                user,
                UserFacts {
                    flagged: row.flagged,
                    has_confirmed: row.has_confirmed,
                },
            );
            if row.paused {
                facts.paused.insert(currency.clone());
            }
            if let Some(used) = row.cap_used {
                if let Some(cap) = self.merchant_caps.get(&currency) {
                    facts.caps.insert(currency, (*cap, used));
                }
            }
        }

        // 4. Each request decided, in arrival order.
        let asked: Vec<Candidate> = candidates
            .iter()
            .map(|&i| Candidate {
                user_id: rows[i].user_id(),
                currency: rows[i].currency(),
                amount: rows[i].job.request.amount.value(),
            })
            .collect();
        let verdicts = decide(&asked, &facts, &self.approval);

        // 5. One statement writes every accepted request and frees the refused ones' keys.
        let accepted: Vec<(usize, &Option<String>, bool)> = candidates
            .iter()
            .zip(&verdicts)
            .filter_map(|(&i, v)| match v {
                Verdict::Accepted { review, paused } => Some((i, review, *paused)),
                Verdict::Refused(_) => None,
            })
            .collect();
        let refused: Vec<usize> = candidates
            .iter()
            .zip(&verdicts)
            .filter(|(_, v)| matches!(v, Verdict::Refused(_)))
            .map(|(&i, _)| i)
            .collect();
        // What refused requests (and those whose reference was taken) claimed is given back,
        // so a retry is judged afresh.
        let given_back = GivenBack {
            keys: refused
                .iter()
                .chain(&by_reference)
                .map(|&i| rows[i].job.key.as_str())
                .collect(),
            references: refused
                .iter()
                .filter_map(|&i| rows[i].job.request.reference.as_deref())
                .collect(),
        };
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
            &given_back,
            self.lease_for,
        )
        .await?;
        crate::faults::crash_point("create_batch_before_commit");
        tx.commit().await?;
        crate::faults::crash_point("after_hold_commit");

        let mut stored: HashMap<Uuid, Withdrawal> = stored.into_iter().map(|w| (w.id, w)).collect();
        let mut outcomes = self.replay(&rows, &by_key, &by_reference).await?;
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

    /// The answers to requests that claimed no withdrawal of their own: `by_key`, whose key
    /// another request claimed, and `by_reference`, whose reference another request claimed.
    /// Each gets a replay of the withdrawal stored under that key or reference, or
    /// `KeyReused`/`ReferenceConflict` for a different request; `None` for a key gone since
    /// (deleted by retention), to be judged afresh. Read after the commit.
    async fn replay(
        &self,
        rows: &[Prepared<'_>],
        by_key: &[usize],
        by_reference: &[usize],
    ) -> Result<Vec<Option<CreateResult>>, sqlx::Error> {
        let mut answers: Vec<Option<CreateResult>> = rows.iter().map(|_| None).collect();
        for (claim, replaying) in [(Claim::Key, by_key), (Claim::Reference, by_reference)] {
            if replaying.is_empty() {
                continue;
            }
            let name = |i: usize| claim.name(&rows[i]);
            let names: Vec<&str> = replaying.iter().filter_map(|&i| name(i)).collect();
            let stored = claim.stored(&self.pool, &names).await?;
            for &i in replaying {
                answers[i] = name(i)
                    .and_then(|n| stored.get(n))
                    .map(|(hash, withdrawal)| {
                        if *hash == rows[i].fingerprint {
                            Ok(CreateOutcome::Replayed(withdrawal.clone()))
                        } else {
                            Err(claim.reused())
                        }
                    });
            }
        }
        Ok(answers)
    }
}

/// What a request claims before it is judged: its idempotency key and its reference.
#[derive(Clone, Copy)]
enum Claim {
    Key,
    Reference,
}

impl Claim {
    /// The withdrawals stored under `names` (keys or references), each with the fingerprint
    /// of the request that claimed it.
    async fn stored(
        self,
        pool: &PgPool,
        names: &[&str],
    ) -> Result<HashMap<String, (Vec<u8>, Withdrawal)>, sqlx::Error> {
        // The claim's own columns are renamed in a subquery, so that the withdrawal's
        // (`reference`, `created_at`) are unambiguous.
        macro_rules! stored_under {
            ($claims:literal) => {
                withdrawal_query!(
                    query!(),
                    ["SELECT c.claimed, c.claimed_hash, "],
                    [" FROM (" + $claims + ") c JOIN withdrawals w ON w.id = c.withdrawal_id"],
                    names as &[&str]
                )
                .fetch_all(pool)
                .await?
                .into_iter()
                .map(|r| (r.claimed, (r.claimed_hash, withdrawal_from_record!(r))))
                .collect()
            };
        }
        Ok(match self {
            Self::Key => stored_under!(
                "SELECT key AS claimed, request_hash AS claimed_hash, withdrawal_id
                 FROM idempotency_keys WHERE key = ANY($1)"
            ),
            Self::Reference => stored_under!(
                "SELECT reference AS claimed, request_hash AS claimed_hash, withdrawal_id
                 FROM withdrawal_references WHERE reference = ANY($1)"
            ),
        })
    }

    fn name<'a>(self, row: &Prepared<'a>) -> Option<&'a str> {
        match self {
            Self::Key => Some(row.job.key.as_str()),
            Self::Reference => row.job.request.reference.as_deref(),
        }
    }

    /// The answer to a different request under the same claim.
    fn reused(self) -> CreateError {
        match self {
            Self::Key => CreateError::KeyReused,
            Self::Reference => CreateError::ReferenceConflict,
        }
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

/// The keys and references a batch claimed but does not keep.
struct GivenBack<'a> {
    keys: Vec<&'a str>,
    references: Vec<&'a str>,
}

/// Writes the accepted requests and deletes what the others claimed, in one statement. Fails
/// (and so rolls the batch back) if a hold did not find the balance it was decided on.
async fn write(
    conn: &mut PgConnection,
    rows: &[Prepared<'_>],
    accepted: &[(usize, &Option<String>, bool)],
    holds: &BTreeMap<(&str, &str), Decimal>,
    given_back: &GivenBack<'_>,
    lease_for: Duration,
) -> Result<Vec<Withdrawal>, Error> {
    let written: Vec<&Prepared> = accepted.iter().map(|&(i, _, _)| &rows[i]).collect();
    let ids: Vec<Uuid> = written.iter().map(|r| r.id).collect();
    let foreign_ids: Vec<&str> = written.iter().map(|r| r.foreign_id.as_str()).collect();
    let users: Vec<&str> = written.iter().map(|r| r.user_id()).collect();
    let amounts: Vec<Decimal> = written
        .iter()
        .map(|r| r.job.request.amount.value())
        .collect();
    let currencies: Vec<&str> = written.iter().map(|r| r.currency()).collect();
    let convert_to: Vec<Option<&str>> = written
        .iter()
        .map(|r| r.job.request.convert_to.as_ref().map(|c| c.as_str()))
        .collect();
    let addresses: Vec<&str> = written
        .iter()
        .map(|r| r.job.request.address.as_str())
        .collect();
    let tags: Vec<Option<&str>> = written
        .iter()
        .map(|r| r.job.request.tag.as_deref())
        .collect();
    let end_user_references: Vec<&str> = written
        .iter()
        .map(|r| r.job.request.end_user_reference.as_str())
        .collect();
    let reviews: Vec<Option<&str>> = accepted
        .iter()
        .map(|&(_, review, _)| review.as_deref())
        .collect();
    let paused: Vec<bool> = accepted.iter().map(|&(_, _, paused)| paused).collect();
    let travel: Vec<Option<serde_json::Value>> = written
        .iter()
        .map(|r| r.job.request.travel_rule.to_json())
        .collect();
    let entry_ids: Vec<Uuid> = written.iter().map(|_| Uuid::now_v7()).collect();
    let audit_ids: Vec<Uuid> = written.iter().map(|_| Uuid::now_v7()).collect();
    let (hold_users, hold_currencies): (Vec<&str>, Vec<&str>) = holds.keys().copied().unzip();
    let hold_totals: Vec<Decimal> = holds.values().copied().collect();
    let lease_ids: Vec<Uuid> = written.iter().map(|r| r.lease_id).collect();
    let references: Vec<Option<&str>> = written
        .iter()
        .map(|r| r.job.request.reference.as_deref())
        .collect();
    let result = withdrawal_query!(
        query!(),
        ["WITH input AS (
             SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::numeric[], $5::text[],
                                  $6::text[], $7::text[], $8::text[], $9::text[], $10::text[],
                                  $11::bool[], $12::jsonb[], $13::uuid[], $14::uuid[],
                                  $19::uuid[], $22::text[])
                 AS i(id, foreign_id, user_id, amount, currency, convert_to, address, tag,
                      end_user_reference, review, paused, travel, entry_id, audit_id,
                      lease_id, reference)),
         moved AS (
             UPDATE balances b
             SET available = b.available - h.total, held = b.held + h.total, updated_at = now()
             FROM unnest($15::text[], $16::text[], $17::numeric[]) AS h(user_id, currency, total)
             WHERE b.user_id = h.user_id AND b.currency = h.currency AND b.available >= h.total
             RETURNING b.user_id),
         stored AS (
             INSERT INTO withdrawals
                 (id, foreign_id, user_id, amount, currency, convert_to, address, tag,
                  end_user_reference, reference, status, review_reason)
             SELECT id, foreign_id, user_id, amount, currency, convert_to, address, tag,
                    end_user_reference, reference,
                    CASE WHEN review IS NULL THEN 'pending' ELSE 'awaiting_approval' END, review
             FROM input
             RETURNING *),
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
             DELETE FROM idempotency_keys WHERE key = ANY($18::text[])),
         references_freed AS (
             DELETE FROM withdrawal_references WHERE reference = ANY($21::text[]))
         SELECT (SELECT count(*) FROM moved) AS \"holds_made!\", "],
        [" FROM stored"],
        &ids,
        &foreign_ids as &[&str],
        &users as &[&str],
        &amounts,
        &currencies as &[&str],
        &convert_to as &[Option<&str>],
        &addresses as &[&str],
        &tags as &[Option<&str>],
        &end_user_references as &[&str],
        &reviews as &[Option<&str>],
        &paused,
        &travel as &[Option<serde_json::Value>],
        &entry_ids,
        &audit_ids,
        &hold_users as &[&str],
        &hold_currencies as &[&str],
        &hold_totals,
        &given_back.keys as &[&str],
        &lease_ids,
        lease_for.as_secs_f64(),
        &given_back.references as &[&str],
        &references as &[Option<&str>]
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut stored = Vec::with_capacity(result.len());
    for row in result {
        if row.holds_made != holds.len() as i64 {
            // Cannot happen under the balance locks; if it does, nothing of this batch stays.
            return Err(Error::Inconsistent(format!(
                "create batch: {} of {} holds found their balance",
                row.holds_made,
                holds.len()
            )));
        }
        stored.push(withdrawal_from_record!(row));
    }
    if stored.len() != accepted.len() {
        return Err(Error::Inconsistent(format!(
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
            if let Err(refusal) = crate::withdrawals::create::limits::judge(
                r.amount,
                r.currency,
                limits.max_per_withdrawal,
                limits.max_per_day,
                limits.used,
            ) {
                return Verdict::Refused(refusal);
            }
            if let Some(&(cap, used)) = caps.get(r.currency) {
                if let Err(refusal) = crate::withdrawals::create::limits::judge_merchant_cap(
                    r.amount, r.currency, cap, used,
                ) {
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
                review: approval::review_reason(approval, r.currency, r.amount, &user),
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
                Verdict::Refused(r) => r.code().as_str(),
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
