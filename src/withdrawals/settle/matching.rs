//! Is a provider report about *this* withdrawal? A verified signature proves CoinsPaid sent
//! it, not that it describes what we asked for: CoinsPaid's docs tell merchants to validate
//! the values of known parameters too. A report that disagrees moves no money.
//!
//! Pure: compares a stored withdrawal with what the report says, where it says it. Blocks a
//! documented version leaves out (`currency_sent` in the newer callbacks) are not required.

use crate::coinspaid::callback::ProviderDetails;
use crate::coinspaid::wire::{EXCHANGE_WITHDRAWAL_TYPES, PLAIN_WITHDRAWAL_TYPES};
use crate::withdrawals::store::Withdrawal;

/// Every way `report` disagrees with `withdrawal`, in words fit for a log line and for
/// operators (no address or personal data is quoted). Empty: the report may be applied.
pub fn mismatches(withdrawal: &Withdrawal, report: &ProviderDetails) -> Vec<String> {
    let mut found = Vec::new();
    // A checked field we could not read cannot be checked: not knowing is not agreeing.
    for field in report.unreadable.iter().filter(|f| f.as_str() != "error") {
        found.push(format!("{field} could not be read"));
    }
    let receiving = withdrawal
        .convert_to
        .as_ref()
        .unwrap_or(&withdrawal.currency)
        .as_str();
    if let Some(kind) = &report.kind {
        let expected = if withdrawal.convert_to.is_some() {
            &EXCHANGE_WITHDRAWAL_TYPES
        } else {
            &PLAIN_WITHDRAWAL_TYPES
        };
        if !expected.contains(&kind.as_str()) {
            found.push(format!(
                "type {kind} does not fit a withdrawal {}",
                if withdrawal.convert_to.is_some() {
                    "with convert_to"
                } else {
                    "without convert_to"
                }
            ));
        }
    }
    if let (Some(known), Some(reported)) = (withdrawal.provider_id, report.provider_id) {
        if known != reported {
            found.push(format!(
                "CoinsPaid id {reported} differs from the recorded {known}"
            ));
        }
    }
    if let Some(sent) = &report.sent {
        if sent.currency != withdrawal.currency.as_str() {
            found.push(format!(
                "currency_sent is in {}, the withdrawal pays {}",
                sent.currency, withdrawal.currency
            ));
        } else if sent.amount != withdrawal.amount {
            found.push(format!(
                "currency_sent amount {} differs from the withdrawal's {}",
                sent.amount, withdrawal.amount
            ));
        }
    }
    if let Some(received) = &report.received {
        if received.currency != receiving {
            found.push(format!(
                "currency_received is in {}, the withdrawal sends {receiving}",
                received.currency
            ));
        }
    }
    if let Some(address) = &report.address {
        if let Some(currency) = &address.currency {
            if currency != withdrawal.currency.as_str() && currency != receiving {
                found.push(format!(
                    "crypto_address is in {currency}, the withdrawal is {} to {receiving}",
                    withdrawal.currency
                ));
            }
        }
        if let Some(convert_to) = &address.convert_to {
            if Some(convert_to.as_str()) != withdrawal.convert_to.as_ref().map(|c| c.as_str()) {
                found.push(format!(
                    "crypto_address converts to {convert_to}, the withdrawal to {}",
                    withdrawal
                        .convert_to
                        .as_ref()
                        .map_or("nothing", |c| c.as_str())
                ));
            }
        }
        if let Some(reported) = &address.address {
            if !same_address(reported, &withdrawal.address) {
                found.push("crypto_address.address differs from the withdrawal's".to_owned());
            }
        }
        if let Some(tag) = address.tag.as_deref().filter(|t| !t.is_empty()) {
            if withdrawal.tag.as_deref() != Some(tag) {
                found.push("crypto_address.tag differs from the withdrawal's".to_owned());
            }
        }
    }
    found
}

/// Hex (`0x…`) and bech32 addresses are case-insensitive; base58 and the rest are not.
fn same_address(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    let single_case = |s: &str| {
        !(s.bytes().any(|c| c.is_ascii_lowercase()) && s.bytes().any(|c| c.is_ascii_uppercase()))
    };
    let hex = |s: &str| s.len() > 2 && s[..2].eq_ignore_ascii_case("0x");
    let bech32 = |s: &str| s.contains('1') && single_case(s) && s.len() >= 14;
    ((hex(a) && hex(b)) || (bech32(a) && bech32(b))) && a.eq_ignore_ascii_case(b)
}

#[cfg(test)]
pub(super) mod tests {
    use chrono::Utc;
    use rust_decimal::Decimal;
    use sqlx::types::Json;
    use uuid::Uuid;

    use super::*;
    use crate::coinspaid::wire::{CurrencyAmount, ReportedAddress};
    use crate::domain::{Currency, ForeignId, UserId, WithdrawalStatus};

    /// A processing 100.00 EUR withdrawal with CoinsPaid id 7 (also `settle_batch`'s fixture).
    pub(in crate::withdrawals) fn withdrawal(convert_to: Option<&str>) -> Withdrawal {
        Withdrawal {
            id: Uuid::now_v7(),
            foreign_id: ForeignId::generate(),
            user_id: UserId::parse("u1").unwrap(),
            amount: "100.00".parse().unwrap(),
            currency: Currency::parse("EUR").unwrap(),
            convert_to: convert_to.map(|c| Currency::parse(c).unwrap()),
            address: "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq".into(),
            tag: None,
            end_user_reference: "u1".into(),
            reference: None,
            status: WithdrawalStatus::Processing,
            provider_id: Some(7),
            provider_status: None,
            sent_amount: None,
            sent_currency: None,
            received_amount: None,
            received_currency: None,
            fees: Json(Vec::new()),
            txids: Json(Vec::new()),
            error: None,
            anomaly: None,
            outcome_unknown: false,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    fn amount(currency: &str, value: &str) -> Option<CurrencyAmount> {
        Some(CurrencyAmount {
            currency: currency.into(),
            amount: value.parse::<Decimal>().unwrap(),
        })
    }

    fn matching_report() -> ProviderDetails {
        ProviderDetails {
            provider_id: Some(7),
            provider_status: "confirmed".into(),
            kind: Some("withdrawal_exchange".into()),
            address: Some(ReportedAddress {
                currency: Some("EUR".into()),
                convert_to: Some("BTC".into()),
                address: Some("BC1QAR0SRRR7XFKVY5L643LYDNW9RE59GTZZWF5MDQ".into()),
                tag: None,
            }),
            sent: amount("EUR", "100"),
            received: amount("BTC", "0.0016"),
            ..ProviderDetails::default()
        }
    }

    #[test]
    fn a_report_that_agrees_has_no_mismatch() {
        assert_eq!(
            mismatches(&withdrawal(Some("BTC")), &matching_report()),
            Vec::<String>::new()
        );
        // The newer callbacks leave the blocks out: nothing to disagree with.
        let bare = ProviderDetails {
            provider_status: "confirmed".into(),
            ..ProviderDetails::default()
        };
        assert!(mismatches(&withdrawal(Some("BTC")), &bare).is_empty());
    }

    #[test]
    fn each_disagreement_is_found() {
        let w = withdrawal(Some("BTC"));
        let cases: Vec<(ProviderDetails, &str)> = vec![
            (
                ProviderDetails {
                    kind: Some("withdrawal".into()),
                    ..matching_report()
                },
                "type withdrawal",
            ),
            (
                ProviderDetails {
                    provider_id: Some(8),
                    ..matching_report()
                },
                "CoinsPaid id 8",
            ),
            (
                ProviderDetails {
                    sent: amount("USD", "1"),
                    ..matching_report()
                },
                "currency_sent is in USD",
            ),
            (
                ProviderDetails {
                    sent: amount("EUR", "100.01"),
                    ..matching_report()
                },
                "currency_sent amount 100.01",
            ),
            (
                ProviderDetails {
                    received: amount("ETH", "1"),
                    ..matching_report()
                },
                "currency_received is in ETH",
            ),
            (
                ProviderDetails {
                    address: Some(ReportedAddress {
                        address: Some("bc1qotheraddressotheraddressotheraddress".into()),
                        ..ReportedAddress::default()
                    }),
                    ..matching_report()
                },
                "crypto_address.address",
            ),
            (
                ProviderDetails {
                    address: Some(ReportedAddress {
                        currency: Some("ETH".into()),
                        ..ReportedAddress::default()
                    }),
                    ..matching_report()
                },
                "crypto_address is in ETH",
            ),
            (
                ProviderDetails {
                    address: Some(ReportedAddress {
                        tag: Some("99".into()),
                        ..ReportedAddress::default()
                    }),
                    ..matching_report()
                },
                "crypto_address.tag",
            ),
            (
                ProviderDetails {
                    unreadable: vec!["currency_sent.amount".into()],
                    sent: None,
                    ..matching_report()
                },
                "currency_sent.amount could not be read",
            ),
        ];
        for (report, expected) in cases {
            let found = mismatches(&w, &report);
            assert!(
                found.len() == 1 && found[0].starts_with(expected),
                "{expected}: {found:?}"
            );
        }
    }

    #[test]
    fn plain_withdrawals_take_plain_types_only() {
        let w = withdrawal(None);
        let report = |kind: &str| ProviderDetails {
            kind: Some(kind.into()),
            ..ProviderDetails::default()
        };
        assert!(mismatches(&w, &report("withdrawal")).is_empty());
        assert!(mismatches(&w, &report("withdrawal_instant")).is_empty());
        assert_eq!(mismatches(&w, &report("withdrawal_exchange")).len(), 1);
        assert_eq!(mismatches(&w, &report("deposit")).len(), 1);
    }

    #[test]
    fn addresses_compare_case_insensitively_only_where_the_format_is() {
        assert!(same_address(
            "0xAbC0000000000000000000000000000000000001",
            "0xabc0000000000000000000000000000000000001"
        ));
        assert!(!same_address(
            "115Mn1jCjBh1CNqug7yAB21Hq2rw8PfmTA",
            "115mn1jcjbh1cnqug7yab21hq2rw8pfmta"
        ));
    }
}
