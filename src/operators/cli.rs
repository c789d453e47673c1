//! `payoutd admin ...`: the operator API from a shell. It talks to the API, not the database:
//! the one implementation decides, the server's authorization and audit attribution apply
//! (the token names the operator), and a shell needs no database credentials.
//!
//! `PAYOUTD_ADMIN_URL` (default `http://127.0.0.1:8080`) and `PAYOUTD_ADMIN_TOKEN` (the
//! operator's own token, without the name).

use std::process::ExitCode;

use serde_json::{json, Value};

const USAGE: &str = "usage: payoutd admin <command>
  stuck [cursor]                          everything that needs a person (next page: its next_cursor)
  show <id>                               a withdrawal: why, ledger, callbacks, audit
  approve <id> [reason]                   send a withdrawal awaiting approval
  reject <id> <reason>                    refuse it; the hold is released
  retry <id> [reason]                     send a pending withdrawal again now (same foreign_id)
  lookup <id>                             ask CoinsPaid now
  resolve <id> paid|not_paid <reason> [--override]
  acknowledge <id> <reason>               a person has handled its anomaly
  pauses | pause <all|CUR> <reason> | resume <all|CUR>
  flag <user_id> <reason> | unflag <user_id>
  audit [withdrawal_id]
env: PAYOUTD_ADMIN_URL (default http://127.0.0.1:8080), PAYOUTD_ADMIN_TOKEN";

/// What one command sends: method, path, body.
fn request_of(args: &[String]) -> Result<(reqwest::Method, String, Option<Value>), String> {
    use reqwest::Method;
    let arg = |i: usize| args.get(i).cloned().ok_or_else(|| USAGE.to_owned());
    let rest = |i: usize| (args.len() > i).then(|| args[i..].join(" "));
    let w = |id: String, action: &str| format!("/admin/v1/withdrawals/{id}/{action}");
    Ok(match args.first().map(String::as_str) {
        Some("stuck") => (
            Method::GET,
            match args.get(1) {
                Some(cursor) => format!("/admin/v1/stuck?cursor={cursor}"),
                None => "/admin/v1/stuck".into(),
            },
            None,
        ),
        Some("show") => (
            Method::GET,
            format!("/admin/v1/withdrawals/{}", arg(1)?),
            None,
        ),
        Some("approve") => (
            Method::POST,
            w(arg(1)?, "approve"),
            Some(json!({"reason": rest(2)})),
        ),
        Some("reject") => (
            Method::POST,
            w(arg(1)?, "reject"),
            Some(json!({"reason": rest(2)})),
        ),
        Some("retry") => (
            Method::POST,
            w(arg(1)?, "retry"),
            Some(json!({"reason": rest(2)})),
        ),
        Some("acknowledge") => (
            Method::POST,
            w(arg(1)?, "acknowledge"),
            Some(json!({"reason": rest(2)})),
        ),
        Some("lookup") => (Method::POST, w(arg(1)?, "lookup"), Some(json!({}))),
        Some("resolve") => {
            let override_lookup = args.iter().any(|a| a == "--override");
            let words: Vec<&String> = args[3.min(args.len())..]
                .iter()
                .filter(|a| *a != "--override")
                .collect();
            let reason = words
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(" ");
            (
                Method::POST,
                w(arg(1)?, "resolve"),
                Some(json!({"outcome": arg(2)?, "reason": reason, "override": override_lookup})),
            )
        }
        Some("pauses") => (Method::GET, "/admin/v1/pauses".into(), None),
        Some("pause") => (
            Method::PUT,
            format!("/admin/v1/pauses/{}", arg(1)?),
            Some(json!({"reason": rest(2)})),
        ),
        Some("resume") => (
            Method::DELETE,
            format!("/admin/v1/pauses/{}", arg(1)?),
            None,
        ),
        Some("flag") => (
            Method::PUT,
            format!("/admin/v1/users/{}/review-flag", arg(1)?),
            Some(json!({"reason": rest(2)})),
        ),
        Some("unflag") => (
            Method::DELETE,
            format!("/admin/v1/users/{}/review-flag", arg(1)?),
            None,
        ),
        Some("audit") => (
            Method::GET,
            match args.get(1) {
                Some(id) => format!("/admin/v1/audit?withdrawal_id={id}"),
                None => "/admin/v1/audit".into(),
            },
            None,
        ),
        _ => return Err(USAGE.to_owned()),
    })
}

/// Runs one command; prints the answer as JSON. Exit 0 on 2xx, 1 on a refusal, 2 on usage.
pub async fn run(args: &[String]) -> ExitCode {
    let (method, path, body) = match request_of(args) {
        Ok(r) => r,
        Err(usage) => {
            eprintln!("{usage}");
            return ExitCode::from(2);
        }
    };
    let Ok(token) = std::env::var("PAYOUTD_ADMIN_TOKEN") else {
        eprintln!("PAYOUTD_ADMIN_TOKEN is not set (your operator token)\n{USAGE}");
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
    use super::*;

    fn args(text: &str) -> Vec<String> {
        text.split(' ').map(str::to_owned).collect()
    }

    #[test]
    fn commands_map_to_the_operator_api() {
        let (m, p, b) = request_of(&args("resolve abc not_paid never arrived --override")).unwrap();
        assert_eq!(
            (m.as_str(), p.as_str()),
            ("POST", "/admin/v1/withdrawals/abc/resolve")
        );
        assert_eq!(
            b.unwrap(),
            json!({"outcome": "not_paid", "reason": "never arrived", "override": true})
        );
        let (m, p, b) = request_of(&args("acknowledge abc refund agreed")).unwrap();
        assert_eq!(
            (m.as_str(), p.as_str()),
            ("POST", "/admin/v1/withdrawals/abc/acknowledge")
        );
        assert_eq!(b.unwrap(), json!({"reason": "refund agreed"}));
        let (m, p, _) = request_of(&args("pause BTC fees spiking")).unwrap();
        assert_eq!((m.as_str(), p.as_str()), ("PUT", "/admin/v1/pauses/BTC"));
        assert!(request_of(&args("approve")).is_err());
        assert!(request_of(&args("drop-table")).is_err());
    }
}
