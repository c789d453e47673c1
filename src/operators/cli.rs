//! `payoutd admin ...`: the operator API from a shell. It talks to the API, not the database:
//! the one implementation decides, the server's authorization and audit attribution apply
//! (the token names the operator), and a shell needs no database credentials.
//!
//! `PAYOUTD_ADMIN_URL` (default `http://127.0.0.1:8080`) and `PAYOUTD_ADMIN_TOKEN` (the
//! operator's own token, without the name).

use std::process::ExitCode;

use clap::Subcommand;
use serde_json::{json, Value};

const ENV_HELP: &str = "Environment: PAYOUTD_ADMIN_URL (default http://127.0.0.1:8080), \
PAYOUTD_ADMIN_TOKEN (your operator token, without the name). Exit 0 when the API accepted, \
1 when it refused or could not be reached, 2 on a usage error.";

/// One `payoutd admin` command: an operator API call.
#[derive(Debug, Subcommand)]
#[command(after_help = ENV_HELP, subcommand_help_heading = "Operator commands")]
pub enum AdminCommand {
    /// Everything that needs a person, oldest first (next page: its next_cursor)
    #[command(after_help = ENV_HELP)]
    Stuck {
        /// The next_cursor of the page before
        cursor: Option<String>,
    },
    /// A withdrawal: why, ledger, callbacks, audit
    #[command(after_help = ENV_HELP)]
    Show {
        /// The withdrawal's id
        id: String,
    },
    /// Send a withdrawal awaiting approval
    #[command(after_help = ENV_HELP)]
    Approve {
        /// The withdrawal's id
        id: String,
        /// Why, in words (recorded in the audit trail)
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        reason: Vec<String>,
    },
    /// Refuse a withdrawal awaiting approval; the hold is released
    #[command(after_help = ENV_HELP)]
    Reject {
        /// The withdrawal's id
        id: String,
        /// Why, in words (recorded in the audit trail)
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        reason: Vec<String>,
    },
    /// Send a pending withdrawal again now (same foreign_id)
    #[command(after_help = ENV_HELP)]
    Retry {
        /// The withdrawal's id
        id: String,
        /// Why, in words (recorded in the audit trail)
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        reason: Vec<String>,
    },
    /// Ask CoinsPaid about a withdrawal now
    #[command(after_help = ENV_HELP)]
    Lookup {
        /// The withdrawal's id
        id: String,
    },
    /// Settle a withdrawal by hand: paid (debit) or not_paid (release)
    #[command(after_help = ENV_HELP)]
    Resolve {
        /// The withdrawal's id
        id: String,
        #[arg(value_parser = ["paid", "not_paid"])]
        outcome: String,
        /// Why, in words (recorded in the audit trail; `--override` is read among them too)
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        reason: Vec<String>,
        /// Resolve even when a fresh look-up at CoinsPaid disagrees
        #[arg(long = "override")]
        override_lookup: bool,
    },
    /// Record that a person has handled a withdrawal's anomaly
    #[command(after_help = ENV_HELP)]
    Acknowledge {
        /// The withdrawal's id
        id: String,
        /// Why, in words (recorded in the audit trail)
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        reason: Vec<String>,
    },
    /// The pauses in force
    #[command(after_help = ENV_HELP)]
    Pauses,
    /// Stop submissions: of everything (all) or of one currency (BTC...)
    #[command(after_help = ENV_HELP)]
    Pause {
        #[arg(value_name = "all|CUR")]
        scope: String,
        /// Why, in words (recorded in the audit trail)
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        reason: Vec<String>,
    },
    /// Lift a pause
    #[command(after_help = ENV_HELP)]
    Resume {
        #[arg(value_name = "all|CUR")]
        scope: String,
    },
    /// Hold a user's new withdrawals for approval
    #[command(after_help = ENV_HELP)]
    Flag {
        /// The website's user id
        user_id: String,
        /// Why, in words (recorded in the audit trail)
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        reason: Vec<String>,
    },
    /// Remove a user's review flag
    #[command(after_help = ENV_HELP)]
    Unflag {
        /// The website's user id
        user_id: String,
    },
    /// The audit trail, of everything or of one withdrawal
    #[command(after_help = ENV_HELP)]
    Audit {
        /// Only this withdrawal's rows
        withdrawal_id: Option<String>,
    },
}

/// The reason's words as one text; none: `null`, and the API decides.
fn reason_of(words: &[String]) -> Option<String> {
    (!words.is_empty()).then(|| words.join(" "))
}

/// What one command sends: method, path, body.
fn request_of(command: AdminCommand) -> (reqwest::Method, String, Option<Value>) {
    use reqwest::Method;
    let w = |id: &str, action: &str| format!("/admin/v1/withdrawals/{id}/{action}");
    let reason = |words: &[String]| Some(json!({"reason": reason_of(words)}));
    match command {
        AdminCommand::Stuck { cursor } => (
            Method::GET,
            match cursor {
                Some(cursor) => format!("/admin/v1/stuck?cursor={cursor}"),
                None => "/admin/v1/stuck".into(),
            },
            None,
        ),
        AdminCommand::Show { id } => (Method::GET, format!("/admin/v1/withdrawals/{id}"), None),
        AdminCommand::Approve { id, reason: words } => {
            (Method::POST, w(&id, "approve"), reason(&words))
        }
        AdminCommand::Reject { id, reason: words } => {
            (Method::POST, w(&id, "reject"), reason(&words))
        }
        AdminCommand::Retry { id, reason: words } => {
            (Method::POST, w(&id, "retry"), reason(&words))
        }
        AdminCommand::Acknowledge { id, reason: words } => {
            (Method::POST, w(&id, "acknowledge"), reason(&words))
        }
        AdminCommand::Lookup { id } => (Method::POST, w(&id, "lookup"), Some(json!({}))),
        AdminCommand::Resolve {
            id,
            outcome,
            reason: words,
            override_lookup,
        } => {
            let override_lookup = override_lookup || words.iter().any(|a| a == "--override");
            let words: Vec<String> = words.into_iter().filter(|a| a != "--override").collect();
            (
                Method::POST,
                w(&id, "resolve"),
                Some(json!({
                    "outcome": outcome,
                    "reason": words.join(" "),
                    "override": override_lookup,
                })),
            )
        }
        AdminCommand::Pauses => (Method::GET, "/admin/v1/pauses".into(), None),
        AdminCommand::Pause {
            scope,
            reason: words,
        } => (
            Method::PUT,
            format!("/admin/v1/pauses/{scope}"),
            reason(&words),
        ),
        AdminCommand::Resume { scope } => {
            (Method::DELETE, format!("/admin/v1/pauses/{scope}"), None)
        }
        AdminCommand::Flag {
            user_id,
            reason: words,
        } => (
            Method::PUT,
            format!("/admin/v1/users/{user_id}/review-flag"),
            reason(&words),
        ),
        AdminCommand::Unflag { user_id } => (
            Method::DELETE,
            format!("/admin/v1/users/{user_id}/review-flag"),
            None,
        ),
        AdminCommand::Audit { withdrawal_id } => (
            Method::GET,
            match withdrawal_id {
                Some(id) => format!("/admin/v1/audit?withdrawal_id={id}"),
                None => "/admin/v1/audit".into(),
            },
            None,
        ),
    }
}

/// Runs one command; prints the answer as JSON. Exit 0 on 2xx, 1 on a refusal, 2 on usage
/// (clap's exit code for a malformed command line too).
pub async fn run(command: AdminCommand) -> ExitCode {
    let (method, path, body) = request_of(command);
    let Ok(token) = std::env::var("PAYOUTD_ADMIN_TOKEN") else {
        eprintln!(
            "payoutd admin: PAYOUTD_ADMIN_TOKEN is not set (your operator token); see payoutd admin --help"
        );
        return ExitCode::from(2);
    };
    let base =
        std::env::var("PAYOUTD_ADMIN_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
    let mut request = reqwest::Client::new()
        .request(method, format!("{}{path}", base.trim_end_matches('/')))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    match request.send().await {
        Ok(response) => {
            let ok = response.status().is_success();
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            let shown = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| serde_json::to_string_pretty(&v).ok())
                .unwrap_or(text);
            if ok {
                println!(
                    "{}",
                    if shown.is_empty() {
                        status.to_string()
                    } else {
                        shown
                    }
                );
                ExitCode::SUCCESS
            } else {
                eprintln!("{status}\n{shown}");
                ExitCode::from(1)
            }
        }
        Err(err) => {
            eprintln!("cannot reach {base}: {err}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    /// `payoutd admin` as a command line of its own, for parsing in tests.
    #[derive(Debug, Parser)]
    struct Admin {
        #[command(subcommand)]
        command: AdminCommand,
    }

    fn request(text: &str) -> Result<(reqwest::Method, String, Option<Value>), clap::Error> {
        let words = std::iter::once("admin").chain(text.split(' '));
        Admin::try_parse_from(words).map(|admin| request_of(admin.command))
    }

    #[test]
    fn commands_map_to_the_operator_api() {
        let (m, p, b) = request("resolve abc not_paid never arrived --override").unwrap();
        assert_eq!(
            (m.as_str(), p.as_str()),
            ("POST", "/admin/v1/withdrawals/abc/resolve")
        );
        assert_eq!(
            b.unwrap(),
            json!({"outcome": "not_paid", "reason": "never arrived", "override": true})
        );
        let (_, _, b) = request("resolve abc paid --override seen on chain").unwrap();
        assert_eq!(
            b.unwrap(),
            json!({"outcome": "paid", "reason": "seen on chain", "override": true})
        );
        let (m, p, b) = request("acknowledge abc refund agreed").unwrap();
        assert_eq!(
            (m.as_str(), p.as_str()),
            ("POST", "/admin/v1/withdrawals/abc/acknowledge")
        );
        assert_eq!(b.unwrap(), json!({"reason": "refund agreed"}));
        let (m, p, _) = request("pause BTC fees spiking").unwrap();
        assert_eq!((m.as_str(), p.as_str()), ("PUT", "/admin/v1/pauses/BTC"));
        let (_, _, b) = request("approve abc").unwrap();
        assert_eq!(b.unwrap(), json!({"reason": null}));
        let (_, _, b) = request("reject abc -5% fee").unwrap();
        assert_eq!(b.unwrap(), json!({"reason": "-5% fee"}));
        assert!(request("approve").is_err());
        assert!(request("drop-table").is_err());
        let error = request("resolve abc maybe why").unwrap_err();
        assert_eq!(error.exit_code(), 2);
        assert!(error.to_string().contains("maybe"), "{error}");
    }
}
