//! Response shapes of the public API, built from domain rows. Amounts are strings with the
//! currency's precision ("150.00"); times are RFC 3339 UTC.

use chrono::{DateTime, SecondsFormat, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use uuid::Uuid;

use crate::coinspaid::wire::Fee;
use crate::domain::money::format_amount;
use crate::domain::CurrencyCatalog;
use crate::domain::WithdrawalStatus;
use crate::ledger::{Balance, EntryKind, LedgerEntry};
use crate::withdrawals::Withdrawal;

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Formats with the currency's precision; a code missing from the catalogue keeps its scale.
fn money(catalog: &CurrencyCatalog, currency: &str, value: Decimal) -> String {
    match catalog.precision_of(currency) {
        Some(p) if value.scale() <= p => format_amount(value, p),
        _ => value.normalize().to_string(),
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BalanceView {
    pub currency: String,
    pub available: String,
    pub held: String,
    pub total: String,
}

impl BalanceView {
    pub fn new(catalog: &CurrencyCatalog, b: &Balance) -> Self {
        Self {
            available: money(catalog, &b.currency, b.available),
            held: money(catalog, &b.currency, b.held),
            total: money(catalog, &b.currency, b.total()),
            currency: b.currency.clone(),
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LedgerEntryView {
    pub id: Uuid,
    pub user_id: String,
    pub currency: String,
    #[schema(value_type = String, example = "hold")]
    pub kind: EntryKind,
    pub amount: String,
    pub withdrawal_id: Option<Uuid>,
    pub reference: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
}

impl LedgerEntryView {
    pub fn new(catalog: &CurrencyCatalog, e: &LedgerEntry) -> Self {
        Self {
            id: e.id,
            user_id: e.user_id.clone(),
            amount: money(catalog, &e.currency, e.amount),
            currency: e.currency.clone(),
            kind: e.kind,
            withdrawal_id: e.withdrawal_id,
            reference: e.reference.clone(),
            created_at: rfc3339(e.created_at),
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MoneyView {
    pub amount: String,
    pub currency: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FeeView {
    #[serde(rename = "type")]
    pub kind: String,
    pub amount: String,
    pub currency: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WithdrawalView {
    pub id: Uuid,
    pub foreign_id: String,
    pub user_id: String,
    pub amount: String,
    pub currency: String,
    pub convert_to: Option<String>,
    pub address: String,
    pub tag: Option<String>,
    pub end_user_reference: String,
    /// The `reference` it was requested with, if any.
    pub reference: Option<String>,
    #[schema(value_type = String, example = "processing")]
    pub status: WithdrawalStatus,
    pub provider_id: Option<i64>,
    pub provider_status: Option<String>,
    pub sent: Option<MoneyView>,
    pub received: Option<MoneyView>,
    pub fees: Vec<FeeView>,
    pub txids: Vec<String>,
    pub error: Option<String>,
    /// Why a provider report about this withdrawal was not applied (it did not match, it
    /// contradicted a final status, or it used an undocumented status word). No money moved
    /// because of it; an operator should look.
    pub anomaly: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl WithdrawalView {
    pub fn new(catalog: &CurrencyCatalog, w: &Withdrawal) -> Self {
        let pair = |amount: Option<Decimal>, currency: &Option<String>| {
            amount
                .zip(currency.clone())
                .map(|(amount, currency)| MoneyView {
                    amount: money(catalog, &currency, amount),
                    currency,
                })
        };
        Self {
            id: w.id,
            foreign_id: w.foreign_id.to_string(),
            user_id: w.user_id.to_string(),
            amount: money(catalog, w.currency.as_str(), w.amount),
            currency: w.currency.to_string(),
            convert_to: w.convert_to.as_ref().map(|c| c.to_string()),
            address: w.address.clone(),
            tag: w.tag.clone(),
            end_user_reference: w.end_user_reference.clone(),
            reference: w.reference.clone(),
            status: w.status,
            provider_id: w.provider_id,
            provider_status: w.provider_status.clone(),
            sent: pair(w.sent_amount, &w.sent_currency),
            received: pair(w.received_amount, &w.received_currency),
            fees: w
                .fees
                .iter()
                .map(|f: &Fee| FeeView {
                    kind: f.kind.clone(),
                    amount: f.amount.to_string(),
                    currency: f.currency.clone(),
                })
                .collect(),
            txids: w.txids.0.clone(),
            error: w.error.clone(),
            anomaly: w.anomaly.clone(),
            created_at: rfc3339(w.created_at),
            updated_at: rfc3339(w.updated_at),
        }
    }
}

/// A page of ledger entries, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LedgerPage {
    pub data: Vec<LedgerEntryView>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// A page of withdrawals, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WithdrawalPage {
    pub data: Vec<WithdrawalView>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// An event of the feed, exactly the body POSTed to the notification URL (signed in the
/// Standard Webhooks format, `webhook-id` = `id`). Written in SQL (`notify::status_change_query!`);
/// this type describes it, and reads it back in tests.
#[derive(Debug, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(tag = "type")]
pub enum Event {
    /// A withdrawal's status changed.
    #[serde(rename = "withdrawal.status_changed")]
    StatusChanged {
        /// The event's id: the same on every delivery, the receiver's duplicate key.
        id: Uuid,
        /// When the change was made, UTC, to the millisecond.
        #[schema(format = DateTime, example = "2026-11-24T09:00:00.000Z")]
        created_at: String,
        data: Box<StatusChange>,
    },
    /// Sent by `POST /v1/webhooks/test`.
    #[serde(rename = "webhook.test")]
    Test {
        id: Uuid,
        #[schema(format = DateTime, example = "2026-11-24T09:00:00.000Z")]
        created_at: String,
        data: TestData,
    },
}

/// A status change: the withdrawal as changed.
#[derive(Debug, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusChange {
    pub withdrawal_id: Uuid,
    #[schema(example = "pd-0193...")]
    pub foreign_id: String,
    pub user_id: String,
    #[schema(example = "confirmed")]
    pub status: String,
    #[schema(example = "processing")]
    pub previous_status: String,
    /// CoinsPaid's own word, as it reported it.
    pub provider_status: Option<String>,
    /// A decimal string, as requested.
    #[schema(example = "100.00")]
    pub amount: String,
    #[schema(example = "EUR")]
    pub currency: String,
    pub convert_to: Option<String>,
    pub error: Option<String>,
}

/// No data: the event only shows that delivery works.
#[derive(Debug, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestData {}

/// A page of the events feed, oldest first in commit order.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventPage {
    /// Events exactly as notified.
    #[schema(value_type = Vec<Event>)]
    pub data: Vec<serde_json::Value>,
    /// Pass as `after` for the next page: the position after the last event here. Null when
    /// this page is empty: ask again later with the same `after`.
    pub next_cursor: Option<String>,
}
