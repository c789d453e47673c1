//! A website's notification receiver on loopback, and an independent verifier of what it got:
//! PyPI's `standardwebhooks`, as the README tells the website to use.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::Value;

/// The website's Standard Webhooks secret in tests.
pub const NOTIFY_SECRET: &str = "whsec_54+YO2O2pnqOmqspMI8aBV2OT7FbzFMSoi2q/o9iazA=";

/// What the receiver got, in order, and what it answers next (204 once these run out).
#[derive(Clone, Default)]
pub struct Receiver {
    pub received: Arc<Mutex<Vec<(HeaderMap, Bytes)>>>,
    pub answers: Arc<Mutex<VecDeque<StatusCode>>>,
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    r.received.lock().unwrap().push((headers, body));
    r.answers
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or(StatusCode::NO_CONTENT)
}

/// A receiver at a free loopback port: (its URL, what it got).
pub async fn start_receiver() -> (String, Receiver) {
    let receiver = Receiver::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/payoutd-events", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .route("/payoutd-events", post(receive))
        .with_state(receiver.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, receiver)
}

/// What the README tells the website to do: verify with the `standardwebhooks` package from
/// PyPI, an implementation independent of payoutd's. Returns, per (secret, headers, body), "ok"
/// or the library's refusal.
pub async fn python_verify(python: &Path, cases: &[(&str, &HeaderMap, &[u8])]) -> Vec<String> {
    use base64::Engine;
    const SCRIPT: &str = r#"
import base64, json, sys
from standardwebhooks.webhooks import Webhook
out = []
for case in json.load(sys.stdin):
    try:
        Webhook(case["secret"]).verify(base64.b64decode(case["body"]), case["headers"])
        out.append("ok")
    except Exception as e:
        out.append(f"{type(e).__name__}: {e}")
print(json.dumps(out))
"#;
    let input: Vec<Value> = cases
        .iter()
        .map(|(secret, headers, body)| {
            let headers: serde_json::Map<String, Value> = headers
                .iter()
                .filter(|(name, _)| name.as_str().starts_with("webhook-"))
                .map(|(name, value)| (name.to_string(), value.to_str().unwrap().into()))
                .collect();
            serde_json::json!({
                "secret": secret,
                "headers": headers,
                "body": base64::engine::general_purpose::STANDARD.encode(body),
            })
        })
        .collect();
    run_python(python, SCRIPT, &[], &input, "the verifier script").await
}

/// Runs `script` with `python` and `env`, `input` as JSON on its stdin; its stdout read as
/// JSON. `what` names the script when it fails.
pub async fn run_python<T: serde::de::DeserializeOwned>(
    python: &Path,
    script: &str,
    env: &[(&str, &str)],
    input: &impl serde::Serialize,
    what: &str,
) -> T {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new(python)
        .args(["-c", script])
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python starts");
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(&serde_json::to_vec(input).unwrap())
        .await
        .unwrap();
    drop(stdin);
    let output = child.wait_with_output().await.unwrap();
    assert!(output.status.success(), "{what} failed to run");
    serde_json::from_slice(&output.stdout).unwrap()
}

/// A Python with `standardwebhooks`: `$PAYOUTD_STANDARDWEBHOOKS_PYTHON` (set by .ci/run), or a
/// throw-away venv under target/ made on first use. Missing under CI (`CI` set): the test
/// fails; locally it is skipped, saying so.
pub fn standardwebhooks_python() -> Option<PathBuf> {
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let found = PYTHON.get_or_init(|| {
        let imports = |python: &Path| {
            Command::new(python)
                .args(["-c", "import standardwebhooks.webhooks"])
                .status()
                .is_ok_and(|s| s.success())
        };
        if let Some(python) = std::env::var_os("PAYOUTD_STANDARDWEBHOOKS_PYTHON") {
            let python = PathBuf::from(python);
            return if imports(&python) {
                Ok(python)
            } else {
                Err(format!(
                    "{} cannot import standardwebhooks",
                    python.display()
                ))
            };
        }
        let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/standardwebhooks-venv");
        let python = venv.join("bin/python");
        if imports(&python) {
            return Ok(python);
        }
        let made = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .is_ok_and(|s| s.success())
            && Command::new(venv.join("bin/pip"))
                .args(["install", "-q", "standardwebhooks>=1.1,<2"])
                .status()
                .is_ok_and(|s| s.success());
        if made && imports(&python) {
            Ok(python)
        } else {
            Err(format!(
                "could not make a venv with standardwebhooks at {}",
                venv.display()
            ))
        }
    });
    match found {
        Ok(python) => Some(python.clone()),
        Err(why) if std::env::var_os("CI").is_some() => {
            panic!(
                "{why}: the notification format must be checked by an independent implementation"
            )
        }
        Err(why) => {
            eprintln!("SKIPPED: {why} (needs python3 with venv and PyPI; CI installs them)");
            None
        }
    }
}
