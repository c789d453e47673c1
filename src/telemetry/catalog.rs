//! Every series payoutd exports, in one list: its name, type, unit, help text and label values.
//! [`install`] describes each one (the `# HELP` line) and registers each known label value at
//! its resting value. A series that appears only after its first event shows "no data" on a
//! dashboard and hides that first event from `increase()`/`rate()` alerts; one without a
//! description fails `promtool check metrics`. A unit test reads every `counter!`, `gauge!`
//! and `histogram!` in `src/` and fails on a name, type or label missing here, and
//! tests/api/observability.rs fails on an exported series missing here.

use metrics::Unit;

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
/// A look-up's answer (`LookupError::label`, or `found`).
pub const LOOKUP_RESULTS: &[&str] = &[
    "found",
    "not_found",
    "refused",
    "no_usable_record",
    "lookup_failed",
];
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
/// Every withdrawal status (`WithdrawalStatus::as_str`).
pub const STATUSES: &[&str] = &[
    "awaiting_approval",
    "pending",
    "processing",
    "confirmed",
    "cancelled",
    "rejected",
];
/// The statuses `payoutd_withdrawals` counts: those still holding an amount.
pub const OPEN_STATUSES: &[&str] = &["awaiting_approval", "pending", "processing"];
/// `payoutd_submissions_paused`'s scopes: `all` while every submission is paused.
pub const PAUSE_SCOPES: &[&str] = &["all"];

/// The label values no list can hold: routes, methods and statuses of HTTP requests.
const OPEN: &[&str] = &[];

/// How Prometheus types a series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    /// With the latency buckets of `telemetry` (every histogram is named `*_duration_seconds`).
    Histogram,
}

impl Kind {
    /// The word on the series' `# TYPE` line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Gauge => "gauge",
            Self::Histogram => "histogram",
        }
    }
}

/// Which series exist before anything happens.
#[derive(Debug, Clone, Copy)]
pub enum Start {
    /// Every combination of the label values: counters at 0, gauges at this value.
    Each(f64),
    /// Only these label values (in the order of [`Metric::labels`]), at 0.
    Only(fn() -> Vec<Vec<&'static str>>),
    /// None: the first recording creates the series. A histogram cannot be registered without
    /// an observation, and open label values cannot be listed.
    OnUse,
}

/// One series family.
#[derive(Debug, Clone, Copy)]
pub struct Metric {
    pub name: &'static str,
    pub kind: Kind,
    pub unit: Option<Unit>,
    pub help: &'static str,
    /// Each label with every value the code records; an empty list: open values.
    pub labels: &'static [(&'static str, &'static [&'static str])],
    pub start: Start,
}

const fn counter(
    name: &'static str,
    help: &'static str,
    labels: &'static [(&'static str, &'static [&'static str])],
) -> Metric {
    Metric {
        name,
        kind: Kind::Counter,
        unit: None,
        help,
        labels,
        start: Start::Each(0.0),
    }
}

const fn gauge(
    name: &'static str,
    help: &'static str,
    labels: &'static [(&'static str, &'static [&'static str])],
) -> Metric {
    Metric {
        name,
        kind: Kind::Gauge,
        unit: None,
        help,
        labels,
        start: Start::Each(0.0),
    }
}

const fn seconds(metric: Metric) -> Metric {
    Metric {
        unit: Some(Unit::Seconds),
        ..metric
    }
}

const fn histogram(
    name: &'static str,
    help: &'static str,
    labels: &'static [(&'static str, &'static [&'static str])],
) -> Metric {
    Metric {
        name,
        kind: Kind::Histogram,
        unit: Some(Unit::Seconds),
        help,
        labels,
        start: Start::OnUse,
    }
}

/// Everything payoutd exports, but the `process_*` series of [`PROCESS_METRICS`].
pub static CATALOGUE: &[Metric] = &[
    Metric {
        start: Start::OnUse,
        ..counter(
            "payoutd_http_requests_total",
            "HTTP requests answered, by method, route (the template) and status.",
            &[("method", OPEN), ("route", OPEN), ("status", OPEN)],
        )
    },
    histogram(
        "payoutd_http_request_duration_seconds",
        "HTTP request latency, by method and route (the template).",
        &[("method", OPEN), ("route", OPEN)],
    ),
    Metric {
        start: Start::Each(1.0),
        ..gauge(
            "payoutd_build_info",
            "Always 1; the version label says which build runs.",
            &[("version", &[env!("CARGO_PKG_VERSION")])],
        )
    },
    gauge(
        "payoutd_withdrawals",
        "Open withdrawals by status (from the database: aggregate with max()).",
        &[("status", OPEN_STATUSES)],
    ),
    counter(
        "payoutd_withdrawals_created_total",
        "Withdrawals requested and held.",
        &[],
    ),
    Metric {
        start: Start::Only(transitions),
        ..counter(
            "payoutd_withdrawal_transitions_total",
            "Withdrawal status changes, by from and to status.",
            &[("from", STATUSES), ("to", STATUSES)],
        )
    },
    counter(
        "payoutd_withdrawal_anomalies_total",
        "Provider reports not applied, by kind: mismatch, contradiction, unrecognized_status.",
        &[("kind", ANOMALY_KINDS)],
    ),
    counter(
        "payoutd_callbacks_total",
        "CoinsPaid callbacks, by outcome: applied, duplicate, ignored, rejected, anomaly, unrecognized, unreadable, invalid.",
        &[("outcome", CALLBACK_OUTCOMES)],
    ),
    counter(
        "payoutd_callback_signatures_verified_total",
        "Verified CoinsPaid callbacks, by the key pair that verified them: current, or previous (COINSPAID_API_KEY_PREVIOUS and COINSPAID_API_SECRET_PREVIOUS, during a change-over).",
        &[("secret", CALLBACK_SECRETS)],
    ),
    counter(
        "payoutd_callbacks_blocked_total",
        "Callback requests refused before verification, by reason: not_allowed (source outside callback_allow).",
        &[("reason", CALLBACK_BLOCK_REASONS)],
    ),
    counter(
        "payoutd_provider_calls_total",
        "Calls to CoinsPaid, by endpoint and outcome.",
        &[("endpoint", PROVIDER_ENDPOINTS), ("outcome", PROVIDER_OUTCOMES)],
    ),
    histogram(
        "payoutd_provider_call_duration_seconds",
        "CoinsPaid call latency, by endpoint.",
        &[("endpoint", PROVIDER_ENDPOINTS)],
    ),
    counter(
        "payoutd_submissions_total",
        "Submission attempts, by outcome.",
        &[("outcome", SUBMISSION_OUTCOMES)],
    ),
    counter(
        "payoutd_submissions_parked_total",
        "Submissions parked after their last attempt (still held), by reason.",
        &[("reason", PARK_REASONS)],
    ),
    counter(
        "payoutd_lookups_total",
        "Look-ups at CoinsPaid made while submitting (before a resend, after a refusal), by result: found, not_found, refused, no_usable_record, lookup_failed.",
        &[("result", LOOKUP_RESULTS)],
    ),
    counter(
        "payoutd_first_attempts_deferred_total",
        "New withdrawals whose first submission attempt was left to the worker because too many waited for a slot (worker.max_in_flight).",
        &[],
    ),
    gauge(
        "payoutd_submission_jobs_parked",
        "Submission jobs parked and waiting for an operator (from the database: aggregate with max()).",
        &[],
    ),
    gauge(
        "payoutd_submissions_paused",
        "1 while submissions of the scope are paused by an operator; scope all: every submission (from the database: aggregate with max()).",
        &[("scope", PAUSE_SCOPES)],
    ),
    gauge(
        "payoutd_submissions_paused_scopes",
        "Submission pauses in force, of any scope (from the database: aggregate with max()).",
        &[],
    ),
    counter(
        "payoutd_reconciler_checks_total",
        "Reconciler look-ups, by result: settled, in_progress, anomaly, resubmitted, not_yet_submitted, missing, lookup_failed.",
        &[("result", RECONCILER_RESULTS)],
    ),
    counter(
        "payoutd_notifications_total",
        "Website notification delivery attempts, by outcome.",
        &[("outcome", NOTIFICATION_OUTCOMES)],
    ),
    gauge(
        "payoutd_notifications_undelivered",
        "Website notifications not yet delivered while a URL is configured (from the database: aggregate with max()).",
        &[],
    ),
    seconds(gauge(
        "payoutd_oldest_pending_withdrawal_age_seconds",
        "Age of the oldest withdrawal still pending or processing (from the database: aggregate with max()).",
        &[],
    )),
    gauge(
        "payoutd_db_pool_connections",
        "Database pool connections of this process, by state: idle, in_use.",
        &[("state", &["idle", "in_use"])],
    ),
    gauge(
        "payoutd_db_pool_max_connections",
        "The pool's configured maximum (database.max_connections).",
        &[],
    ),
    seconds(gauge(
        "payoutd_db_gauges_refreshed_timestamp_seconds",
        "When the database-derived gauges were last read (unix seconds).",
        &[],
    )),
    counter(
        "payoutd_database_unavailable_total",
        "Requests answered 503 and background rounds skipped because no writable PostgreSQL primary answered.",
        &[],
    ),
    counter(
        "payoutd_rate_limited_total",
        "Requests refused with 429, by scope: callback (per source address), api (per token), unauthenticated (per source address).",
        &[("scope", RATE_LIMITED_SCOPES)],
    ),
    counter(
        "payoutd_retention_deleted_total",
        "Rows deleted after retention, by table: callbacks, notifications, idempotency_keys.",
        &[("table", RETENTION_TABLES)],
    ),
    counter(
        "payoutd_travel_rule_purged_total",
        "Withdrawals whose travel-rule data was deleted after retention.",
        &[],
    ),
    counter(
        "payoutd_batches_total",
        "Group commits, by batch: create, accepted, settle.",
        &[("batch", BATCHES)],
    ),
    counter(
        "payoutd_batched_requests_total",
        "Requests carried by group commits, by batch (divided by payoutd_batches_total: the average batch size).",
        &[("batch", BATCHES)],
    ),
    counter(
        "payoutd_batch_failures_total",
        "Group commits that failed as a whole and fell back to one transaction per request, by batch.",
        &[("batch", BATCHES)],
    ),
];

/// The per-process series of the `metrics-process` crate, which describes them itself
/// (`gauges::Gauges::new`); which of them exist depends on the platform.
pub const PROCESS_METRICS: &[&str] = &[
    "process_cpu_seconds_total",
    "process_open_fds",
    "process_max_fds",
    "process_virtual_memory_bytes",
    "process_virtual_memory_max_bytes",
    "process_resident_memory_bytes",
    "process_start_time_seconds",
    "process_threads",
];

/// The catalogue's entry for a family name.
pub fn find(name: &str) -> Option<&'static Metric> {
    CATALOGUE.iter().find(|m| m.name == name)
}

/// The (from, to) moves the state machine can make: CoinsPaid's reports and people's decisions.
fn transitions() -> Vec<Vec<&'static str>> {
    use crate::domain::withdrawal::{Decision, ProviderStatus};
    use crate::domain::{ProviderEvent, Transition};
    let events = [
        ProviderEvent::SubmitAccepted,
        ProviderEvent::SubmitRefused,
        ProviderEvent::Reported(ProviderStatus::Succeeded),
        ProviderEvent::Reported(ProviderStatus::Failed),
        ProviderEvent::Reported(ProviderStatus::InProgress),
        ProviderEvent::Reported(ProviderStatus::Unrecognized),
    ];
    let decisions = [
        Decision::Approve,
        Decision::Reject,
        Decision::Cancel,
        Decision::ResolvePaid,
        Decision::ResolveNotPaid,
    ];
    let mut pairs = Vec::new();
    for from in WithdrawalStatus::ALL {
        let reported = events.iter().filter_map(|e| match from.apply(e) {
            Transition::Move { to, .. } => Some(to),
            _ => None,
        });
        let decided = decisions
            .iter()
            .filter_map(|d| from.decide(*d).map(|m| m.0));
        for to in reported.chain(decided) {
            let pair = vec![from.as_str(), to.as_str()];
            if !pairs.contains(&pair) {
                pairs.push(pair);
            }
        }
    }
    pairs
}

impl Metric {
    /// The label values of the series exported from the first scrape.
    pub fn start_series(&self) -> Vec<Vec<&'static str>> {
        match self.start {
            Start::OnUse => Vec::new(),
            Start::Only(series) => series(),
            Start::Each(_) => self
                .labels
                .iter()
                .fold(vec![Vec::new()], |acc, (_, values)| {
                    acc.iter()
                        .flat_map(|prefix| {
                            values.iter().map(move |v| {
                                let mut series = prefix.clone();
                                series.push(*v);
                                series
                            })
                        })
                        .collect()
                }),
        }
    }

    fn describe(&self, recorder: &dyn metrics::Recorder) {
        let name = metrics::KeyName::from_const_str(self.name);
        let help = metrics::SharedString::const_str(self.help);
        match self.kind {
            Kind::Counter => recorder.describe_counter(name, self.unit, help),
            Kind::Gauge => recorder.describe_gauge(name, self.unit, help),
            Kind::Histogram => recorder.describe_histogram(name, self.unit, help),
        }
    }

    fn register(&self) {
        let at = match self.start {
            Start::Each(at) => at,
            _ => 0.0,
        };
        for values in self.start_series() {
            let labels: Vec<metrics::Label> = self
                .labels
                .iter()
                .zip(values)
                .map(|((key, _), value)| metrics::Label::from_static_parts(key, value))
                .collect();
            match self.kind {
                Kind::Counter => metrics::counter!(self.name, labels).increment(0),
                Kind::Gauge => metrics::gauge!(self.name, labels).set(at),
                Kind::Histogram => {}
            }
        }
    }
}

/// Describes every series and registers each known one at its resting value. Called once,
/// when the recorder is installed.
pub fn install() {
    metrics::with_recorder(|recorder| {
        for metric in CATALOGUE {
            metric.describe(recorder);
        }
    });
    for metric in CATALOGUE {
        metric.register();
    }
}

#[cfg(test)]
mod tests;
