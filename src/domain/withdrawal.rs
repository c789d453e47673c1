//! The withdrawal state machine: a pure function from (status, provider event) to a transition.
//!
//! The submission path, the callback handler (alone or in a settle batch) and the reconciler
//! all decide through [`WithdrawalStatus::apply`], and an operator's decision through
//! [`WithdrawalStatus::decide`], so "what may happen to a withdrawal" lives in one place;
//! `withdrawals::settle` writes what they decide (CoinsPaid's acceptance, `pending ->
//! processing`, is written by its own statement in `withdrawals::submit`).

use std::fmt;

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WithdrawalStatus {
    /// Held for an operator's approval; not sent.
    #[serde(rename = "awaiting_approval")]
    AwaitingApproval,
    /// Held, not yet accepted by CoinsPaid.
    Pending,
    /// Accepted by CoinsPaid, awaiting its final word.
    Processing,
    /// Terminal: CoinsPaid sent it; the hold became a debit.
    Confirmed,
    /// Terminal: CoinsPaid cancelled or declined it; the hold was released.
    Cancelled,
    /// Terminal: CoinsPaid refused the request; the hold was released.
    Rejected,
}

impl WithdrawalStatus {
    pub const ALL: [WithdrawalStatus; 6] = [
        Self::AwaitingApproval,
        Self::Pending,
        Self::Processing,
        Self::Confirmed,
        Self::Cancelled,
        Self::Rejected,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::AwaitingApproval => "awaiting_approval",
            Self::Pending => "pending",
            Self::Processing => "processing",
            Self::Confirmed => "confirmed",
            Self::Cancelled => "cancelled",
            Self::Rejected => "rejected",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Confirmed | Self::Cancelled | Self::Rejected)
    }

    /// Decides what `event` does to a withdrawal in this status. Pure: the caller applies the
    /// returned transition inside the transaction that holds the withdrawal's row lock.
    pub fn apply(self, event: &ProviderEvent) -> Transition {
        use ProviderEvent::{Reported, SubmitAccepted, SubmitRefused};
        use ProviderStatus::{Failed, InProgress, Succeeded, Unrecognized};
        use WithdrawalStatus::*;
        let to = |status, effect| Transition::Move { to: status, effect };
        match (self, event) {
            // Never sent: anything CoinsPaid says about it cannot be about this withdrawal.
            (AwaitingApproval, _) => Transition::Anomaly,
            (Pending, SubmitAccepted) => to(Processing, Effect::None),
            (Pending, SubmitRefused) => to(Rejected, Effect::Release),
            (Pending | Processing, Reported(Succeeded)) => to(Confirmed, Effect::Debit),
            (Pending | Processing, Reported(Failed)) => to(Cancelled, Effect::Release),
            // A callback for a withdrawal we still think is pending means CoinsPaid has it:
            // the callback simply beat the submit answer.
            // An undocumented word still says CoinsPaid has it; the caller flags it for a person.
            (Pending, Reported(InProgress | Unrecognized)) => to(Processing, Effect::None),
            (Processing, Reported(InProgress | Unrecognized)) => Transition::Note,
            (Processing, SubmitAccepted) => Transition::Duplicate,

            // A refusal for something CoinsPaid already reported on cannot be trusted to
            // mean "not sent": never release on it.
            (Processing | Confirmed, SubmitRefused) => Transition::Anomaly,

            (Confirmed, Reported(Succeeded)) => Transition::Duplicate,
            (Confirmed, Reported(InProgress | Unrecognized)) => Transition::Duplicate,
            (Confirmed, SubmitAccepted) => Transition::Duplicate,
            (Confirmed, Reported(Failed)) => Transition::Anomaly,

            (Cancelled, Reported(Failed | InProgress | Unrecognized)) => Transition::Duplicate,
            (Cancelled, SubmitAccepted | SubmitRefused) => Transition::Duplicate,
            (Cancelled, Reported(Succeeded)) => Transition::Anomaly,

            (Rejected, Reported(Failed)) => Transition::Duplicate,
            (Rejected, SubmitRefused) => Transition::Duplicate,
            // We released the hold because CoinsPaid refused; if it now says the payout
            // exists, money may leave without a debit. Someone must look.
            (Rejected, Reported(Succeeded | InProgress | Unrecognized) | SubmitAccepted) => {
                Transition::Anomaly
            }
        }
    }
}

/// What a person decides about a withdrawal: an operator, or the website cancelling its own
/// request. Kept apart from [`ProviderEvent`]: these are not reports of what CoinsPaid did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// An operator lets a withdrawal awaiting approval be sent.
    Approve,
    /// An operator refuses it before it is sent: released.
    Reject,
    /// The website withdraws its request before it is sent: released.
    Cancel,
    /// An operator states the payout happened (CoinsPaid's dashboard, a look-up): debited.
    ResolvePaid,
    /// An operator states the payout did not and will not happen: released.
    ResolveNotPaid,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Approve => "approve",
            Self::Reject => "reject",
            Self::Cancel => "cancel",
            Self::ResolvePaid => "resolve_paid",
            Self::ResolveNotPaid => "resolve_not_paid",
        }
    }
}

impl WithdrawalStatus {
    /// Where `decision` takes a withdrawal in this status, or `None` when it may not be made
    /// now (already sent, already settled). Pure, like [`WithdrawalStatus::apply`]; the caller
    /// applies the move under the withdrawal's row lock, so of two racing decisions (or a
    /// decision and a callback) exactly one finds the status it needs.
    pub fn decide(self, decision: Decision) -> Option<(WithdrawalStatus, Effect)> {
        use Decision::*;
        use WithdrawalStatus::*;
        match (self, decision) {
            (AwaitingApproval, Approve) => Some((Pending, Effect::None)),
            (AwaitingApproval, Reject) => Some((Rejected, Effect::Release)),
            (AwaitingApproval, Cancel) => Some((Cancelled, Effect::Release)),
            // A resolution is for what was (maybe) sent; before approval there is nothing to resolve.
            (Pending | Processing, ResolvePaid) => Some((Confirmed, Effect::Debit)),
            (Pending | Processing, ResolveNotPaid) => Some((Cancelled, Effect::Release)),
            _ => None,
        }
    }
}

impl fmt::Display for WithdrawalStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// CoinsPaid's status for a withdrawal, reduced to what our state machine distinguishes.
/// Only the documented words move money; anything else is recorded and followed up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderStatus {
    /// `confirmed`: final success.
    Succeeded,
    /// `cancelled` or `declined`: final failure, nothing was sent (CoinsPaid reports its
    /// "error" and "rejected" as cancelled).
    Failed,
    /// `pending` (under review), `not_confirmed` (processing, verifying), and `processing`,
    /// the status of a fresh withdrawal: not final.
    InProgress,
    /// A word CoinsPaid does not document for withdrawals (`failed`, `rejected`, anything new):
    /// CoinsPaid has the withdrawal, but what it means for the money is unknown.
    Unrecognized,
}

impl ProviderStatus {
    pub fn classify(raw: &str) -> Self {
        match raw {
            "confirmed" => Self::Succeeded,
            "cancelled" | "declined" => Self::Failed,
            "pending" | "not_confirmed" | "processing" => Self::InProgress,
            _ => Self::Unrecognized,
        }
    }
}

/// Something CoinsPaid told us about a withdrawal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderEvent {
    /// `POST /v2/withdrawal/crypto` answered 2xx.
    SubmitAccepted,
    /// `POST /v2/withdrawal/crypto` answered a definitive refusal: nothing was created.
    SubmitRefused,
    /// A callback (or a status lookup) reported this status.
    Reported(ProviderStatus),
}

/// Money that moves with a transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    None,
    /// The hold leaves the balance: the payout happened.
    Debit,
    /// The hold returns to available: the payout did not happen.
    Release,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// The status changes to `to`, and `effect` is written to the ledger.
    Move {
        to: WithdrawalStatus,
        effect: Effect,
    },
    /// Nothing new: a repeated or reordered report. Acknowledge and move nothing.
    Duplicate,
    /// Information only: record the provider's status, keep ours.
    Note,
    /// Contradicts a terminal status: record it, alert, move nothing.
    Anomaly,
}

#[cfg(test)]
mod tests {
    use super::ProviderEvent::*;
    use super::ProviderStatus::*;
    use super::WithdrawalStatus::*;
    use super::*;

    const EVENTS: [ProviderEvent; 6] = [
        SubmitAccepted,
        SubmitRefused,
        Reported(Succeeded),
        Reported(Failed),
        Reported(InProgress),
        Reported(Unrecognized),
    ];

    fn mv(to: WithdrawalStatus, effect: Effect) -> Transition {
        Transition::Move { to, effect }
    }

    #[test]
    fn every_status_event_pair_has_the_expected_transition() {
        use Transition::{Anomaly, Duplicate, Note};
        let table = [
            (AwaitingApproval, [Anomaly; 6]),
            (
                Pending,
                [
                    mv(Processing, Effect::None),
                    mv(Rejected, Effect::Release),
                    mv(Confirmed, Effect::Debit),
                    mv(Cancelled, Effect::Release),
                    mv(Processing, Effect::None),
                    mv(Processing, Effect::None),
                ],
            ),
            (
                Processing,
                [
                    Duplicate,
                    Anomaly,
                    mv(Confirmed, Effect::Debit),
                    mv(Cancelled, Effect::Release),
                    Note,
                    Note,
                ],
            ),
            (
                Confirmed,
                [Duplicate, Anomaly, Duplicate, Anomaly, Duplicate, Duplicate],
            ),
            (
                Cancelled,
                [
                    Duplicate, Duplicate, Anomaly, Duplicate, Duplicate, Duplicate,
                ],
            ),
            (
                Rejected,
                [Anomaly, Duplicate, Anomaly, Duplicate, Anomaly, Anomaly],
            ),
        ];
        for (status, expected) in table {
            for (event, want) in EVENTS.iter().zip(expected) {
                assert_eq!(status.apply(event), want, "{status} + {event:?}");
            }
        }
    }

    #[test]
    fn terminal_statuses_never_move_and_never_move_money() {
        for status in WithdrawalStatus::ALL
            .into_iter()
            .filter(|s| s.is_terminal())
        {
            for event in &EVENTS {
                assert!(
                    !matches!(status.apply(event), Transition::Move { .. }),
                    "{status} moved on {event:?}"
                );
            }
        }
    }

    #[test]
    fn money_moves_only_into_the_matching_terminal_status() {
        for status in WithdrawalStatus::ALL {
            for event in &EVENTS {
                if let Transition::Move { to, effect } = status.apply(event) {
                    match effect {
                        Effect::Debit => assert_eq!(to, Confirmed),
                        Effect::Release => assert!(matches!(to, Cancelled | Rejected)),
                        Effect::None => assert!(!to.is_terminal()),
                    }
                }
            }
        }
    }

    #[test]
    fn only_documented_words_move_money() {
        assert_eq!(ProviderStatus::classify("confirmed"), Succeeded);
        for word in ["cancelled", "declined"] {
            assert_eq!(ProviderStatus::classify(word), Failed, "{word}");
        }
        for word in ["pending", "not_confirmed", "processing"] {
            assert_eq!(ProviderStatus::classify(word), InProgress, "{word}");
        }
        // The dashboard's Failed and Rejected, a spelling variant, a new word, a case change:
        // recorded and followed up, never settled.
        for word in [
            "failed",
            "rejected",
            "canceled",
            "verifying",
            "Confirmed",
            "",
        ] {
            assert_eq!(ProviderStatus::classify(word), Unrecognized, "{word}");
        }
    }

    #[test]
    fn decisions_move_only_from_the_status_they_are_for() {
        use Decision::*;
        let all = [Approve, Reject, Cancel, ResolvePaid, ResolveNotPaid];
        for status in WithdrawalStatus::ALL {
            for decision in all {
                let got = status.decide(decision);
                let want = match (status, decision) {
                    (AwaitingApproval, Approve) => Some((Pending, Effect::None)),
                    (AwaitingApproval, Reject) => Some((Rejected, Effect::Release)),
                    (AwaitingApproval, Cancel) => Some((Cancelled, Effect::Release)),
                    (Pending | Processing, ResolvePaid) => Some((Confirmed, Effect::Debit)),
                    (Pending | Processing, ResolveNotPaid) => Some((Cancelled, Effect::Release)),
                    _ => None,
                };
                assert_eq!(got, want, "{status} + {decision:?}");
            }
        }
        // Once decided, no second decision of the race can move it again.
        for decision in all {
            if let Some((to, _)) = AwaitingApproval.decide(decision) {
                for second in [Approve, Reject, Cancel] {
                    assert_eq!(to.decide(second), None, "{decision:?} then {second:?}");
                }
            }
        }
    }

    #[test]
    fn status_names_round_trip() {
        for s in WithdrawalStatus::ALL {
            assert_eq!(WithdrawalStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(WithdrawalStatus::parse("done"), None);
    }
}
