//! The operator console in a real browser: headless Chromium, driven over the W3C WebDriver
//! protocol by chromedriver, signs in, approves one withdrawal, finds another with the search
//! box and resolves it (with the override ticked); then the database shows the statuses, the ledger entries and the audit
//! rows under the operator's name.
//!
//! Needs `chromium` and `chromedriver` on PATH (Debian: `apt-get install chromium
//! chromium-driver`; `.ci/run` installs them). Without them the test fails when `CI` is set
//! and is skipped, saying so, otherwise.

use std::time::Duration;

use crate::helpers::*;
use serde_json::{json, Value};

/// A few calls of the W3C WebDriver protocol (JSON over HTTP), over the reqwest client the
/// tests already build: all this test needs, without a WebDriver crate's dependency tree.
mod webdriver {
    use std::time::Duration;

    use serde_json::{json, Value};

    const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

    pub struct Browser {
        http: reqwest::Client,
        session: String,
    }

    async fn call(
        http: &reqwest::Client,
        method: reqwest::Method,
        url: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let mut request = http.request(method, url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|e| e.to_string())?;
        let ok = response.status().is_success();
        let body: Value = response.json().await.map_err(|e| e.to_string())?;
        if ok {
            Ok(body["value"].clone())
        } else {
            Err(format!(
                "{}: {}",
                body["value"]["error"], body["value"]["message"]
            ))
        }
    }

    impl Browser {
        /// A new browser session with `args` for Chromium at `binary`.
        pub async fn start(driver: &str, binary: &str, args: &[String]) -> Result<Self, String> {
            let http = reqwest::Client::new();
            let caps = json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {"binary": binary, "args": args},
            }}});
            let value = call(
                &http,
                reqwest::Method::POST,
                &format!("{driver}/session"),
                Some(caps),
            )
            .await?;
            let id = value["sessionId"].as_str().ok_or("no sessionId")?;
            Ok(Self {
                http,
                session: format!("{driver}/session/{id}"),
            })
        }

        async fn post(&self, path: &str, body: Value) -> Value {
            call(
                &self.http,
                reqwest::Method::POST,
                &format!("{}{path}", self.session),
                Some(body),
            )
            .await
            .unwrap_or_else(|e| panic!("webdriver {path}: {e}"))
        }

        pub async fn goto(&self, url: &str) {
            self.post("/url", json!({"url": url})).await;
        }

        /// The element `css` selects, waiting up to 10 s for it to appear.
        pub async fn find(&self, css: &str) -> String {
            for _ in 0..100 {
                let found = call(
                    &self.http,
                    reqwest::Method::POST,
                    &format!("{}/element", self.session),
                    Some(json!({"using": "css selector", "value": css})),
                )
                .await;
                if let Some(id) = found
                    .ok()
                    .and_then(|e| e[ELEMENT].as_str().map(str::to_owned))
                {
                    return id;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            panic!("no element {css} on {}", self.source().await);
        }

        pub async fn click(&self, css: &str) {
            let element = self.find(css).await;
            self.post(&format!("/element/{element}/click"), json!({}))
                .await;
        }

        pub async fn type_into(&self, css: &str, text: &str) {
            let element = self.find(css).await;
            self.post(&format!("/element/{element}/value"), json!({"text": text}))
                .await;
        }

        pub async fn source(&self) -> String {
            call(
                &self.http,
                reqwest::Method::GET,
                &format!("{}/source", self.session),
                None,
            )
            .await
            .map(|v| v.as_str().unwrap_or_default().to_owned())
            .unwrap_or_default()
        }

        /// Waits up to 30 s for the page to contain `text` (a click's navigation finishing; a
        /// loaded two-core machine can take seconds).
        pub async fn wait_for_text(&self, text: &str) {
            for _ in 0..300 {
                if self.source().await.contains(text) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            panic!("the page never showed {text:?}: {}", self.source().await);
        }

        pub async fn quit(&self) {
            let _ = call(&self.http, reqwest::Method::DELETE, &self.session, None).await;
        }
    }
}

/// `name` on PATH.
fn on_path(name: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

/// chromium and chromedriver, or `None` (skip) outside CI; in CI a missing one fails.
fn browser_tools() -> Option<(std::path::PathBuf, std::path::PathBuf)> {
    let chromium = on_path("chromium").or_else(|| on_path("chromium-browser"));
    let driver = on_path("chromedriver");
    match (chromium, driver) {
        (Some(c), Some(d)) => Some((c, d)),
        _ if std::env::var_os("CI").is_some() => {
            panic!("CI is set but chromium or chromedriver is missing: .ci/run installs them (apt-get install chromium chromium-driver)")
        }
        _ => {
            eprintln!("SKIPPED: chromium or chromedriver not on PATH (apt-get install chromium chromium-driver); CI fails instead");
            None
        }
    }
}

/// Starts chromedriver on a free port; killed when dropped.
async fn start_driver(driver: &std::path::Path) -> (tokio::process::Child, String) {
    let port = free_port();
    let child = tokio::process::Command::new(driver)
        .arg(format!("--port={port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("chromedriver starts");
    let url = format!("http://127.0.0.1:{port}");
    for _ in 0..100 {
        if let Ok(r) = reqwest::get(format!("{url}/status")).await {
            let status: Value = r.json().await.unwrap_or(Value::Null);
            if status["value"]["ready"] == true {
                return (child, url);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not become ready");
}

async fn audit_rows(app: &TestApp, id: &str) -> Vec<(String, String)> {
    sqlx::query_as("SELECT actor, action FROM audit_log WHERE withdrawal_id = $1::uuid ORDER BY id")
        .bind(id)
        .fetch_all(&app.pool)
        .await
        .unwrap()
}

async fn status_of(app: &TestApp, id: &str) -> String {
    sqlx::query_scalar("SELECT status FROM withdrawals WHERE id = $1::uuid")
        .bind(id)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

/// What the operator does in the browser.
async fn operate(
    browser: std::sync::Arc<webdriver::Browser>,
    base: String,
    held_id: String,
    (sent_id, sent_foreign_id): (String, String),
    anomaly_id: String,
) {
    // Signed out, the console sends the browser to its login form.
    browser.goto(&format!("{base}/admin")).await;
    browser.type_into("#token", ADMIN_TOKEN).await;
    browser.click("form.card button[type=submit]").await;
    browser.wait_for_text("Awaiting approval (1)").await;
    browser.wait_for_text("Anomalies (1)").await;

    // Approve the held one from the queue, through the confirmation step.
    browser
        .click(&format!("a[href='/admin/withdrawals/{held_id}']"))
        .await;
    browser
        .type_into("input[name=reason]", "known customer")
        .await;
    browser.click("#approve").await;
    browser.wait_for_text("Yes, approve").await;
    browser.click("#confirm").await;
    browser.wait_for_text("Approved: sent to CoinsPaid").await;

    // Find the sent one with the search box by the foreign_id CoinsPaid knows it by; resolve
    // it as paid (CoinsPaid still says processing, so override is ticked).
    browser.type_into("#search", &sent_foreign_id).await;
    browser.click("form.search button[type=submit]").await;
    browser.wait_for_text("Found for").await;
    browser
        .click(&format!(
            "#search-results a[href='/admin/withdrawals/{sent_id}']"
        ))
        .await;
    browser.click("#outcome-paid").await;
    browser
        .type_into("#resolve-reason", "txid seen on chain")
        .await;
    browser.click("#override").await;
    browser.click("#resolve").await;
    browser.wait_for_text("Yes, resolve as paid").await;
    browser.click("#confirm").await;
    browser.wait_for_text("Resolved.").await;
    let page = browser.source().await;
    assert!(
        page.contains("resolve_paid") && page.contains("alice"),
        "the audit row is on the page"
    );

    // Acknowledge the anomaly on the finished one, from the queue, through the confirmation.
    browser.goto(&format!("{base}/admin")).await;
    browser
        .click(&format!("a[href='/admin/withdrawals/{anomaly_id}']"))
        .await;
    browser
        .type_into("#acknowledge-reason", "CoinsPaid support: nothing paid")
        .await;
    browser.click("#acknowledge").await;
    browser.wait_for_text("Yes, acknowledge").await;
    browser.click("#confirm").await;
    browser.wait_for_text("Anomaly acknowledged").await;
    browser.goto(&format!("{base}/admin")).await;
    browser.wait_for_text("Anomalies (0)").await;
}

#[tokio::test]
async fn an_operator_approves_one_withdrawal_and_resolves_another_in_a_real_browser() {
    let Some((chromium, driver)) = browser_tools() else {
        return;
    };
    let app = spawn_app_with(|s| {
        with_operator(s);
        s.approval.thresholds.insert("EUR".into(), dec("1000"));
    })
    .await;
    app.fund("u1", "EUR", "1000").await;
    let held = app.withdraw_ok(&eur_to_btc("u1", "1000.00")).await;
    assert_eq!(held["status"], "awaiting_approval");
    app.fund("u2", "EUR", "100").await;
    let sent = app.withdraw_ok(&eur_to_btc("u2", "100.00")).await;
    assert_eq!(sent["status"], "processing");
    let (held_id, sent_id) = (held["id"].as_str().unwrap(), sent["id"].as_str().unwrap());
    let anomaly_id = id_of(&app.rejected_then_confirmed("u3").await);

    let (_driver, driver_url) = start_driver(&driver).await;
    let profile = std::env::temp_dir().join(format!("payoutd-chromium-{}", uuid::Uuid::now_v7()));
    let args: Vec<String> = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1366,900",
    ]
    .iter()
    .map(|a| a.to_string())
    .chain([format!("--user-data-dir={}", profile.display())])
    .collect();
    let browser = std::sync::Arc::new(
        webdriver::Browser::start(&driver_url, &chromium.to_string_lossy(), &args)
            .await
            .expect("a headless Chromium session"),
    );
    // The steps run in their own task so the browser is closed even when one fails.
    let steps = tokio::spawn(operate(
        browser.clone(),
        app.address.clone(),
        held_id.to_owned(),
        (sent_id.to_owned(), fid_of(&sent)),
        anomaly_id.clone(),
    ))
    .await;
    browser.quit().await;
    let _ = std::fs::remove_dir_all(&profile);
    if let Err(failed) = steps {
        std::panic::resume_unwind(failed.into_panic());
    }

    assert_eq!(status_of(&app, held_id).await, "processing");
    assert_eq!(app.ledger_kinds(held_id).await, vec!["hold"]);
    assert_eq!(app.sim.withdrawals().len(), 2, "the approved one was sent");
    assert_eq!(
        audit_rows(&app, held_id).await,
        vec![
            ("policy".into(), "hold_for_approval".into()),
            ("alice".into(), "approve".into())
        ]
    );
    assert_eq!(status_of(&app, sent_id).await, "confirmed");
    assert_eq!(app.ledger_kinds(sent_id).await, vec!["hold", "debit"]);
    assert_eq!(
        audit_rows(&app, sent_id).await,
        vec![("alice".into(), "resolve_paid".into())]
    );
    assert_eq!(
        audit_rows(&app, &anomaly_id).await,
        vec![("alice".into(), "acknowledge".into())]
    );
    let details: Value = sqlx::query_scalar(
        "SELECT after->'details' FROM audit_log WHERE withdrawal_id = $1::uuid AND action = 'resolve_paid'",
    )
    .bind(sent_id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        details["override"],
        json!(true),
        "the override is on record"
    );
    app.assert_invariants().await;
}
