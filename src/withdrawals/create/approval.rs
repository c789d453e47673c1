//! The approval policy: which new withdrawals wait in `awaiting_approval` for an operator
//! instead of being sent. Pure; the create reads the facts it needs under its locks.

use std::collections::HashMap;

use rust_decimal::Decimal;
use serde::Deserialize;

/// `[approval]`: which new withdrawals wait in `awaiting_approval` for an operator.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalSettings {
    /// A user's first withdrawal (no earlier one was ever confirmed) waits for approval.
    pub first_withdrawal: bool,
    /// Per paying currency: a withdrawal of this amount or more waits (`EUR = "1000"`).
    pub thresholds: HashMap<String, Decimal>,
}

/// What the database knows about the user, read by the create (`withdrawals::create`).
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
}
