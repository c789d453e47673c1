//! While no writable primary is reachable (PostgreSQL down, restarting, or failing over to a
//! standby): which database errors mean that, dropping pooled connections to a node that
//! turned read-only, and logging an outage once instead of at every request and round.
//!
//! Every error classified here left no partial write behind: PostgreSQL rolls back a
//! transaction whose connection is lost, and a read-only node refuses the first write. The
//! one doubt is a COMMIT whose answer was lost; each write path is idempotent on its key
//! (Idempotency-Key, credit reference, foreign_id), so the retry that a 503 asks for finds
//! what was committed instead of doing it twice.

use std::fmt::Display;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// SQLSTATE `read_only_sql_transaction`: a write reached a standby, or a primary that was
/// demoted while the connection stayed open.
pub const READ_ONLY: &str = "25006";

/// Whether `err` means the database cannot serve now but may shortly: a lost or refused
/// connection (also a proxy that accepts and closes, which sqlx reports as a protocol error
/// on its `SSLRequest`), a server shutting down or starting (SQLSTATE classes 08 and 57), a
/// read-only node (25006), or no connection free in time. A retry is safe after each.
///
/// A read-only answer also marks every pooled connection opened until now for closing (see
/// [`opened_before_read_only`]): the node it reached was demoted, and its successor is
/// found only through a new connection.
pub fn is_unavailable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => match db.code().as_deref() {
            Some(READ_ONLY) => {
                note_read_only();
                true
            }
            Some(code) => code.starts_with("08") || code.starts_with("57"),
            None => false,
        },
        _ => false,
    }
}

/// An error a background step or a handler may meet: does it mean the database is away?
pub trait MaybeUnavailable: Display {
    fn database_unavailable(&self) -> bool;
}

impl MaybeUnavailable for sqlx::Error {
    fn database_unavailable(&self) -> bool {
        is_unavailable(self)
    }
}

fn clock() -> Duration {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed()
}

/// When a node last answered read-only, in nanoseconds on [`clock`]; 0: never.
static READ_ONLY_SEEN: AtomicU64 = AtomicU64::new(0);

/// Marks every connection opened until now as suspect (see [`opened_before_read_only`]).
pub fn note_read_only() {
    let now = clock().as_nanos() as u64;
    READ_ONLY_SEEN.fetch_max(now.max(1), Ordering::Relaxed);
}

/// Whether a pooled connection of this age was opened before a node last answered
/// read-only. The pool closes such a connection instead of handing it out (`before_acquire`):
/// a connection to a demoted primary stays open, and would answer read-only forever. One
/// atomic load per acquire; connections opened later are kept.
pub fn opened_before_read_only(age: Duration) -> bool {
    let seen = READ_ONLY_SEEN.load(Ordering::Relaxed);
    seen != 0 && (clock().saturating_sub(age).as_nanos() as u64) <= seen
}

/// Is an outage being reported; when the last warning was logged (ms on [`clock`]).
static DOWN: AtomicBool = AtomicBool::new(false);
static LAST_WARNING_MS: AtomicU64 = AtomicU64::new(0);
/// While an outage lasts, a reminder at most this often.
const REMIND_EVERY: Duration = Duration::from_secs(60);

/// Logs that the database is unavailable for `what` (a task or the API): a WARN when an
/// outage starts and a reminder at most once a minute, DEBUG otherwise. The same outage
/// meets every request and every background round, and is one event for whoever reads the
/// logs; `payoutd_database_unavailable_total` counts each.
pub fn report(what: &'static str, err: &dyn Display) {
    metrics::counter!("payoutd_database_unavailable_total").increment(1);
    let now = clock().as_millis() as u64;
    let started = !DOWN.swap(true, Ordering::Relaxed);
    let last = LAST_WARNING_MS.load(Ordering::Relaxed);
    let due = started || now.saturating_sub(last) >= REMIND_EVERY.as_millis() as u64;
    if due
        && LAST_WARNING_MS
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        tracing::warn!(task = what, error = %err, "database unavailable (down, restarting or failing over); answering 503 and retrying until a writable primary is back");
    } else {
        tracing::debug!(task = what, error = %err, "database still unavailable");
    }
}

/// A database round trip succeeded: ends a reported outage (logged once, at INFO).
pub fn recovered() {
    if DOWN.load(Ordering::Relaxed) && DOWN.swap(false, Ordering::Relaxed) {
        tracing::info!("database reachable again");
    }
}

/// The end of a background step: an outage is [`report`]ed, anything else is an ERROR.
pub fn step_done<T, E: MaybeUnavailable>(task: &'static str, result: Result<T, E>) -> Option<T> {
    match result {
        Ok(value) => {
            recovered();
            Some(value)
        }
        Err(err) if err.database_unavailable() => {
            report(task, &err);
            None
        }
        Err(err) => {
            tracing::error!(task, error = %err, "background step failed");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lost_connections_and_read_only_nodes_are_unavailable() {
        let protocol = sqlx::Error::Protocol("unexpected response from SSLRequest: 0x00".into());
        assert!(is_unavailable(&protocol));
        assert!(is_unavailable(&sqlx::Error::PoolTimedOut));
        assert!(is_unavailable(&sqlx::Error::Io(std::io::Error::from(
            std::io::ErrorKind::ConnectionReset
        ))));
        assert!(!is_unavailable(&sqlx::Error::RowNotFound));
    }

    #[test]
    fn a_read_only_answer_marks_older_connections_only() {
        // A connection as old as the process predates a mark made now.
        clock();
        std::thread::sleep(Duration::from_millis(5));
        note_read_only();
        assert!(opened_before_read_only(clock()));
        std::thread::sleep(Duration::from_millis(2));
        assert!(!opened_before_read_only(Duration::ZERO));
    }
}
