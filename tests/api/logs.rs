//! What the logs say: JSON lines that name withdrawal_id and foreign_id, and never a secret,
//! a signature, a token or MiCA travel-rule data, even at debug level. Runs the real binary
//! and reads its output.

use std::process::Stdio;
use std::time::Duration;

use crate::helpers::{free_port, payoutd_command, stop_gracefully, wait_ready, DropDatabase};
use payoutd::coinspaid::signing::SecretString;
use payoutd::coinspaid::{Credentials, Signer};
use payoutd::simulator::{Simulator, SimulatorSettings, SubmitBehavior};
use serde_json::{json, Value};

const API_SECRET: &str = "coinspaid-secret-7f3a9c";
/// Still accepted on callbacks during a change-over.
const PREVIOUS_SECRET: &str = "coinspaid-old-secret-2b8d41";
const PREVIOUS_KEY: &str = "merchant-key-being-replaced";
/// The website's notification secrets: current, then the one being replaced.
const NOTIFY_SECRETS: [&str; 2] = [
    "whsec_54+YO2O2pnqOmqspMI8aBV2OT7FbzFMSoi2q/o9iazA=",
    "whsec_JZQAdhOtDf+vLD1Hf/ZeOdRpWMp3h+QVJ7AT3mrtono=",
];
const API_TOKEN: &str = "website-token-5d2e8b1c";
const DB_PASSWORD: &str = "db-password-91c4e7";
/// MiCA travel-rule values: personal data, never to be logged.
const MICA_VALUES: &[&str] = &[
    "Zoltanilla",
    "Quarrendorf",
    "1961-04-12",
    "zq.mica@example.org",
    "Vexmoor Holding",
];

#[tokio::test]
async fn logs_are_json_name_the_withdrawal_and_never_leak_secrets() {
    let credentials = Credentials {
        key: "merchant-key".into(),
        secret: SecretString::new(API_SECRET),
    };
    let signer = Signer::new(credentials);
    let sim = simulator().await;
    let control = sim.control();
    control.set_default_behavior(SubmitBehavior::accept_silently());

    // The website, recording the notification signatures it receives.
    let notified = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let receiver_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let notify_url = format!("http://{}/events", receiver_listener.local_addr().unwrap());
    let recorder = notified.clone();
    let receiver = axum::Router::new().route(
        "/events",
        axum::routing::post(move |headers: axum::http::HeaderMap| async move {
            let signature = headers["webhook-signature"].to_str().unwrap().to_owned();
            recorder.lock().unwrap().push(signature);
            axum::http::StatusCode::NO_CONTENT
        }),
    );
    tokio::spawn(async move { axum::serve(receiver_listener, receiver).await.unwrap() });

    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    control.set_callback_url(Some(format!("{base}/v1/callbacks/coinspaid")));
    // Trust auth ignores the password, so it can be a marker to look for in the logs.
    let database = format!("payoutd_test_{}", uuid::Uuid::now_v7().simple());
    let _drop_database = DropDatabase::new(&database);
    let mut child = payoutd_command(port, &database)
        .env("PAYOUTD_LOG_FORMAT", "json")
        .env("RUST_LOG", "debug")
        .env(
            "DATABASE_URL",
            format!("postgres://postgres:{DB_PASSWORD}@127.0.0.1:5432/{database}"),
        )
        .env("PAYOUTD_API_TOKENS", API_TOKEN)
        .env("PAYOUTD_ADMIN_TOKENS", "alice:alice-operator-token-0123")
        .env("COINSPAID_API_URL", sim.base_url())
        .env("COINSPAID_API_KEY", "merchant-key")
        .env("COINSPAID_API_SECRET", API_SECRET)
        .env("COINSPAID_API_KEY_PREVIOUS", PREVIOUS_KEY)
        .env("COINSPAID_API_SECRET_PREVIOUS", PREVIOUS_SECRET)
        .env("PAYOUTD_NOTIFY_URL", &notify_url)
        .env("PAYOUTD_NOTIFY_SECRET", NOTIFY_SECRETS.join(","))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read as it is written: a debug-level run outgrows the pipe's buffer, and a child
    // blocked on a full pipe stops answering.
    let stdout = tokio::spawn(read_all(child.stdout.take().unwrap()));
    let stderr = tokio::spawn(read_all(child.stderr.take().unwrap()));
    let http = reqwest::Client::new();
    wait_ready(&base).await;

    let credit = http
        .post(format!("{base}/v1/users/u1/credits"))
        .bearer_auth(API_TOKEN)
        .json(&json!({"currency":"EUR","amount":"100.00","reference":"d1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(credit.status(), 201);
    let wrong_token = http
        .get(format!("{base}/v1/users/u1/balances"))
        .bearer_auth("guess-token-0000000")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_token.status(), 401);
    let w: Value = http
        .post(format!("{base}/v1/withdrawals"))
        .bearer_auth(API_TOKEN)
        .header("Idempotency-Key", "log-test-1")
        .header("traceparent", TRACEPARENT)
        .json(&json!({"user_id":"u1","amount":"10.00","currency":"EUR","convert_to":"BTC","address":"bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq",
            "sender_type":"natural","sender_data":{"first_name":"Zoltanilla","last_name":"Quarrendorf","date_of_birth":"1961-04-12","email":"zq.mica@example.org"},
            "receiver_type":"legal","receiver_data":{"legal_name":"Vexmoor Holding","country_of_registration":"LUX"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (withdrawal_id, foreign_id) =
        (w["id"].as_str().unwrap(), w["foreign_id"].as_str().unwrap());
    assert_eq!(
        control
            .send_callback(foreign_id, "confirmed")
            .await
            .unwrap(),
        200
    );
    let forged_body = br#"{"id":1,"type":"withdrawal","foreign_id":"x","status":"confirmed"}"#;
    let forged_signature = Signer::new(Credentials {
        key: "merchant-key".into(),
        secret: SecretString::new("wrong"),
    })
    .sign(forged_body);
    let forged = http
        .post(format!("{base}/v1/callbacks/coinspaid"))
        .header("X-Processing-Key", "merchant-key")
        .header("X-Processing-Signature", &forged_signature)
        .body(forged_body.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);

    // A callback from the previous key pair, during a change-over: accepted.
    let deposit_body = br#"{"id":2,"type":"deposit","status":"confirmed"}"#;
    let previous_signature = Signer::new(Credentials {
        key: PREVIOUS_KEY.into(),
        secret: SecretString::new(PREVIOUS_SECRET),
    })
    .sign(deposit_body);
    let accepted = http
        .post(format!("{base}/v1/callbacks/coinspaid"))
        .header("X-Processing-Key", PREVIOUS_KEY)
        .header("X-Processing-Signature", &previous_signature)
        .body(deposit_body.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), 200);
    // Two status changes to notify (processing, confirmed).
    for _ in 0..100 {
        if notified.lock().unwrap().len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let notification_signatures = notified.lock().unwrap().clone();
    assert!(
        notification_signatures.len() >= 2,
        "notifications were sent"
    );

    let (_, _) = stop_gracefully(&mut child).await;
    let logs = stdout.await.unwrap() + &stderr.await.unwrap();

    let submitted: Value = serde_json::from_slice(&control.submissions()[0].raw_body).unwrap();
    assert_eq!(
        submitted["sender_data"]["last_name"], "Quarrendorf",
        "the travel-rule data did reach CoinsPaid"
    );
    for value in MICA_VALUES {
        assert!(
            !logs.contains(value),
            "log output contains travel-rule data: {value}"
        );
    }

    // Every signature that crossed the wire, both directions.
    let mut signatures = vec![forged_signature, previous_signature];
    for header in notification_signatures {
        // Each `v1,<base64>` and its base64 alone.
        for signature in header.split(' ') {
            signatures.push(signature.to_owned());
            signatures.push(signature.trim_start_matches("v1,").to_owned());
        }
    }
    for secret in NOTIFY_SECRETS {
        signatures.push(secret.to_owned());
        signatures.push(secret.trim_start_matches("whsec_").to_owned());
    }
    for submission in control.submissions() {
        signatures.push(signer.sign(&submission.raw_body));
    }
    signatures.push(signer.sign(&control.callback_body(foreign_id, "confirmed").unwrap()));
    for secret in [API_SECRET, PREVIOUS_SECRET, API_TOKEN, DB_PASSWORD]
        .iter()
        .map(|s| s.to_string())
        .chain(signatures)
    {
        assert!(
            !logs.contains(&secret),
            "log output contains a secret or signature: {secret}"
        );
    }

    let lines = json_lines(&logs);
    assert!(lines.len() > 10);
    let about_ours: Vec<&Value> = lines
        .iter()
        .filter(|l| l.to_string().contains(foreign_id))
        .collect();
    assert!(
        about_ours.len() >= 3,
        "the withdrawal's story is in the logs"
    );
    for line in about_ours {
        assert!(
            line.to_string().contains(withdrawal_id),
            "line names foreign_id but not withdrawal_id: {line}"
        );
    }
    assert!(lines.iter().any(|l| l.to_string().contains("hold settled")));
    assert!(
        lines
            .iter()
            .any(|l| l["message"] == "callback verified with the previous CoinsPaid secret"),
        "the change-over is visible in the logs"
    );
    assert!(lines
        .iter()
        .any(|l| l["request_id"].is_string() || l["span"]["request_id"].is_string()));

    // Every line about the withdrawal names it both ways, the callback path included.
    for message in [
        "hold settled",
        "withdrawal status changed",
        "callback processed",
    ] {
        let found: Vec<&Value> = lines.iter().filter(|l| l["message"] == message).collect();
        assert!(!found.is_empty(), "no {message:?} line");
        for line in found {
            assert_eq!(field(line, "withdrawal_id"), Some(withdrawal_id), "{line}");
            assert_eq!(field(line, "foreign_id"), Some(foreign_id), "{line}");
        }
    }
    let settled_by_callback = lines
        .iter()
        .find(|l| l["message"] == "hold settled")
        .unwrap();
    assert!(
        in_span(settled_by_callback, "withdrawal.callback"),
        "{settled_by_callback}"
    );
    // The first submission runs in its own task, still in the request's span.
    let submit_lines: Vec<&Value> = lines
        .iter()
        .filter(|l| in_span(l, "withdrawal.submit"))
        .collect();
    assert!(!submit_lines.is_empty());
    let first = submit_lines[0];
    assert!(in_span(first, "http.request"), "{first}");
    assert!(
        field(first, "request_id").is_some_and(|id| !id.is_empty()),
        "{first}"
    );
    assert_eq!(field(first, "trace_id"), Some(TRACE_ID), "{first}");

    // One INFO access line per request, 4xx included.
    let access: Vec<&Value> = lines.iter().filter(|l| l["message"] == "request").collect();
    let refused = access
        .iter()
        .find(|l| l["status"] == 401 && l["route"] == "/v1/users/{user_id}/balances")
        .expect("an access line for the 401");
    assert_eq!(refused["level"], "INFO");
    assert_eq!(refused["method"], "GET");
    assert!(refused["latency_ms"].is_number(), "{refused}");
    assert!(refused["request_id"]
        .as_str()
        .is_some_and(|id| !id.is_empty()));
    let created = access
        .iter()
        .find(|l| l["route"] == "/v1/withdrawals" && l["method"] == "POST")
        .expect("an access line for the withdrawal");
    assert_eq!(created["status"], 201);
    assert_eq!(field(created, "trace_id"), Some(TRACE_ID));
    assert!(access
        .iter()
        .any(|l| l["status"] == 401 && l["route"] == "/v1/callbacks/coinspaid"));
}

/// Logging must not make requests wait for whoever reads stdout: a log collector that stalls
/// (here: nobody reads the pipe) leaves the service answering, and once the pipe is read again
/// every line arrives, none dropped.
#[tokio::test]
async fn a_stalled_log_pipe_neither_stalls_requests_nor_loses_lines() {
    // Each refused request logs an access line of ~400 bytes: 1000 of them are several times
    // a pipe's 64 KiB buffer, and well inside the service's own queue of 8192 lines.
    const REQUESTS: usize = 1000;
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let database = format!("payoutd_test_{}", uuid::Uuid::now_v7().simple());
    let _drop_database = DropDatabase::new(&database);
    // Every refusal must be a 401 with its log line, not a 429 from the limit on unknown tokens.
    let config_dir =
        std::env::temp_dir().join(format!("payoutd-test-config-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&config_dir).unwrap();
    std::fs::write(
        config_dir.join("development.toml"),
        "[abuse]\nunauthenticated_per_second = 0\n",
    )
    .unwrap();
    let mut child = payoutd_command(port, &database)
        .env("PAYOUTD_CONFIG_DIR", &config_dir)
        .env("PAYOUTD_LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .env("PAYOUTD_API_TOKENS", API_TOKEN)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    wait_ready(&base).await;

    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let answered = tokio::time::timeout(Duration::from_secs(60), async {
        for _ in 0..REQUESTS {
            let response = http
                .get(format!("{base}/v1/users/stalled-log/balances"))
                .bearer_auth("guess-token-0000000")
                .send()
                .await
                .expect("answered while nobody reads the log pipe");
            assert_eq!(response.status(), 401);
        }
    })
    .await;
    assert!(answered.is_ok(), "requests stalled behind the log pipe");

    // The collector is back: everything queued arrives, then the clean stop flushes the rest.
    let reader = tokio::spawn(read_all(stdout));
    let (status, _) = stop_gracefully(&mut child).await;
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    let output = reader.await.unwrap();
    let logged = output
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|l| {
            l["message"] == "request"
                && l["route"] == "/v1/users/{user_id}/balances"
                && l["status"] == 401
        })
        .count();
    assert_eq!(logged, REQUESTS, "every request's access line was written");
}

/// CoinsPaid's text quoting the request's travel-rule values (a refusal naming the sender, an
/// error body naming the receiver) reaches neither the logs, nor the API's answer, nor the
/// website's notification: it is scrubbed where it enters.
#[tokio::test]
async fn provider_text_quoting_travel_rule_data_never_reaches_logs_or_notifications() {
    let sim = simulator().await;
    let control = sim.control();
    control.set_default_behavior(SubmitBehavior::accept_silently());
    control.push_behavior(SubmitBehavior::Refuse {
        status: 400,
        field: Some("address".into()),
        message: "sender QUARRENDORF (born 1961-04-12) may not withdraw to this address".into(),
    });
    control.push_behavior(SubmitBehavior::Refuse {
        status: 400,
        field: None,
        message: "receiver vexmoor holding is not whitelisted".into(),
    });
    let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let receiver_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let notify_url = format!("http://{}/events", receiver_listener.local_addr().unwrap());
    let recorder = bodies.clone();
    let receiver = axum::Router::new().route(
        "/events",
        axum::routing::post(move |body: String| async move {
            recorder.lock().unwrap().push(body);
            axum::http::StatusCode::NO_CONTENT
        }),
    );
    tokio::spawn(async move { axum::serve(receiver_listener, receiver).await.unwrap() });

    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let database = format!("payoutd_test_{}", uuid::Uuid::now_v7().simple());
    let _drop_database = DropDatabase::new(&database);
    let mut child = payoutd_command(port, &database)
        .env("PAYOUTD_LOG_FORMAT", "json")
        .env("RUST_LOG", "debug")
        .env("PAYOUTD_API_TOKENS", API_TOKEN)
        .env("PAYOUTD_ADMIN_TOKENS", "alice:alice-operator-token-0123")
        .env("COINSPAID_API_URL", sim.base_url())
        .env("COINSPAID_API_KEY", "merchant-key")
        .env("COINSPAID_API_SECRET", API_SECRET)
        .env("PAYOUTD_NOTIFY_URL", &notify_url)
        .env("PAYOUTD_NOTIFY_SECRET", NOTIFY_SECRETS[0])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = tokio::spawn(read_all(child.stdout.take().unwrap()));
    let stderr = tokio::spawn(read_all(child.stderr.take().unwrap()));
    let http = reqwest::Client::new();
    wait_ready(&base).await;
    let credit = http
        .post(format!("{base}/v1/users/u1/credits"))
        .bearer_auth(API_TOKEN)
        .json(&json!({"currency":"EUR","amount":"100.00","reference":"d1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(credit.status(), 201);
    let mut answers = Vec::new();
    for key in ["scrub-1", "scrub-2"] {
        let w: Value = http
            .post(format!("{base}/v1/withdrawals"))
            .bearer_auth(API_TOKEN)
            .header("Idempotency-Key", key)
            .json(&json!({"user_id":"u1","amount":"10.00","currency":"EUR","convert_to":"BTC","address":"bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq",
                "sender_type":"natural","sender_data":{"first_name":"Zoltanilla","last_name":"Quarrendorf","date_of_birth":"1961-04-12","email":"zq.mica@example.org"},
                "receiver_type":"legal","receiver_data":{"legal_name":"Vexmoor Holding","country_of_registration":"LUX"}}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        answers.push(w);
    }
    assert_eq!(answers[0]["status"], "rejected", "{}", answers[0]);
    let error = answers[0]["error"].as_str().unwrap();
    assert!(
        error.contains("sender [redacted] (born [redacted])"),
        "{error}"
    );
    for _ in 0..100 {
        if bodies
            .lock()
            .unwrap()
            .iter()
            .any(|b| b.contains("rejected"))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let notified = bodies.lock().unwrap().join("\n");
    assert!(
        notified.contains("rejected") && notified.contains("[redacted]"),
        "the refusal was notified: {notified}"
    );
    let (_, _) = stop_gracefully(&mut child).await;
    let logs = stdout.await.unwrap() + &stderr.await.unwrap();
    assert!(
        logs.contains("receiver [redacted] is not whitelisted"),
        "the unreadable answer is logged, scrubbed"
    );
    for (what, text) in [("logs", &logs), ("notifications", &notified)] {
        let text = text.to_lowercase();
        for value in MICA_VALUES {
            assert!(
                !text.contains(&value.to_lowercase()),
                "{what} contain travel-rule data: {value}"
            );
        }
    }
}

/// A request that fails is one ERROR line, payoutd's own, with the cause and the request id:
/// a 500's cause is logged where it happens and tower-http's failure line is off. A 503 asks
/// the client to retry and is no ERROR: a request past its time budget is one WARN (a database
/// outage is one WARN for all its 503s: database_failover.rs).
#[tokio::test]
async fn a_failed_request_is_one_error_line_with_its_cause_and_a_timeout_none() {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let database = format!("payoutd_test_{}", uuid::Uuid::now_v7().simple());
    let _drop_database = DropDatabase::new(&database);
    let config_dir =
        std::env::temp_dir().join(format!("payoutd-test-config-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&config_dir).unwrap();
    std::fs::write(
        config_dir.join("development.toml"),
        "[server]\nrequest_timeout_secs = 1\n[reconciler]\nenabled = false\n",
    )
    .unwrap();
    let mut child = payoutd_command(port, &database)
        .env("PAYOUTD_CONFIG_DIR", &config_dir)
        .env("PAYOUTD_LOG_FORMAT", "json")
        .env("PAYOUTD_API_TOKENS", API_TOKEN)
        .env("PAYOUTD_WORKER_ENABLED", "false")
        .env(
            "PAYOUTD_SIMULATOR_LISTEN_ADDR",
            format!("127.0.0.1:{}", free_port()),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = tokio::spawn(read_all(child.stdout.take().unwrap()));
    let stderr = tokio::spawn(read_all(child.stderr.take().unwrap()));
    wait_ready(&base).await;
    let pool = sqlx::PgPool::connect(&format!(
        "{}/{database}",
        crate::helpers::base_database_url()
    ))
    .await
    .unwrap();
    let http = reqwest::Client::new();
    let balances = |request_id: &'static str| {
        http.get(format!("{base}/v1/users/u1/balances"))
            .bearer_auth(API_TOKEN)
            .header("x-request-id", request_id)
            .send()
    };

    // A 500: a table the request reads is missing (a hand-made change to the schema).
    sqlx::query("ALTER TABLE balances RENAME TO balances_elsewhere")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(balances("failing-request-1").await.unwrap().status(), 500);
    sqlx::query("ALTER TABLE balances_elsewhere RENAME TO balances")
        .execute(&pool)
        .await
        .unwrap();
    // A 503: the request waits behind a lock past its one-second budget.
    let mut lock = pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE balances IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .unwrap();
    assert_eq!(balances("timed-out-request-2").await.unwrap().status(), 503);
    lock.rollback().await.unwrap();
    pool.close().await;

    let (_, _) = stop_gracefully(&mut child).await;
    let logs = stdout.await.unwrap() + &stderr.await.unwrap();
    let _ = std::fs::remove_dir_all(&config_dir);
    let lines = json_lines(&logs);
    let errors: Vec<&Value> = lines.iter().filter(|l| l["level"] == "ERROR").collect();
    assert_eq!(errors.len(), 1, "one ERROR line: {errors:#?}");
    let error = errors[0];
    assert_eq!(error["message"], "internal error", "{error}");
    assert!(
        error["error"]
            .as_str()
            .is_some_and(|e| e.contains(r#"relation "balances" does not exist"#)),
        "the cause: {error}"
    );
    assert!(in_span(error, "http.request"), "{error}");
    assert_eq!(field(error, "request_id"), Some("failing-request-1"));
    assert!(
        !lines.iter().any(|l| l["target"]
            .as_str()
            .is_some_and(|t| t.starts_with("tower_http"))
            && l["level"] != "DEBUG"
            && l["level"] != "TRACE"),
        "tower-http logs no failure line of its own"
    );

    let timed_out: Vec<&Value> = lines
        .iter()
        .filter(|l| l["message"] == "request timed out")
        .collect();
    assert_eq!(timed_out.len(), 1, "{timed_out:#?}");
    assert_eq!(timed_out[0]["level"], "WARN");
    assert_eq!(
        field(timed_out[0], "request_id"),
        Some("timed-out-request-2")
    );
    // Both are in the access log with their status.
    for (request_id, status) in [("failing-request-1", 500), ("timed-out-request-2", 503)] {
        let access = lines
            .iter()
            .find(|l| l["message"] == "request" && l["request_id"] == request_id)
            .unwrap_or_else(|| panic!("no access line for {request_id}"));
        assert_eq!(access["status"], status, "{access}");
        assert_eq!(access["level"], "INFO", "{access}");
    }
}

/// A callback that beats CoinsPaid's acceptance settles the withdrawal and removes its job;
/// the acceptance then finds the job gone. No lease ran out, so nothing may say one did: an
/// operator reading "lease had expired" would look for a stalled worker that does not exist.
#[tokio::test]
async fn a_callback_that_beats_the_acceptance_is_no_expired_lease() {
    let sim = simulator().await;
    let control = sim.control();
    control.set_default_behavior(SubmitBehavior::confirm());
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    control.set_callback_url(Some(format!("{base}/v1/callbacks/coinspaid")));
    let database = format!("payoutd_test_{}", uuid::Uuid::now_v7().simple());
    let _drop_database = DropDatabase::new(&database);
    let mut child = payoutd_command(port, &database)
        .env("PAYOUTD_LOG_FORMAT", "json")
        .env("PAYOUTD_API_TOKENS", API_TOKEN)
        .env("PAYOUTD_ADMIN_TOKENS", "alice:alice-operator-token-0123")
        .env("COINSPAID_API_URL", sim.base_url())
        .env("COINSPAID_API_KEY", "merchant-key")
        .env("COINSPAID_API_SECRET", API_SECRET)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = tokio::spawn(read_all(child.stdout.take().unwrap()));
    let stderr = tokio::spawn(read_all(child.stderr.take().unwrap()));
    wait_ready(&base).await;
    let pool = sqlx::PgPool::connect(&format!(
        "{}/{database}",
        crate::helpers::base_database_url()
    ))
    .await
    .unwrap();
    let http = reqwest::Client::new();
    let credit = http
        .post(format!("{base}/v1/users/u1/credits"))
        .bearer_auth(API_TOKEN)
        .json(&json!({"currency":"EUR","amount":"100000.00","reference":"race"}))
        .send()
        .await
        .unwrap();
    assert_eq!(credit.status(), 201);

    // Rounds of concurrent creates until callbacks have beaten acceptances a few times: such a
    // withdrawal goes from pending to confirmed with no `processing` notification between.
    let mut raced = 0;
    for round in 0..20 {
        let created = crate::helpers::concurrently(16, |i| {
            let request = http
                .post(format!("{base}/v1/withdrawals"))
                .bearer_auth(API_TOKEN)
                .header("Idempotency-Key", format!("race-{round}-{i}"))
                .json(&crate::helpers::eur_to_btc("u1", "10.00"));
            async move { request.send().await.unwrap().status().as_u16() }
        })
        .await;
        assert!(created.iter().all(|s| *s == 201), "{created:?}");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM withdrawals WHERE status <> 'confirmed'",
        )
        .fetch_one(&pool)
        .await
        .unwrap()
            > 0
        {
            assert!(tokio::time::Instant::now() < deadline, "not all confirmed");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        raced = sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM withdrawals w WHERE NOT EXISTS (
                 SELECT 1 FROM notification_outbox o
                 WHERE o.withdrawal_id = w.id AND o.payload->'data'->>'status' = 'processing')",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        if raced >= 3 {
            break;
        }
    }
    pool.close().await;
    let (_, _) = stop_gracefully(&mut child).await;
    let logs = stdout.await.unwrap() + &stderr.await.unwrap();
    assert!(raced >= 3, "only {raced} callbacks beat their acceptance");
    let lines = json_lines(&logs);
    let alarming: Vec<&Value> = lines
        .iter()
        .filter(|l| l["level"] == "WARN" || l["level"] == "ERROR")
        .collect();
    assert!(alarming.is_empty(), "{raced} races: {alarming:#?}");
}

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// The CoinsPaid simulator the spawned binary is pointed at, with the merchant's credentials.
async fn simulator() -> Simulator {
    Simulator::spawn(
        SimulatorSettings {
            credentials: Credentials {
                key: "merchant-key".into(),
                secret: SecretString::new(API_SECRET),
            },
            callback_url: None,
            callback_delay: Duration::ZERO,
        },
        tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
    )
    .await
    .unwrap()
}

/// Every line of `logs` as JSON: a line that is not fails the test.
fn json_lines(logs: &str) -> Vec<Value> {
    logs.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {l}"))
        })
        .collect()
}

/// A field of the event or of any span it was logged in.
fn field<'a>(line: &'a Value, name: &str) -> Option<&'a str> {
    line[name].as_str().or_else(|| {
        line["spans"]
            .as_array()?
            .iter()
            .rev()
            .find_map(|span| span[name].as_str())
    })
}

fn in_span(line: &Value, name: &str) -> bool {
    line["spans"]
        .as_array()
        .is_some_and(|spans| spans.iter().any(|span| span["name"] == name))
}

async fn read_all(mut pipe: impl tokio::io::AsyncRead + Unpin) -> String {
    use tokio::io::AsyncReadExt;
    let mut text = String::new();
    pipe.read_to_string(&mut text).await.unwrap();
    text
}
