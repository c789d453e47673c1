//! Every counter and gauge payoutd exports, registered at start with all its known label
//! values at zero. A series that appears only after its first event shows "no data" on a
//! dashboard and hides that first event from `increase()`/`rate()` alerts.

use crate::domain::WithdrawalStatus;

pub const CALLBACK_OUTCOMES: &[&str] = &[
    "applied",
    "duplicate",
    "ignored",
    "rejected",
    "anomaly",
    "unrecognized",
    "unreadable",
    "invalid",
];
pub const ANOMALY_KINDS: &[&str] = &["mismatch", "contradiction", "unrecognized_status"];
pub const SUBMISSION_OUTCOMES: &[&str] = &[
    "accepted",
    "refused",
    "already_exists",
    "configuration_error",
    "transport_error",
    "http_error",
    "redirect",
    "decode_error",
];
pub const PARK_REASONS: &[&str] = &["attempts_exhausted", "needs_operator"];
pub const LOOKUP_RESULTS: &[&str] = &["found", "not_found", "no_record", "lookup_failed"];
pub const RECONCILER_RESULTS: &[&str] = &[
    "settled",
    "in_progress",
    "anomaly",
    "resubmitted",
    "not_yet_submitted",
    "missing",
    "lookup_failed",
];
pub const NOTIFICATION_OUTCOMES: &[&str] = &["delivered", "failed"];
pub const PROVIDER_ENDPOINTS: &[&str] = &[
    "/v2/withdrawal/crypto",
    "/v2/transactions/info",
    "/v2/currencies/list",
    "/v2/currencies/rates",
    "/v2/currencies/pairs",
    "/v2/exchange/calculate",
    "/v2/ping",
];
pub const PROVIDER_OUTCOMES: &[&str] = &["2xx", "3xx", "4xx", "5xx", "transport_error"];
/// What the rate limits guard: the callback route (per source address) and `/v1` (per token).
pub const RATE_LIMITED_SCOPES: &[&str] = &["callback", "api", "unauthenticated"];
/// Why a callback was refused before its signature was checked.
pub const CALLBACK_BLOCK_REASONS: &[&str] = &["not_allowed"];
/// Which CoinsPaid secret verified a callback (`previous` only during a change-over).
pub const CALLBACK_SECRETS: &[&str] = &["current", "previous"];
/// What the retention job deletes.
pub const RETENTION_TABLES: &[&str] = &["callbacks", "notifications", "idempotency_keys"];
/// What is group-committed (`batch.rs`): creates, CoinsPaid's acceptances, and CoinsPaid's
/// callbacks (`settle`).
pub const BATCHES: &[&str] = &["create", "accepted", "settle"];

/// The withdrawal status moves the state machine allows (from, to).
fn transitions() -> Vec<(&'static str, &'static str)> {
    use WithdrawalStatus::*;
    let mut pairs = Vec::new();
    for from in [Pending, Processing] {
        for to in [Processing, Confirmed, Cancelled, Rejected] {
            if from != to {
                pairs.push((from.as_str(), to.as_str()));
            }
        }
    }
    pairs
}

/// Registers every series at zero (counters) or its resting value (gauges), and
/// `payoutd_build_info{version}` at 1. Called once, when the recorder is installed.
pub fn register_known() {
    use metrics::{counter, gauge};
    gauge!("payoutd_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    counter!("payoutd_withdrawals_created_total").increment(0);
    for (from, to) in transitions() {
        counter!("payoutd_withdrawal_transitions_total", "from" => from, "to" => to).increment(0);
    }
    for kind in ANOMALY_KINDS {
        counter!("payoutd_withdrawal_anomalies_total", "kind" => *kind).increment(0);
    }
    for outcome in CALLBACK_OUTCOMES {
        counter!("payoutd_callbacks_total", "outcome" => *outcome).increment(0);
    }
    for secret in CALLBACK_SECRETS {
        counter!("payoutd_callback_signatures_verified_total", "secret" => *secret).increment(0);
    }
    for reason in CALLBACK_BLOCK_REASONS {
        counter!("payoutd_callbacks_blocked_total", "reason" => *reason).increment(0);
    }
    for outcome in SUBMISSION_OUTCOMES {
        counter!("payoutd_submissions_total", "outcome" => *outcome).increment(0);
    }
    for reason in PARK_REASONS {
        counter!("payoutd_submissions_parked_total", "reason" => *reason).increment(0);
    }
    for result in LOOKUP_RESULTS {
        counter!("payoutd_lookups_total", "result" => *result).increment(0);
    }
    for result in RECONCILER_RESULTS {
        counter!("payoutd_reconciler_checks_total", "result" => *result).increment(0);
    }
    for outcome in NOTIFICATION_OUTCOMES {
        counter!("payoutd_notifications_total", "outcome" => *outcome).increment(0);
    }
    for endpoint in PROVIDER_ENDPOINTS {
        for outcome in PROVIDER_OUTCOMES {
            counter!("payoutd_provider_calls_total", "endpoint" => *endpoint, "outcome" => *outcome)
                .increment(0);
        }
    }
    for scope in RATE_LIMITED_SCOPES {
        counter!("payoutd_rate_limited_total", "scope" => *scope).increment(0);
    }
    for table in RETENTION_TABLES {
        counter!("payoutd_retention_deleted_total", "table" => *table).increment(0);
    }
    counter!("payoutd_travel_rule_purged_total").increment(0);
    counter!("payoutd_first_attempts_deferred_total").increment(0);
    counter!("payoutd_database_unavailable_total").increment(0);
    for batch in BATCHES {
        counter!("payoutd_batches_total", "batch" => *batch).increment(0);
        counter!("payoutd_batched_requests_total", "batch" => *batch).increment(0);
        counter!("payoutd_batch_failures_total", "batch" => *batch).increment(0);
    }
    for status in ["pending", "processing"] {
        gauge!("payoutd_withdrawals", "status" => status).set(0.0);
    }
    gauge!("payoutd_oldest_pending_withdrawal_age_seconds").set(0.0);
    gauge!("payoutd_submission_jobs_parked").set(0.0);
    gauge!("payoutd_notifications_undelivered").set(0.0);
    gauge!("payoutd_db_gauges_refreshed_timestamp_seconds").set(0.0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_label_lists_match_the_code_that_counts() {
        use crate::withdrawals::callbacks::CallbackOutcome;
        for outcome in [
            CallbackOutcome::Applied,
            CallbackOutcome::Duplicate,
            CallbackOutcome::Ignored,
            CallbackOutcome::Anomaly,
            CallbackOutcome::Unrecognized,
            CallbackOutcome::Unreadable,
            CallbackOutcome::Invalid,
        ] {
            assert!(CALLBACK_OUTCOMES.contains(&outcome.label()), "{outcome:?}");
        }
        for reason in [
            crate::queue::ParkReason::AttemptsExhausted,
            crate::queue::ParkReason::NeedsOperator,
        ] {
            assert!(PARK_REASONS.contains(&reason.as_str()));
        }
        for used in [
            crate::coinspaid::SecretUsed::Current,
            crate::coinspaid::SecretUsed::Previous,
        ] {
            assert!(CALLBACK_SECRETS.contains(&used.label()));
        }
        assert_eq!(transitions().len(), 7);
    }
}
