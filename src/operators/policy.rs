//! Whether an operator's resolution agrees with what CoinsPaid says. Pure; the look-up is the
//! caller's. (Which new withdrawals wait for an operator is `withdrawals::create::approval`.)

use crate::domain::withdrawal::ProviderStatus;

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
