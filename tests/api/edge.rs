//! Defending the edge: what an attacker can do before authentication (slow or silent
//! connections, floods of made-up tokens and callbacks), development conveniences next to real
//! credentials, console sessions outliving their token, and JSON with duplicate keys.

use std::time::{Duration, Instant};

use crate::helpers::*;
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn socket_address(app: &TestApp) -> String {
    app.address.trim_start_matches("http://").to_owned()
}

/// Reads until the server closes the connection; how long that took (`None`: still open
/// after `within`).
async fn closed_within(stream: &mut TcpStream, within: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout_at((started + within).into(), stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => continue,
        }
    }
}

#[tokio::test]
async fn connections_that_never_finish_their_headers_are_cut_while_healthz_answers() {
    let app = spawn_app_with(|s| s.server.header_read_timeout_secs = 1).await;
    let mut slow = Vec::new();
    for _ in 0..50 {
        let mut stream = TcpStream::connect(socket_address(&app)).await.unwrap();
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: payoutd\r\nX-Slow: 1")
            .await
            .unwrap();
        slow.push(stream);
    }
    // A keep-alive connection that answered one request and then sits idle goes the same way.
    let mut idle = TcpStream::connect(socket_address(&app)).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: payoutd\r\n\r\n")
        .await
        .unwrap();
    let mut head = [0u8; 12];
    idle.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");

    let started = Instant::now();
    let health = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    assert!(started.elapsed() < Duration::from_millis(500));

    for stream in &mut slow {
        let closed = closed_within(stream, Duration::from_secs(5)).await;
        assert!(
            closed.is_some(),
            "a connection without a whole request head is still open"
        );
    }
    assert!(
        closed_within(&mut idle, Duration::from_secs(5))
            .await
            .is_some(),
        "an idle keep-alive connection is still open"
    );
    // On a new connection: the client's own pooled one sat idle as long as `idle` and may have
    // been cut the same way.
    let fresh = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    assert_eq!(
        fresh
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn connections_over_the_cap_wait_until_one_closes() {
    let app = spawn_app_with(|s| {
        s.server.header_read_timeout_secs = 2;
        s.server.max_connections = 3;
    })
    .await;
    let mut silent = Vec::new();
    for _ in 0..3 {
        silent.push(TcpStream::connect(socket_address(&app)).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // A fourth connection completes its handshake (the backlog) but is not read from until a
    // silent one is cut by the header-read timeout.
    let started = Instant::now();
    let mut fourth = TcpStream::connect(socket_address(&app)).await.unwrap();
    fourth
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: payoutd\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut head = [0u8; 12];
    tokio::time::timeout(Duration::from_secs(10), fourth.read_exact(&mut head))
        .await
        .expect("answered once a slot frees")
        .unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1_200),
        "served at once ({waited:?}): the cap of 3 connections is not enforced"
    );
    for stream in &mut silent {
        assert!(closed_within(stream, Duration::from_secs(5))
            .await
            .is_some());
    }
}

#[tokio::test]
async fn a_flood_of_made_up_tokens_keeps_the_rate_limit_tables_bounded() {
    let app = spawn_app_with(|s| {
        s.abuse = payoutd::config::Settings::defaults().abuse;
    })
    .await;
    let statuses = concurrently_limited(3_000, 64, |i| {
        let request = app
            .http
            .get(app.url("/v1/users/u1/balances"))
            .bearer_auth(format!("made-up-{i}-{}", uuid::Uuid::new_v4()));
        async move { request.send().await.unwrap().status() }
    })
    .await;
    assert!(statuses
        .iter()
        .all(|s| *s == StatusCode::UNAUTHORIZED || *s == StatusCode::TOO_MANY_REQUESTS));
    assert!(statuses.contains(&StatusCode::TOO_MANY_REQUESTS));
    // One address sent them all: one bucket, whatever the tokens.
    assert!(
        app.guard.tracked_keys() <= 2,
        "{} keys after 3,000 made-up tokens",
        app.guard.tracked_keys()
    );
    // The website's own token is not held back by the flood from the same address.
    let (status, _) = app.get_json("/v1/users/u1/balances").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_burst_of_verified_callbacks_is_never_rate_limited() {
    let app = spawn_app_with(|s| {
        s.abuse.callback_per_second = 10;
        s.abuse.callback_burst = 20;
    })
    .await;
    let statuses = concurrently_limited(3_000, 64, |i| {
        let body = serde_json::to_vec(&serde_json::json!({
            "id": i, "type": "deposit", "status": "confirmed",
            "crypto_address": {"currency": "BTC", "address": BTC_ADDRESS, "foreign_id": "u1"},
            "currency_sent": {"currency": "BTC", "amount": "0.01"},
        }))
        .unwrap();
        let signature = app.signer.sign(&body);
        let request = app
            .http
            .post(app.url("/v1/callbacks/coinspaid"))
            .header("X-Processing-Key", KEY)
            .header("X-Processing-Signature", signature)
            .body(body);
        async move { request.send().await.unwrap().status() }
    })
    .await;
    let refused = statuses.iter().filter(|s| **s != StatusCode::OK).count();
    assert_eq!(refused, 0, "{refused} of 3,000 verified callbacks refused");
    // Failed verifications from the same address are still limited.
    let mut forged = Vec::new();
    for _ in 0..30 {
        forged.push(app.post_callback_raw(b"{}", Some(KEY), Some("00")).await);
    }
    assert_eq!(forged[0], StatusCode::UNAUTHORIZED);
    assert_eq!(forged[29], StatusCode::TOO_MANY_REQUESTS);
}

/// `n` requests, at most `limit` in flight at once.
async fn concurrently_limited<T, F, Fut>(n: usize, limit: usize, make: F) -> Vec<T>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let permits = std::sync::Arc::new(tokio::sync::Semaphore::new(limit));
    let mut set = tokio::task::JoinSet::new();
    for i in 0..n {
        let permit = permits.clone().acquire_owned().await.unwrap();
        let request = make(i);
        set.spawn(async move {
            let out = request.await;
            drop(permit);
            out
        });
    }
    let mut out = Vec::with_capacity(n);
    while let Some(result) = set.join_next().await {
        out.push(result.expect("task panicked"));
    }
    out
}

/// `payoutd` run as a developer might point it at a local proxy to CoinsPaid: an http loopback
/// URL, credentials that are not the simulator's, PAYOUTD_ENV unset.
fn behind_a_local_proxy(port: u16, database: &str, simulator_url: &str) -> tokio::process::Command {
    let mut command = payoutd_command(port, database);
    command
        .env_remove("PAYOUTD_ENV")
        .env("COINSPAID_API_URL", simulator_url)
        .env("COINSPAID_API_KEY", KEY)
        .env("COINSPAID_API_SECRET", SECRET)
        .env(
            "PAYOUTD_SIMULATOR_LISTEN_ADDR",
            format!("127.0.0.1:{}", free_port()),
        );
    command
}

#[tokio::test]
async fn real_looking_credentials_on_a_loopback_url_get_no_development_conveniences() {
    let sim = payoutd::simulator::Simulator::spawn(
        payoutd::simulator::SimulatorSettings {
            credentials: payoutd::coinspaid::Credentials {
                key: KEY.into(),
                secret: payoutd::coinspaid::signing::SecretString::new(SECRET),
            },
            callback_url: None,
            callback_delay: Duration::ZERO,
        },
        tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
    )
    .await
    .unwrap();
    sim.control()
        .set_default_behavior(payoutd::simulator::SubmitBehavior::accept_silently());
    let database = format!("payoutd_test_{}", uuid::Uuid::now_v7().simple());
    let _drop_database = DropDatabase::new(&database);
    let port = free_port();

    // Without tokens of its own it does not start: no well-known token stands in.
    let refused = tokio::time::timeout(
        Duration::from_secs(30),
        behind_a_local_proxy(port, &database, &sim.base_url()).output(),
    )
    .await
    .expect("payoutd started without tokens of its own")
    .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("PAYOUTD_API_TOKENS") && stderr.contains("PAYOUTD_ADMIN_TOKENS"),
        "{stderr}"
    );

    // With them, the dev tokens are refused and a crash point asked for is not armed.
    let mut child = behind_a_local_proxy(port, &database, &sim.base_url())
        .env("PAYOUTD_API_TOKENS", TOKEN)
        .env("PAYOUTD_ADMIN_TOKENS", format!("alice:{ADMIN_TOKEN}"))
        .env("PAYOUTD_CRASH_AT", "after_hold_commit")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let ready = wait_ready(&base).await;
    assert_eq!(ready["provider"], "coinspaid");
    let http = reqwest::Client::new();
    let status = |path: &'static str, token: &'static str| {
        let request = http.get(format!("{base}{path}")).bearer_auth(token);
        async move { request.send().await.unwrap().status() }
    };
    assert_eq!(
        status("/v1/users/u1/balances", "payoutd-dev-token").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        status("/admin/v1/stuck", "payoutd-dev-admin-token").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(status("/admin/v1/stuck", ADMIN_TOKEN).await, StatusCode::OK);
    let credit = http
        .post(format!("{base}/v1/users/u1/credits"))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"currency": "EUR", "amount": "50.00", "reference": "c1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(credit.status(), StatusCode::CREATED);
    let created = http
        .post(format!("{base}/v1/withdrawals"))
        .bearer_auth(TOKEN)
        .header("Idempotency-Key", "k1")
        .json(&eur_to_btc("u1", "10.00"))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    assert!(
        child.try_wait().unwrap().is_none(),
        "the process aborted at a crash point"
    );
    child.kill().await.unwrap();
}

#[tokio::test]
async fn the_embedded_simulator_prints_both_dev_tokens_and_says_simulator() {
    let database = format!("payoutd_test_{}", uuid::Uuid::now_v7().simple());
    let _drop_database = DropDatabase::new(&database);
    let port = free_port();
    let mut child = payoutd_command(port, &database)
        .env("PAYOUTD_LOG_FORMAT", "json")
        .env(
            "PAYOUTD_SIMULATOR_LISTEN_ADDR",
            format!("127.0.0.1:{}", free_port()),
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let ready = wait_ready(&base).await;
    assert_eq!(ready["provider"], "simulator");
    let (_, logs) = stop_gracefully(&mut child).await;
    assert!(logs.contains("payoutd-dev-token"), "{logs}");
    assert!(logs.contains("payoutd-dev-admin-token"), "{logs}");
}

/// Every operation the OpenAPI document lists with a JSON request body, but CoinsPaid's
/// callback: (method, path with its parameters filled in).
fn json_operations(withdrawal_id: &str) -> Vec<(String, String)> {
    let document = serde_json::to_value(payoutd::api::openapi_document()).unwrap();
    let mut operations = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let json_body = op["requestBody"]["content"]
                .as_object()
                .is_some_and(|c| c.contains_key("application/json"));
            if !json_body || path == "/v1/callbacks/coinspaid" {
                continue;
            }
            let mut filled = path.clone();
            for (name, value) in [
                ("{id}", withdrawal_id),
                ("{user_id}", "u1"),
                ("{scope}", "EUR"),
                ("{currency}", "EUR"),
            ] {
                filled = filled.replace(name, value);
            }
            assert!(!filled.contains('{'), "fill in the parameters of {path}");
            operations.push((method.to_uppercase(), filled));
        }
    }
    operations
}

#[tokio::test]
async fn every_json_body_with_a_key_twice_is_refused_as_invalid_json() {
    let app = spawn_app_with(with_operator).await;
    let w = app.processing_withdrawal("10.00").await;
    let operations = json_operations(&id_of(&w));
    assert!(operations.len() >= 10, "{operations:?}");
    for (method, path) in operations {
        let token = if path.starts_with("/admin") {
            ADMIN_TOKEN
        } else {
            TOKEN
        };
        let response = app
            .http
            .request(method.parse().unwrap(), app.url(&path))
            .bearer_auth(token)
            .header("Idempotency-Key", uuid::Uuid::now_v7().to_string())
            .header("content-type", "application/json")
            .body(r#"{"currency":"EUR","amount":"1","reference":"r1","reason":"a","amount":"1000000"}"#)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let problem: serde_json::Value = response.json().await.unwrap_or_default();
        assert_eq!(
            (status, problem["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_json")),
            "{method} {path}: {problem}"
        );
    }
    // At any depth too.
    app.fund("u1", "EUR", "50.00").await;
    let mut body = eur_to_btc("u1", "5.00");
    body["sender_type"] = "natural".into();
    let text = serde_json::to_string(&body).unwrap().replacen(
        "\"sender_type\"",
        r#""sender_data":{"first_name":"A","first_name":"B","last_name":"C","date_of_birth":"1990-01-01"},"sender_type""#,
        1,
    );
    let r = app
        .http
        .post(app.url("/v1/withdrawals"))
        .bearer_auth(TOKEN)
        .header("Idempotency-Key", "nested")
        .header("content-type", "application/json")
        .body(text)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let problem: serde_json::Value = r.json().await.unwrap();
    assert_eq!(problem["code"], "invalid_json");
    assert!(problem["detail"]
        .as_str()
        .unwrap()
        .contains("sender_data.first_name"));
    // Nothing was credited or held by any of them.
    assert_eq!(
        app.balance("u1", "EUR").await,
        ("50.00".into(), "10.00".into())
    );
}

#[tokio::test]
async fn a_verified_callback_with_a_key_twice_is_stored_as_an_anomaly_and_moves_nothing() {
    let app = spawn_app().await;
    let w = app.processing_withdrawal("10.00").await;
    // The last `amount` is the true one, so a reader keeping the last would debit.
    let body = String::from_utf8(app.callback_for(&w, "confirmed"))
        .unwrap()
        .replacen(
            r#""currency_sent":{"#,
            r#""currency_sent":{"amount":"1000000","#,
            1,
        );
    assert_eq!(app.post_callback(body.as_bytes()).await, StatusCode::OK);
    let id = id_of(&w);
    assert_eq!(app.withdrawal(&id).await["status"], "processing");
    assert_eq!(app.ledger_kinds(&id).await, ["hold"]);
    let anomaly: Option<String> =
        sqlx::query_scalar("SELECT anomaly FROM withdrawals WHERE id = $1::uuid")
            .bind(&id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(
        anomaly
            .as_deref()
            .is_some_and(|a| a.contains("currency_sent.amount")),
        "{anomaly:?}"
    );
    let stored: (String, Vec<u8>) =
        sqlx::query_as("SELECT outcome, raw_body FROM callbacks WHERE foreign_id = $1")
            .bind(fid_of(&w))
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(stored, ("anomaly".to_owned(), body.into_bytes()));
    app.assert_invariants().await;
}
