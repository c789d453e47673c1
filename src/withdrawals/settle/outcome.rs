//! What became of a callback: the `outcome` column of `callbacks` and the metric label.

use crate::coinspaid::signing::VerifyError;

/// What became of one callback. Also the `outcome` column and the metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackOutcome {
    /// Moved the withdrawal (or recorded a non-final provider status).
    Applied,
    /// Repeated or stale: acknowledged, nothing moved.
    Duplicate,
    /// Not ours to act on: deposits, unknown foreign ids.
    Ignored,
    /// Contradicts a terminal status, or does not match the withdrawal it names: recorded,
    /// shown on the withdrawal, alerted, nothing moved.
    Anomaly,
    /// A status word CoinsPaid does not document: recorded, flagged, looked up, nothing moved.
    Unrecognized,
    /// Verified JSON without a readable type or status: stored, flagged, nothing moved.
    Unreadable,
    /// Signature or key missing or wrong: refused, nothing moved.
    Rejected(VerifyError),
    /// Verified but not JSON: answered 400 (CoinsPaid retries), stored.
    Invalid,
}

impl CallbackOutcome {
    pub fn label(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Duplicate => "duplicate",
            Self::Ignored => "ignored",
            Self::Anomaly => "anomaly",
            Self::Unrecognized => "unrecognized",
            Self::Unreadable => "unreadable",
            Self::Rejected(_) => "rejected",
            Self::Invalid => "invalid",
        }
    }
}
