//! The submission queue: a `submission_jobs` row exists while a withdrawal still has to reach
//! CoinsPaid. Whoever submits holds the row's lease (a fresh `lease_id`, `run_at` pushed past
//! the lease), calls the provider with no transaction open, and finishes the lease in a second
//! transaction. The request that creates a withdrawal writes its job already leased to itself
//! ([`Lease::first_attempt`]), so the first attempt and every later one hold the same kind of
//! lease. A lease its holder never gave back (a crash mid-call) simply expires; whoever claims
//! the job next records that CoinsPaid may have the withdrawal and looks it up before sending
//! anything (see [`claim_due`]).

use std::time::Duration;

use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// The right to submit one withdrawal until the lease runs out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub withdrawal_id: Uuid,
    pub lease_id: Uuid,
    /// Provider calls made for this withdrawal, this one included.
    pub attempts: i32,
}

impl Lease {
    /// The lease of a withdrawal's first attempt, written with its job by the request that
    /// creates it (`lease_id` is the one stored on the job).
    pub fn first_attempt(withdrawal_id: Uuid, lease_id: Uuid) -> Self {
        Self {
            withdrawal_id,
            lease_id,
            attempts: 1,
        }
    }
}

/// How long until `withdrawal_id` may be sent again after a look-up that found no record of
/// it: `None` when it may be now.
pub async fn resend_wait(
    conn: &mut PgConnection,
    withdrawal_id: Uuid,
) -> Result<Option<Duration>, sqlx::Error> {
    let wait = sqlx::query_scalar!(
        r#"SELECT EXTRACT(EPOCH FROM resend_after - now())::float8 AS "wait!" FROM withdrawals
           WHERE id = $1 AND resend_after > now()"#,
        withdrawal_id
    )
    .fetch_optional(conn)
    .await?;
    Ok(wait.map(|secs| Duration::from_secs_f64(secs.max(0.0))))
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// What the claim returns.
struct Claimed {
    withdrawal_id: Uuid,
    attempts: i32,
}

impl Claimed {
    fn lease(self, lease_id: Uuid) -> Lease {
        Lease {
            withdrawal_id: self.withdrawal_id,
            lease_id,
            attempts: self.attempts,
        }
    }
}

/// The claim both [`claim_due`] and [`claim_one`] make, `$pick` choosing the job: due, not
/// parked, and not paused (see `operators::pause`: paused work stays queued and is skipped),
/// and `$withdrawal_id` if given. A job whose previous lease was never given back (its holder
/// stopped mid-attempt, or outlived the lease) may have had its request reach CoinsPaid: the
/// claiming statement records that for good (`marked`), so the new holder looks it up before
/// sending anything.
///
/// `marked` is what records that a request for a withdrawal may have reached CoinsPaid without
/// a definitive answer: the one-way `outcome_unknown` flag (a trigger refuses to clear it), and
/// no resend before the quiet period (`$2`, in seconds) has passed from now. [`give_back`]
/// records it the same way.
macro_rules! claim_statement {
    ($pick:literal, $lease_for:expr, $quiet:expr, $lease_id:expr, $withdrawal_id:expr) => {
        sqlx::query_as!(
            Claimed,
            r#"WITH due AS (
                   SELECT withdrawal_id, lease_id AS previous_lease FROM submission_jobs
                   WHERE run_at <= now() AND NOT parked
                     AND NOT EXISTS (SELECT 1 FROM submission_pauses p
                         WHERE p.scope = '*' OR p.scope = (SELECT w.currency FROM withdrawals w
                                                           WHERE w.id = submission_jobs.withdrawal_id))
                     AND ($4::uuid IS NULL OR withdrawal_id = $4)
                   "# + $pick + r#"),
               claimed AS (
                   UPDATE submission_jobs j
                   SET lease_id = $3, attempts = j.attempts + 1,
                       run_at = now() + make_interval(secs => $1)
                   FROM due WHERE j.withdrawal_id = due.withdrawal_id
                   RETURNING j.withdrawal_id, j.attempts, due.previous_lease),
               marked AS (
                   UPDATE withdrawals w SET outcome_unknown = true,
                       resend_after = GREATEST(w.resend_after, now() + make_interval(secs => $2))
                   FROM claimed
                   WHERE w.id = claimed.withdrawal_id AND claimed.previous_lease IS NOT NULL)
               SELECT withdrawal_id AS "withdrawal_id!", attempts AS "attempts!" FROM claimed"#,
            secs($lease_for),
            secs($quiet),
            $lease_id,
            $withdrawal_id
        )
    };
}

/// Leases the job that has waited longest, if any is due. One short statement; see
/// `claim_statement!`.
pub async fn claim_due(
    pool: &PgPool,
    lease_for: Duration,
    quiet: Duration,
) -> Result<Option<Lease>, sqlx::Error> {
    let lease_id = Uuid::now_v7();
    let row = claim_statement!(
        "ORDER BY run_at LIMIT 1 FOR UPDATE SKIP LOCKED",
        lease_for,
        quiet,
        lease_id,
        None::<Uuid>
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|row| row.lease(lease_id)))
}

/// Leases one withdrawal's job now, if it is due, not parked, not paused and not leased by
/// someone else: an operator's "send now" uses the same lease as the worker, so the two
/// never submit at once. One statement; see `claim_statement!`.
pub async fn claim_one(
    pool: &PgPool,
    withdrawal_id: Uuid,
    lease_for: Duration,
    quiet: Duration,
) -> Result<Option<Lease>, sqlx::Error> {
    let lease_id = Uuid::now_v7();
    let row = claim_statement!(
        "FOR UPDATE",
        lease_for,
        quiet,
        lease_id,
        Some(withdrawal_id)
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|row| row.lease(lease_id)))
}

/// Removes the job: the withdrawal reached CoinsPaid or was definitively refused. Runs in the
/// transaction that records the outcome. False when the lease had already passed to another
/// worker (which then finds the withdrawal settled and drops the job itself).
pub async fn complete(conn: &mut PgConnection, lease: &Lease) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!(
        "DELETE FROM submission_jobs WHERE withdrawal_id = $1 AND lease_id = $2",
        lease.withdrawal_id,
        lease.lease_id
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The submission job a statement removed: `None` when the withdrawal had none, else its
/// lease (`Some(None)`: queued, not leased).
pub type RemovedJob = Option<Option<Uuid>>;

/// Drops the job whoever holds it: its withdrawal no longer needs submitting. False when
/// there was none.
pub async fn discard(conn: &mut PgConnection, withdrawal_id: Uuid) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!(
        "DELETE FROM submission_jobs WHERE withdrawal_id = $1",
        withdrawal_id
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Why a job is parked (the `park_reason` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParkReason {
    /// Every attempt had no definitive answer. Resubmitting with the same foreign_id is safe,
    /// so the reconciler puts it back in line when CoinsPaid has no record of it.
    AttemptsExhausted,
    /// What happened cannot be told from CoinsPaid's answers (a refusal after an earlier
    /// unknown outcome that a look-up could not explain, a look-up that does not match): only
    /// a person can decide. The reconciler still looks it up, and settles it if CoinsPaid
    /// reports a final status.
    NeedsOperator,
}

impl ParkReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AttemptsExhausted => "attempts_exhausted",
            Self::NeedsOperator => "needs_operator",
        }
    }
}

/// Puts a job parked for exhausted attempts back in line with fresh attempts (a look-up found
/// no record of it). Safe whatever the truth: a withdrawal whose outcome is unknown is looked
/// up again before it is sent, and sent only after its quiet period. False if not parked, or
/// parked for a person.
pub async fn unpark(pool: &PgPool, withdrawal_id: Uuid) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!(
        "UPDATE submission_jobs SET parked = false, park_reason = NULL, attempts = 0,
             run_at = now(), lease_id = NULL
         WHERE withdrawal_id = $1 AND parked
           AND COALESCE(park_reason, 'attempts_exhausted') = 'attempts_exhausted'",
        withdrawal_id
    )
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// What became of the request an attempt sent, as far as the queue must remember it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// No request was sent, or CoinsPaid's answer was definitive.
    NothingUnknown,
    /// The request may have reached CoinsPaid without a definitive answer: recorded for good
    /// on the withdrawal (`marked` in `claim_statement!`), and no resend before `quiet` from now.
    MaybeCreated { quiet: Duration },
}

/// Gives the lease back: try again after `delay`, or park the job (the withdrawal stays pending
/// and held) when `park` is given. The attempt stays counted.
pub async fn retry_later(
    pool: &PgPool,
    lease: &Lease,
    error: &str,
    delay: Duration,
    park: Option<ParkReason>,
    sent: Sent,
) -> Result<bool, sqlx::Error> {
    give_back(pool, lease, error, delay, park, sent, Counted::Yes).await
}

/// Gives back a lease whose attempt sent nothing (a first attempt that never got its turn, a
/// resend that must wait out its quiet period): due after `delay`, and the attempt not
/// counted, so a first attempt handed over stays a first one. False if the lease was no
/// longer ours.
pub async fn hand_over_unused(
    pool: &PgPool,
    lease: &Lease,
    why: &str,
    delay: Duration,
) -> Result<bool, sqlx::Error> {
    give_back(
        pool,
        lease,
        why,
        delay,
        None,
        Sent::NothingUnknown,
        Counted::No,
    )
    .await
}

/// Whether the attempt a lease was taken for stays counted when the lease is given back.
#[derive(Debug, Clone, Copy)]
enum Counted {
    Yes,
    /// No provider call was made: the attempt is taken back.
    No,
}

/// The one statement behind [`retry_later`] and [`hand_over_unused`]: the lease is given back
/// on the job's row, and what the attempt may have sent is recorded on the withdrawal. False
/// if the lease was no longer ours.
async fn give_back(
    pool: &PgPool,
    lease: &Lease,
    error: &str,
    delay: Duration,
    park: Option<ParkReason>,
    sent: Sent,
    counted: Counted,
) -> Result<bool, sqlx::Error> {
    let quiet = match sent {
        Sent::NothingUnknown => None,
        Sent::MaybeCreated { quiet } => Some(secs(quiet)),
    };
    // `marked`: as in `claim_statement!`.
    let done = sqlx::query_scalar!(
        r#"WITH job AS (
               UPDATE submission_jobs
               SET attempts = attempts - $7, run_at = now() + make_interval(secs => $4),
                   lease_id = NULL, last_error = $5, parked = $6::text IS NOT NULL,
                   park_reason = $6
               WHERE withdrawal_id = $1 AND lease_id = $3
               RETURNING withdrawal_id),
           marked AS (
               UPDATE withdrawals w SET outcome_unknown = true,
                   resend_after = GREATEST(w.resend_after, now() + make_interval(secs => $2))
               WHERE w.id = $1 AND $2::float8 IS NOT NULL)
           SELECT true AS "done!" FROM job"#,
        lease.withdrawal_id,
        quiet,
        lease.lease_id,
        secs(delay),
        error,
        park.map(ParkReason::as_str),
        match counted {
            Counted::Yes => 0i32,
            Counted::No => 1i32,
        }
    )
    .fetch_optional(pool)
    .await?;
    Ok(done.is_some())
}
