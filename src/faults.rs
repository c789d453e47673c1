//! Crash points for the crash-recovery tests.
//!
//! A process started with `PAYOUTD_CRASH_AT=<point>` aborts the first time it reaches that
//! point: no destructors, no flushing, no rollback sent — as close to `kill -9` at an exact
//! line as a test can get. Inert unless `arm` was called, which `payoutd serve` does only in
//! development.

use std::sync::OnceLock;

/// Every crash point, in the order a withdrawal meets them.
pub const POINTS: &[&str] = &[
    "create_batch_before_commit",
    "after_hold_commit",
    "before_provider_call",
    "after_provider_call",
    "before_record_commit",
    "callback_before_apply",
    "callback_before_commit",
];

static TARGET: OnceLock<Option<String>> = OnceLock::new();

/// Reads `PAYOUTD_CRASH_AT` once. Call only for a development process.
pub fn arm() {
    let target = std::env::var("PAYOUTD_CRASH_AT").ok();
    if let Some(point) = &target {
        eprintln!("payoutd: DEVELOPMENT: will abort at crash point {point} (PAYOUTD_CRASH_AT)");
    }
    let _ = TARGET.set(target);
}

fn target() -> Option<&'static str> {
    TARGET.get().and_then(|t| t.as_deref())
}

/// Aborts the process here if the tests asked for a crash at `point`.
pub fn crash_point(point: &'static str) {
    debug_assert!(POINTS.contains(&point), "unknown crash point {point}");
    if target() == Some(point) {
        eprintln!("payoutd: crash point {point} reached; aborting as asked by PAYOUTD_CRASH_AT");
        std::process::abort();
    }
}
