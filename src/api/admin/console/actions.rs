//! What a console form asks for, parsed from its fields: the same checks as the operator API
//! (`check_reason`), and what the confirmation step shows and posts again.

use std::collections::HashMap;

use crate::api::admin::check_reason;
use crate::operators::policy::Outcome;

/// A form's fields (`application/x-www-form-urlencoded`); the last of a repeated name wins.
pub type Form = HashMap<String, String>;

pub fn parse_form(body: &[u8]) -> Form {
    form_urlencoded::parse(body).into_owned().collect()
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Approve {
        note: Option<String>,
    },
    Reject {
        reason: String,
    },
    Retry {
        note: Option<String>,
    },
    LookUp,
    Resolve {
        outcome: Outcome,
        reason: String,
        override_lookup: bool,
    },
    Acknowledge {
        reason: String,
    },
}

fn reason(form: &Form, required: bool) -> Result<Option<String>, String> {
    check_reason("reason", form.get("reason").cloned(), required).map_err(|e| e.detail)
}

impl Action {
    /// The action named in the URL with its form's fields, or why they do not do.
    pub fn from_form(name: &str, form: &Form) -> Result<Self, String> {
        Ok(match name {
            "approve" => Self::Approve {
                note: reason(form, false)?,
            },
            "reject" => Self::Reject {
                reason: reason(form, true)?.unwrap_or_default(),
            },
            "retry" => Self::Retry {
                note: reason(form, false)?,
            },
            "lookup" => Self::LookUp,
            "acknowledge" => Self::Acknowledge {
                reason: reason(form, true)?.unwrap_or_default(),
            },
            "resolve" => Self::Resolve {
                outcome: match form.get("outcome").map(String::as_str) {
                    Some("paid") => Outcome::Paid,
                    Some("not_paid") => Outcome::NotPaid,
                    _ => return Err("outcome: choose paid or not paid".into()),
                },
                reason: reason(form, true)?.unwrap_or_default(),
                // An unticked checkbox sends nothing; only an explicit tick overrides.
                override_lookup: form.get("override").is_some_and(|v| v == "yes"),
            },
            _ => return Err(format!("no such action: {name}")),
        })
    }

    /// The URL segment, as `from_form` reads it.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Approve { .. } => "approve",
            Self::Reject { .. } => "reject",
            Self::Retry { .. } => "retry",
            Self::LookUp => "lookup",
            Self::Resolve { .. } => "resolve",
            Self::Acknowledge { .. } => "acknowledge",
        }
    }

    pub fn verb(&self) -> &'static str {
        match self {
            Self::Approve { .. } => "approve",
            Self::Reject { .. } => "reject",
            Self::Retry { .. } => "retry now",
            Self::LookUp => "look up",
            Self::Acknowledge { .. } => "acknowledge",
            Self::Resolve {
                outcome: Outcome::Paid,
                ..
            } => "resolve as paid",
            Self::Resolve {
                outcome: Outcome::NotPaid,
                ..
            } => "resolve as not paid",
        }
    }

    /// What confirming does, in words, on the confirmation step.
    pub fn consequence(&self) -> &'static str {
        match self {
            Self::Approve { .. } => "Approve this withdrawal? It is sent to CoinsPaid at once with its foreign_id (unless its currency is paused).",
            Self::Reject { .. } => "Reject this withdrawal? Its amount is released to the user; the reason is shown to the website.",
            Self::Retry { .. } => "Send this withdrawal to CoinsPaid again now, with the same foreign_id?",
            Self::LookUp => "Ask CoinsPaid now? A final answer that matches settles the withdrawal.",
            Self::Resolve { outcome: Outcome::Paid, .. } => "Resolve as PAID? The held amount is debited for good.",
            Self::Resolve { outcome: Outcome::NotPaid, .. } => "Resolve as NOT PAID? The held amount is released to the user.",
            Self::Acknowledge { .. } => "Acknowledge the anomaly? It leaves the stuck queue until another one is recorded; no status and no money change.",
        }
    }

    /// The fields the confirmation step posts again (besides csrf and confirm).
    pub fn fields(&self) -> Vec<(&'static str, String)> {
        match self {
            Self::Approve { note: Some(n) } | Self::Retry { note: Some(n) } => {
                vec![("reason", n.clone())]
            }
            Self::Reject { reason } | Self::Acknowledge { reason } => {
                vec![("reason", reason.clone())]
            }
            Self::Resolve {
                outcome,
                reason,
                override_lookup,
            } => {
                let mut f = vec![
                    (
                        "outcome",
                        match outcome {
                            Outcome::Paid => "paid",
                            Outcome::NotPaid => "not_paid",
                        }
                        .to_owned(),
                    ),
                    ("reason", reason.clone()),
                ];
                if *override_lookup {
                    f.push(("override", "yes".into()));
                }
                f
            }
            _ => vec![],
        }
    }

    /// What the confirmation step lists besides the withdrawal.
    pub fn summary(&self) -> Vec<(&'static str, String)> {
        let mut rows: Vec<(&'static str, String)> = self
            .fields()
            .into_iter()
            .filter(|(name, _)| *name == "reason")
            .collect();
        if let Self::Resolve {
            override_lookup, ..
        } = self
        {
            rows.push((
                "override",
                if *override_lookup {
                    "yes: even if CoinsPaid's look-up disagrees"
                } else {
                    "no: only if CoinsPaid's look-up agrees"
                }
                .into(),
            ));
        }
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> Form {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_form_becomes_the_action_the_api_would_take() {
        assert_eq!(
            Action::from_form("approve", &form(&[("reason", "  ")])),
            Ok(Action::Approve { note: None })
        );
        assert!(Action::from_form("reject", &form(&[]))
            .unwrap_err()
            .contains("reason"));
        assert_eq!(
            Action::from_form(
                "resolve",
                &form(&[
                    ("outcome", "paid"),
                    ("reason", "on chain"),
                    ("override", "yes")
                ])
            ),
            Ok(Action::Resolve {
                outcome: Outcome::Paid,
                reason: "on chain".into(),
                override_lookup: true
            })
        );
        assert!(Action::from_form("resolve", &form(&[("reason", "x")])).is_err());
        assert!(Action::from_form("acknowledge", &form(&[("reason", " ")]))
            .unwrap_err()
            .contains("reason"));
        assert!(Action::from_form("delete", &form(&[])).is_err());
    }

    #[test]
    fn the_confirmation_posts_the_same_action_again() {
        for action in [
            Action::Approve {
                note: Some("known".into()),
            },
            Action::Reject {
                reason: "deny list".into(),
            },
            Action::Retry { note: None },
            Action::LookUp,
            Action::Acknowledge {
                reason: "refund agreed with CoinsPaid".into(),
            },
            Action::Resolve {
                outcome: Outcome::NotPaid,
                reason: "ticket 1".into(),
                override_lookup: false,
            },
        ] {
            let again: Form = action
                .fields()
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect();
            assert_eq!(Action::from_form(action.name(), &again), Ok(action));
        }
    }
}
