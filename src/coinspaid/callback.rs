//! Turning what CoinsPaid reports (a verified callback body, a look-up answer) into what the
//! withdrawal service needs. Verification itself is [`super::Signer::verify`]: it always runs
//! first, on the raw bytes.

use serde_json::Value;

use super::wire::{CurrencyAmount, Fee, Report, ReportedAddress};
use crate::domain::withdrawal::ProviderStatus;

/// What a provider report says about a withdrawal: its status and what to check and record.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProviderDetails {
    pub provider_id: Option<i64>,
    /// CoinsPaid's own word, kept verbatim for operators.
    pub provider_status: String,
    /// `type`: `withdrawal`, `withdrawal_exchange`, ...
    pub kind: Option<String>,
    pub address: Option<ReportedAddress>,
    pub sent: Option<CurrencyAmount>,
    pub received: Option<CurrencyAmount>,
    pub fees: Vec<Fee>,
    pub txids: Vec<String>,
    /// Non-empty error text from the provider.
    pub error: Option<String>,
    /// Fields that were present but could not be read.
    pub unreadable: Vec<String>,
}

impl ProviderDetails {
    pub fn status(&self) -> ProviderStatus {
        ProviderStatus::classify(&self.provider_status)
    }

    /// Whether the report carries free text of CoinsPaid's that may quote a request's
    /// travel-rule data: an `error`, or a status word it does not document.
    pub fn has_free_text(&self) -> bool {
        self.error.is_some() || self.status() == ProviderStatus::Unrecognized
    }

    /// The report with `r`'s values scrubbed from its free text. A documented status word
    /// is left as it is, so the report still means what it meant.
    pub fn scrubbed(&self, r: &crate::domain::travel_rule::Redactor) -> Self {
        let mut scrubbed = self.clone();
        scrubbed.error = r.scrub_opt(self.error.as_deref());
        if self.status() == ProviderStatus::Unrecognized {
            scrubbed.provider_status = r.scrub(&self.provider_status);
        }
        scrubbed
    }
}

impl From<Report> for ProviderDetails {
    fn from(report: Report) -> Self {
        Self {
            provider_id: report.id,
            provider_status: report.status.unwrap_or_default(),
            kind: report.kind,
            address: report.crypto_address,
            sent: report.currency_sent,
            received: report.currency_received,
            fees: report.fees,
            txids: report.txids,
            error: report.error,
            unreadable: report.unreadable,
        }
    }
}

/// A verified callback, sorted into what we act on, what we only acknowledge, and what we
/// cannot read.
#[derive(Debug, Clone, PartialEq)]
pub enum ParsedCallback {
    Withdrawal {
        foreign_id: String,
        details: Box<ProviderDetails>,
    },
    /// Deposits, exchanges, invoices, or a withdrawal without a foreign id (made outside
    /// payoutd): acknowledged, ignored.
    Ignored { kind: String, reason: &'static str },
    /// Valid JSON, but without a readable `type`, or a withdrawal without a readable `status`:
    /// stored and flagged for an operator, never acted on.
    Unreadable {
        foreign_id: Option<String>,
        reason: &'static str,
    },
    /// Valid JSON with an object key twice (`key`, as a path): readers disagree about which
    /// one counts, so it is an anomaly, never acted on. `foreign_id` is the one named, unless
    /// that is the key given twice.
    DuplicateKey {
        foreign_id: Option<String>,
        key: String,
    },
}

/// Parses a body whose signature has already been verified. `Err` only when it is not JSON.
pub fn parse(body: &[u8]) -> Result<ParsedCallback, serde_json::Error> {
    let value: Value = serde_json::from_slice(body)?;
    if let Some(key) = crate::strict_json::duplicate_key(body) {
        let foreign_id = (key != "foreign_id")
            .then(|| value.get("foreign_id").and_then(Value::as_str))
            .flatten()
            .filter(|f| !f.is_empty())
            .map(str::to_owned);
        return Ok(ParsedCallback::DuplicateKey { foreign_id, key });
    }
    let Some(report) = Report::from_value(&value) else {
        return Ok(ParsedCallback::Unreadable {
            foreign_id: None,
            reason: "not a JSON object",
        });
    };
    let foreign_id = report.foreign_id.clone().filter(|f| !f.is_empty());
    let Some(kind) = report.kind.clone() else {
        return Ok(ParsedCallback::Unreadable {
            foreign_id,
            reason: "no readable type",
        });
    };
    if !report.is_withdrawal() {
        return Ok(ParsedCallback::Ignored {
            kind,
            reason: "not a withdrawal",
        });
    }
    let Some(foreign_id) = foreign_id else {
        return Ok(ParsedCallback::Ignored {
            kind,
            reason: "withdrawal callback without foreign_id",
        });
    };
    if report.status.as_deref().is_none_or(str::is_empty) {
        return Ok(ParsedCallback::Unreadable {
            foreign_id: Some(foreign_id),
            reason: "withdrawal callback without a readable status",
        });
    }
    Ok(ParsedCallback::Withdrawal {
        foreign_id,
        details: Box::new(report.into()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn withdrawal_callbacks_carry_foreign_id_and_details() {
        let body =
            br#"{"id":"7","type":"withdrawal_exchange","foreign_id":"pd-1","status":"confirmed",
            "crypto_address":{"currency":"EUR","convert_to":"BTC","address":"a","tag":123},
            "currency_sent":{"currency":"EUR","amount":"100.00"},
            "currency_received":{"currency":"BTC","amount":0.0015},
            "transactions":[{"txid":"abc","confirmations":"0"},{"txid":""},{"txid":null}],
            "fees":[{"type":"mining","currency":"BTC","amount":"0.0001"},{"type":"x"}],
            "error":"","unknown":{"nested":true}}"#;
        let ParsedCallback::Withdrawal {
            foreign_id,
            details,
        } = parse(body).unwrap()
        else {
            panic!("expected a withdrawal");
        };
        assert_eq!(foreign_id, "pd-1");
        assert_eq!(details.provider_id, Some(7));
        assert_eq!(details.txids, vec!["abc".to_string()]);
        assert_eq!(details.error, None);
        assert_eq!(details.fees.len(), 1);
        assert_eq!(details.received.unwrap().amount.to_string(), "0.0015");
        let address = details.address.unwrap();
        assert_eq!(address.tag.as_deref(), Some("123"));
        assert_eq!(address.convert_to.as_deref(), Some("BTC"));
        assert!(details.unreadable.is_empty());
    }

    #[test]
    fn a_field_of_the_wrong_type_is_noted_not_fatal() {
        let body = br#"{"id":1,"type":"withdrawal","foreign_id":"f","status":"confirmed",
            "currency_sent":{"currency":"BTC","amount":[1]},"crypto_address":"x","error":null}"#;
        let ParsedCallback::Withdrawal { details, .. } = parse(body).unwrap() else {
            panic!("expected a withdrawal");
        };
        assert_eq!(details.sent, None);
        assert_eq!(
            details.unreadable,
            ["crypto_address", "currency_sent.amount", "currency_sent"]
        );
    }

    #[test]
    fn a_key_given_twice_is_reported_with_the_foreign_id_unless_that_is_the_key() {
        let body = br#"{"id":1,"type":"withdrawal","foreign_id":"f","status":"confirmed",
            "currency_sent":{"currency":"EUR","amount":"1","amount":"1000000"}}"#;
        assert_eq!(
            parse(body).unwrap(),
            ParsedCallback::DuplicateKey {
                foreign_id: Some("f".into()),
                key: "currency_sent.amount".into()
            }
        );
        let body =
            br#"{"type":"withdrawal","foreign_id":"f","foreign_id":"g","status":"confirmed"}"#;
        assert_eq!(
            parse(body).unwrap(),
            ParsedCallback::DuplicateKey {
                foreign_id: None,
                key: "foreign_id".into()
            }
        );
    }

    #[test]
    fn deposits_and_foreign_id_less_callbacks_are_ignored() {
        let deposit = br#"{"id":1,"type":"deposit","status":"confirmed","crypto_address":{"currency":"BTC","address":"x","foreign_id":"u"}}"#;
        assert!(matches!(
            parse(deposit).unwrap(),
            ParsedCallback::Ignored { .. }
        ));
        let no_id = br#"{"id":1,"type":"withdrawal","status":"confirmed"}"#;
        assert!(matches!(
            parse(no_id).unwrap(),
            ParsedCallback::Ignored { .. }
        ));
        assert!(parse(b"not json").is_err());
    }

    #[test]
    fn json_that_cannot_be_interpreted_is_unreadable() {
        for body in [
            &br#"[1,2]"#[..],
            br#"{"id":1,"foreign_id":"f","status":"confirmed"}"#,
            br#"{"id":1,"type":"withdrawal","foreign_id":"f"}"#,
            br#"{"id":1,"type":"withdrawal","foreign_id":"f","status":{"a":1}}"#,
        ] {
            assert!(
                matches!(parse(body).unwrap(), ParsedCallback::Unreadable { .. }),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
