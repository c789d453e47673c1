//! What CoinsPaid reports about a transaction: withdrawal callbacks and the answer of
//! `GET /v2/transactions/info`, which has the same shape.
//!
//! A tolerant reader: the documented examples send `confirmations` as `3` and as `"0"`, ids
//! and amounts as numbers or strings, `tag` as null, a string or a number, and leave out
//! `currency_sent`/`currency_received` in some versions. Only the fields payoutd uses are
//! read; a field of an unexpected type is noted in [`Report::unreadable`] and read as absent,
//! so it never fails the whole body; unknown fields are ignored.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::lenient::{decimal_as_string, lenient_decimal, Field};

/// The transaction types that are withdrawals without a conversion.
pub const PLAIN_WITHDRAWAL_TYPES: [&str; 2] = ["withdrawal", "withdrawal_instant"];
/// The transaction types that are withdrawals with a conversion (`convert_to`).
pub const EXCHANGE_WITHDRAWAL_TYPES: [&str; 2] =
    ["withdrawal_exchange", "withdrawal_instant_exchange"];

/// `{"currency","amount"}` pairs: `currency_sent`, `currency_received`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CurrencyAmount {
    pub currency: String,
    #[serde(
        deserialize_with = "lenient_decimal",
        serialize_with = "decimal_as_string"
    )]
    pub amount: Decimal,
}

/// One entry of `fees`. Also stored as JSON on the withdrawal row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fee {
    #[serde(rename = "type")]
    pub kind: String,
    pub currency: String,
    #[serde(
        deserialize_with = "lenient_decimal",
        serialize_with = "decimal_as_string"
    )]
    pub amount: Decimal,
}

/// `crypto_address`: where the payout goes. `currency` is the paying currency with
/// `convert_to` in the older docs' exchange example, the sent crypto in the newer one.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ReportedAddress {
    pub currency: Option<String>,
    pub convert_to: Option<String>,
    pub address: Option<String>,
    pub tag: Option<String>,
}

/// A transaction report, reduced to the fields payoutd uses.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Report {
    /// CoinsPaid's transaction id: the deduplication key of its callbacks.
    pub id: Option<i64>,
    pub foreign_id: Option<String>,
    /// `type`.
    pub kind: Option<String>,
    pub status: Option<String>,
    pub crypto_address: Option<ReportedAddress>,
    pub currency_sent: Option<CurrencyAmount>,
    pub currency_received: Option<CurrencyAmount>,
    pub txids: Vec<String>,
    pub fees: Vec<Fee>,
    /// The reason of a cancelled or declined payout; `""` when there is none.
    pub error: Option<String>,
    /// Fields payoutd reads that were present but could not be read (`currency_sent.amount`):
    /// a report whose checked fields are unreadable cannot be trusted to move money.
    pub unreadable: Vec<String>,
}

impl Report {
    /// Reads a report from a JSON value; `None` if it is not an object.
    pub fn from_value(value: &Value) -> Option<Self> {
        let object = value.as_object()?;
        let mut unreadable = Vec::new();
        let mut note = |name: &str| unreadable.push(name.to_owned());
        let id = read(Field::integer(object.get("id")), "id", &mut note);
        let foreign_id = read(
            Field::text(object.get("foreign_id")),
            "foreign_id",
            &mut note,
        );
        let kind = read(Field::text(object.get("type")), "type", &mut note);
        let status = read(Field::text(object.get("status")), "status", &mut note);
        let error = read(Field::text(object.get("error")), "error", &mut note);
        let crypto_address = match object.get("crypto_address") {
            None | Some(Value::Null) => None,
            Some(Value::Object(fields)) => Some(address_of(fields, &mut note)),
            Some(_) => {
                note("crypto_address");
                None
            }
        };
        let currency_sent =
            currency_amount(object.get("currency_sent"), "currency_sent", &mut note);
        let currency_received = currency_amount(
            object.get("currency_received"),
            "currency_received",
            &mut note,
        );
        let txids = list(object.get("transactions"))
            .filter_map(|t| Field::text(t.get("txid")).read())
            .filter(|txid| !txid.is_empty())
            .collect();
        // Fees are shown to operators, never checked: an unreadable entry is skipped.
        let fees = list(object.get("fees"))
            .filter_map(|f| serde_json::from_value::<Fee>(Value::Object(f.clone())).ok())
            .collect();
        Some(Self {
            id,
            foreign_id,
            kind,
            status,
            crypto_address,
            currency_sent,
            currency_received,
            txids,
            fees,
            error: error.filter(|e| !e.is_empty()),
            unreadable,
        })
    }

    /// A withdrawal of any documented kind. Every other type (deposits, exchanges, invoices)
    /// reaches the same callback URL and is acknowledged without being acted on.
    pub fn is_withdrawal(&self) -> bool {
        self.kind.as_deref().is_some_and(|k| {
            PLAIN_WITHDRAWAL_TYPES.contains(&k) || EXCHANGE_WITHDRAWAL_TYPES.contains(&k)
        })
    }
}

fn read<T>(field: Field<T>, name: &str, note: &mut impl FnMut(&str)) -> Option<T> {
    match field {
        Field::Absent => None,
        Field::Read(value) => Some(value),
        Field::Unreadable => {
            note(name);
            None
        }
    }
}

fn address_of(fields: &Map<String, Value>, note: &mut impl FnMut(&str)) -> ReportedAddress {
    let mut field = |name: &'static str| {
        read(
            Field::text(fields.get(name)),
            &format!("crypto_address.{name}"),
            note,
        )
    };
    ReportedAddress {
        currency: field("currency"),
        convert_to: field("convert_to"),
        address: field("address"),
        tag: field("tag"),
    }
}

fn currency_amount(
    value: Option<&Value>,
    name: &str,
    note: &mut impl FnMut(&str),
) -> Option<CurrencyAmount> {
    let fields = match value {
        None | Some(Value::Null) => return None,
        Some(Value::Object(fields)) => fields,
        Some(_) => {
            note(name);
            return None;
        }
    };
    let currency = read(
        Field::text(fields.get("currency")),
        &format!("{name}.currency"),
        note,
    );
    let amount = read(
        Field::decimal(fields.get("amount")),
        &format!("{name}.amount"),
        note,
    );
    match (currency, amount) {
        (Some(currency), Some(amount)) => Some(CurrencyAmount { currency, amount }),
        (None, None) => None,
        // Half a block cannot be checked: say so rather than check only half.
        _ => {
            note(name);
            None
        }
    }
}

fn list(value: Option<&Value>) -> impl Iterator<Item = &Map<String, Value>> {
    value
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
}

/// The records of a `/v2/transactions/info` answer: documented as the transaction object at the
/// top level; also read when enveloped in `data`, and when either is a list.
pub fn lookup_records(answer: &Value) -> Vec<Report> {
    let inner = match answer.get("data") {
        Some(data) if !data.is_null() => data,
        _ => answer,
    };
    match inner {
        Value::Array(items) => items.iter().filter_map(Report::from_value).collect(),
        other => Report::from_value(other).into_iter().collect(),
    }
}

/// `GET /v2/transactions/info` request: exactly one of the documented keys.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TransactionInfoRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub foreign_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
}
