//! Response and request shapes of the operator API. Never personal data: travel-rule data
//! stays in its table, callback bodies stay in the database.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::api::body::field;
use crate::api::views::{LedgerEntryView, WithdrawalView};
use crate::domain::CurrencyCatalog;
use crate::operators::actions::LookupReport;
use crate::operators::audit::AuditEntry;
use crate::operators::pause::Pause;
use crate::operators::stuck::{CallbackRow, StuckItem};

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct JobView {
    pub attempts: i32,
    pub parked: bool,
    /// `attempts_exhausted` or `needs_operator` when parked.
    pub park_reason: Option<String>,
    pub last_error: Option<String>,
}

/// A withdrawal that needs a person, and why.
#[derive(Debug, Serialize, ToSchema)]
pub struct StuckView {
    /// `awaiting_approval`, `attempts_exhausted`, `needs_operator`, `missing`, `anomaly`
    /// (`none` on a withdrawal's page when nothing is wrong).
    #[schema(example = "needs_operator")]
    pub kind: String,
    pub withdrawal: WithdrawalView,
    /// Why the approval policy held it.
    pub review_reason: Option<String>,
    /// Since when CoinsPaid's look-up gives no record of it.
    #[schema(format = DateTime)]
    pub missing_since: Option<String>,
    pub job: Option<JobView>,
    /// An anomaly is recorded that no operator has acknowledged yet
    /// (`POST /admin/v1/withdrawals/{id}/acknowledge`).
    pub anomaly_unacknowledged: bool,
    /// When and by whom the last anomaly was acknowledged.
    #[schema(format = DateTime)]
    pub anomaly_acknowledged_at: Option<String>,
    pub anomaly_acknowledged_by: Option<String>,
}

impl StuckView {
    pub fn new(catalog: &CurrencyCatalog, item: &StuckItem) -> Self {
        Self {
            kind: item.kind.clone(),
            withdrawal: WithdrawalView::new(catalog, &item.withdrawal),
            review_reason: item.review_reason.clone(),
            missing_since: item.missing_since.map(rfc3339),
            job: item.job.as_ref().map(|j| JobView {
                attempts: j.attempts,
                parked: j.parked,
                park_reason: j.park_reason.clone(),
                last_error: j.last_error.clone(),
            }),
            anomaly_unacknowledged: item.anomaly_unacknowledged,
            anomaly_acknowledged_at: item.anomaly_acknowledged_at.map(rfc3339),
            anomaly_acknowledged_by: item.anomaly_acknowledged_by.clone(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StuckPage {
    pub data: Vec<StuckView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditView {
    pub id: Uuid,
    #[schema(format = DateTime)]
    pub at: String,
    /// An operator's name, `website` or `policy`.
    pub actor: String,
    #[schema(example = "approve")]
    pub action: String,
    pub withdrawal_id: Option<Uuid>,
    pub reason: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub before: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub after: Option<Value>,
}

impl From<&AuditEntry> for AuditView {
    fn from(e: &AuditEntry) -> Self {
        Self {
            id: e.id,
            at: rfc3339(e.at),
            actor: e.actor.clone(),
            action: e.action.clone(),
            withdrawal_id: e.withdrawal_id,
            reason: e.reason.clone(),
            before: e.before.clone(),
            after: e.after.clone(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    pub data: Vec<AuditView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CallbackView {
    #[schema(format = DateTime)]
    pub received_at: String,
    pub verified: bool,
    pub provider_status: Option<String>,
    /// `applied`, `duplicate`, `ignored`, `anomaly`, `unrecognized`, `unreadable`, ...
    pub outcome: String,
    pub detail: Option<String>,
}

impl From<&CallbackRow> for CallbackView {
    fn from(c: &CallbackRow) -> Self {
        Self {
            received_at: rfc3339(c.received_at),
            verified: c.verified,
            provider_status: c.provider_status.clone(),
            outcome: c.outcome.clone(),
            detail: c.detail.clone(),
        }
    }
}

/// A withdrawal's page: why it is here, its ledger entries, callbacks and audit rows.
#[derive(Debug, Serialize, ToSchema)]
pub struct WithdrawalDetail {
    #[serde(flatten)]
    pub item: StuckView,
    pub ledger: Vec<LedgerEntryView>,
    pub callbacks: Vec<CallbackView>,
    pub audit: Vec<AuditView>,
}

/// A fresh CoinsPaid look-up.
#[derive(Debug, Serialize, ToSchema)]
pub struct LookupView {
    /// What it did: `settled`, `in_progress`, `missing`, `anomaly`, `resubmitted`,
    /// `not_yet_submitted`, `lookup_failed`, or `checked` (compared with a resolution).
    pub result: String,
    /// CoinsPaid's record (`provider_id`, `provider_status`, `type`, `sent`, `received`, `txids`, `error`).
    #[schema(value_type = Option<Object>)]
    pub record: Option<Value>,
    /// Why there is no record.
    pub error: Option<String>,
}

impl From<&LookupReport> for LookupView {
    fn from(r: &LookupReport) -> Self {
        Self {
            result: r.result.clone(),
            record: r.record.as_ref().ok().cloned(),
            error: r.record.as_ref().err().cloned(),
        }
    }
}

/// What an action left: the withdrawal as it now stands, and the look-up it made, if any.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActionResult {
    pub withdrawal: WithdrawalView,
    pub lookup: Option<LookupView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PauseView {
    /// `*` for every currency, or a currency code.
    pub scope: String,
    pub reason: String,
    pub paused_by: String,
    #[schema(format = DateTime)]
    pub paused_at: String,
}

impl From<&Pause> for PauseView {
    fn from(p: &Pause) -> Self {
        Self {
            scope: p.scope.clone(),
            reason: p.reason.clone(),
            paused_by: p.paused_by.clone(),
            paused_at: rfc3339(p.paused_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PausesView {
    pub data: Vec<PauseView>,
}

/// Body of approve, retry and the website's cancel: an optional note for the audit trail.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"reason": "confirmed with the customer by phone"}))]
pub struct NoteRequest {
    #[serde(default, deserialize_with = "field::opt_string")]
    pub reason: Option<String>,
}

/// Body of reject, acknowledge, pause and a review flag: the reason is required.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"reason": "address belongs to a sanctioned exchange"}))]
pub struct ReasonRequest {
    #[serde(deserialize_with = "field::string")]
    #[schema(example = "address belongs to a sanctioned exchange")]
    pub reason: String,
}

/// `POST /admin/v1/withdrawals/{id}/resolve` body.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "outcome": "not_paid",
    "reason": "CoinsPaid support confirmed it was never created (ticket 4411)",
    "override": false
}))]
pub struct ResolveRequest {
    /// `paid` (debit the hold) or `not_paid` (release it).
    #[serde(deserialize_with = "field::string")]
    #[schema(example = "not_paid")]
    pub outcome: String,
    #[serde(deserialize_with = "field::string")]
    #[schema(example = "CoinsPaid support confirmed it was never created (ticket 4411)")]
    pub reason: String,
    /// Resolve even though a fresh look-up does not back it.
    #[serde(rename = "override", default, deserialize_with = "field::opt_bool")]
    pub override_lookup: Option<bool>,
}
