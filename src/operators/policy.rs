//! The approval policy: which new withdrawals wait in `awaiting_approval`, and whether an
//! operator's resolution agrees with what CoinsPaid says. Pure functions; the facts they need
//! are read by the caller.

use rust_decimal::Decimal;

use super::settings::ApprovalSettings;
use crate::domain::withdrawal::ProviderStatus;

/// What the database knows about the user, read by the create (`withdrawals::group`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserFacts {
    /// The reason of the user's review flag, if flagged.
    pub flagged: Option<String>,
    /// An earlier withdrawal of this user was confirmed.
    pub has_confirmed: bool,
}

/// Why this withdrawal must wait for an operator, or `None` to send it at once. Every rule
/// that applies is named, so the operator sees all of them.
pub fn review_reason(
    policy: &ApprovalSettings,
    currency: &str,
    amount: Decimal,
    facts: &UserFacts,
) -> Option<String> {
    let mut reasons = Vec::new();
    if let Some(threshold) = policy.thresholds.get(currency).filter(|t| amount >= **t) {
        reasons.push(format!("amount at or above {threshold} {currency}"));
    }
    if policy.first_withdrawal && !facts.has_confirmed {
        reasons.push("the user's first withdrawal".to_owned());
    }
    if let Some(flag) = &facts.flagged {
        reasons.push(format!("user flagged for review: {flag}"));
    }
    (!reasons.is_empty()).then(|| reasons.join("; "))
}

/// What an operator states about a payout that may have been sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Paid,
    NotPaid,
}

/// Whether a fresh look-up backs an operator's resolution. `Err` says why not: the operator
/// must then pass `override` to resolve anyway (having checked CoinsPaid's dashboard).
pub fn agrees(outcome: Outcome, lookup: Result<ProviderStatus, &str>) -> Result<(), String> {
    match (outcome, lookup) {
        (Outcome::Paid, Ok(ProviderStatus::Succeeded))
        | (Outcome::NotPaid, Ok(ProviderStatus::Failed)) => Ok(()),
        (_, Ok(status)) => Err(format!(
            "CoinsPaid's look-up reports {status:?}, which does not back this resolution"
        )),
        (_, Err(why)) => Err(format!(
            "CoinsPaid's look-up gives no record to back this resolution ({why})"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> ApprovalSettings {
        ApprovalSettings {
            first_withdrawal: true,
            thresholds: [("EUR".to_owned(), Decimal::from(1000))].into(),
        }
    }

    #[test]
    fn each_rule_holds_a_withdrawal_and_is_named() {
        let seasoned = UserFacts {
            flagged: None,
            has_confirmed: true,
        };
        let p = policy();
        assert_eq!(
            review_reason(&p, "EUR", Decimal::from(999), &seasoned),
            None
        );
        assert!(review_reason(&p, "EUR", Decimal::from(1000), &seasoned)
            .unwrap()
            .contains("at or above 1000 EUR"));
        // Thresholds are per currency: 1000 BTC has none.
        assert_eq!(
            review_reason(&p, "BTC", Decimal::from(5000), &seasoned),
            None
        );
        let first = UserFacts::default();
        assert!(review_reason(&p, "BTC", Decimal::ONE, &first)
            .unwrap()
            .contains("first withdrawal"));
        let flagged = UserFacts {
            flagged: Some("chargebacks".into()),
            has_confirmed: true,
        };
        assert!(review_reason(&p, "BTC", Decimal::ONE, &flagged)
            .unwrap()
            .contains("chargebacks"));
        assert_eq!(
            review_reason(
                &crate::config::Settings::defaults().approval,
                "EUR",
                Decimal::MAX,
                &first
            ),
            None
        );
    }

    #[test]
    fn a_resolution_agrees_only_with_the_matching_final_status() {
        use ProviderStatus::*;
        assert!(agrees(Outcome::Paid, Ok(Succeeded)).is_ok());
        assert!(agrees(Outcome::NotPaid, Ok(Failed)).is_ok());
        for status in [Failed, InProgress, Unrecognized] {
            assert!(agrees(Outcome::Paid, Ok(status)).is_err());
        }
        for status in [Succeeded, InProgress, Unrecognized] {
            assert!(agrees(Outcome::NotPaid, Ok(status)).is_err());
        }
        // "Not found" is never proof either way.
        assert!(agrees(Outcome::NotPaid, Err("404")).is_err());
    }
}
