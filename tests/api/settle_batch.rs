//! Group commit of CoinsPaid callbacks (`withdrawals::settle::batch`): a batch settles as
//! documented (with batching off too), concurrent callbacks across replicas settle each hold
//! once while sharing transactions, and a crash between gathering a batch and its commit
//! leaves nothing that CoinsPaid's retry cannot settle once.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::helpers::*;
use payoutd::coinspaid::signing::SecretString;
use payoutd::coinspaid::{Credentials, Signer};
use payoutd::domain::WithdrawalStatus;
use payoutd::simulator::SubmitBehavior;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::{Connection, PgPool};

/// What a settled withdrawal left behind: its status and CoinsPaid's word, its ledger, the
/// changes it notified, its callback rows, its job.
async fn settled_trace(app: &TestApp, w: &Value) -> Value {
    let id: uuid::Uuid = id_of(w).parse().unwrap();
    let row = app.withdrawal(&id_of(w)).await;
    let notified: Vec<String> = sqlx::query_scalar(
        "SELECT (payload->'data'->>'previous_status') || '>' || (payload->'data'->>'status')
         FROM notification_outbox WHERE withdrawal_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let callbacks: Vec<(bool, String, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT verified, outcome, detail, provider_status FROM callbacks
         WHERE foreign_id = $1 ORDER BY id",
    )
    .bind(fid_of(w))
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let jobs: i64 =
        sqlx::query_scalar("SELECT count(*) FROM submission_jobs WHERE withdrawal_id = $1")
            .bind(id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    json!({
        "status": row["status"],
        "provider_status": row["provider_status"],
        "error": row["error"],
        "anomaly": row["anomaly"],
        "ledger": app.ledger_kinds(&id_of(w)).await,
        "notified": notified,
        "callbacks": callbacks,
        "jobs": jobs,
    })
}

/// A confirmed, a cancelled and a pending withdrawal CoinsPaid then reports as processing,
/// each with a repeat of its callback; the traces they leave, and the balance.
async fn settle_the_three_kinds(app: &TestApp) -> (Vec<Value>, (String, String)) {
    app.fund("u1", "EUR", "200.00").await;
    let confirmed = app.withdraw_ok(&eur_to_btc("u1", "40.00")).await;
    let cancelled = app.withdraw_ok(&eur_to_btc("u1", "60.00")).await;
    app.sim
        .push_behavior(SubmitBehavior::ServerError { status: 503 });
    let pending = app.withdraw_ok(&eur_to_btc("u1", "25.00")).await;
    assert_eq!(pending["status"], "pending");
    for (w, word) in [
        (&confirmed, "confirmed"),
        (&cancelled, "declined"),
        (&pending, "not_confirmed"),
    ] {
        for _ in 0..2 {
            assert_eq!(
                app.post_callback(&app.callback_for(w, word)).await,
                StatusCode::OK
            );
        }
    }
    let mut traces = Vec::new();
    for w in [&confirmed, &cancelled, &pending] {
        traces.push(settled_trace(app, w).await);
    }
    // The notification of each final change is the documented event of the row it left.
    for (w, previous) in [
        (&confirmed, WithdrawalStatus::Processing),
        (&cancelled, WithdrawalStatus::Processing),
    ] {
        let id: uuid::Uuid = id_of(w).parse().unwrap();
        let row = payoutd::withdrawals::store::get(&app.pool, id)
            .await
            .unwrap()
            .unwrap();
        let written: Value = sqlx::query_scalar(
            "SELECT payload FROM notification_outbox WHERE withdrawal_id = $1
             ORDER BY id DESC LIMIT 1",
        )
        .bind(id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
        assert_status_changed_payload(&written, &row, previous);
    }
    app.assert_invariants().await;
    (traces, app.balance("u1", "EUR").await)
}

fn settle_metric(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}{{batch=\"settle\"}} ")))
        .map(|v| v.parse().unwrap())
        .unwrap_or_else(|| panic!("{name} for settle not exported"))
}

/// Each withdrawal debited, released or moved once, its repeat a duplicate (or, for a mere
/// progress report, a note), its changes notified once, its job gone: batched or alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_settle_debits_releases_and_moves_once_batched_or_alone() {
    let batched = spawn_app().await;
    let alone = spawn_app_with(|s| s.batching.enabled = false).await;
    let callback = |outcome: &str, word: &str| json!([true, outcome, null, word]);
    let expected = [
        json!({
            "status": "confirmed", "provider_status": "confirmed", "error": null, "anomaly": null,
            "ledger": ["hold", "debit"],
            "notified": ["pending>processing", "processing>confirmed"],
            "callbacks": [callback("applied", "confirmed"), callback("duplicate", "confirmed")],
            "jobs": 0,
        }),
        json!({
            "status": "cancelled", "provider_status": "declined", "error": null, "anomaly": null,
            "ledger": ["hold", "release"],
            "notified": ["pending>processing", "processing>cancelled"],
            "callbacks": [callback("applied", "declined"), callback("duplicate", "declined")],
            "jobs": 0,
        }),
        json!({
            "status": "processing", "provider_status": "not_confirmed", "error": null,
            "anomaly": null,
            "ledger": ["hold"],
            "notified": ["pending>processing"],
            "callbacks": [
                callback("applied", "not_confirmed"),
                callback("applied", "not_confirmed"),
            ],
            "jobs": 0,
        }),
    ];
    for app in [&batched, &alone] {
        let (traces, balance) = settle_the_three_kinds(app).await;
        assert_eq!(balance, ("135.00".into(), "25.00".into()));
        for (trace, expected) in traces.iter().zip(&expected) {
            assert_eq!(trace, expected);
        }
    }
    assert!(
        settle_metric(
            &batched.metrics_text().await,
            "payoutd_batched_requests_total"
        ) >= 6.0,
        "the batched app's callbacks went through the settle batch"
    );
}

/// Small pools on two replicas; every request waits its turn for a connection (these tests
/// are about exactly-once outcomes, not latency).
fn replica_settings(s: &mut payoutd::config::Settings) {
    s.database.max_connections = 8;
    s.database.acquire_timeout_secs = 30;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_callbacks_across_two_replicas_settle_each_hold_once_in_shared_batches() {
    let replicas = Arc::new(spawn_cluster(2, replica_settings).await);
    let app = &replicas[0];
    let users = ["u1", "u2", "u3"];
    for user in users {
        app.fund(user, "EUR", "1000.00").await;
    }
    let n = 36;
    let mut withdrawals = Vec::new();
    for i in 0..n {
        let amount = format!("{}.00", 10 + i);
        let request = eur_to_btc(users[i % users.len()], &amount);
        withdrawals.push(replicas[i % 2].withdraw_ok(&request).await);
    }
    // Per withdrawal: its final word four times; every third one also contradicted twice;
    // one report of the wrong amount. Then callbacks for withdrawals nobody asked for.
    let mut bodies: Vec<Vec<u8>> = Vec::new();
    let mut own_word = HashMap::new();
    for (i, w) in withdrawals.iter().enumerate() {
        let (word, other) = if i % 2 == 0 {
            ("confirmed", "cancelled")
        } else {
            ("cancelled", "confirmed")
        };
        own_word.insert(id_of(w), (word, i % 3 != 0));
        for _ in 0..4 {
            bodies.push(app.callback_for(w, word));
        }
        if i % 3 == 0 {
            for _ in 0..2 {
                bodies.push(app.callback_for(w, other));
            }
        }
        bodies.push(callback_body_for_amount(
            &fid_of(w),
            word,
            w["provider_id"].as_i64().unwrap(),
            "1.00",
        ));
    }
    let unknown = 20;
    for i in 0..unknown {
        bodies.push(callback_body(
            &format!("pd-nobody-{i}"),
            "confirmed",
            1000 + i,
        ));
    }
    // Spread each withdrawal's callbacks over the whole run (a fixed permutation).
    let total = bodies.len();
    let stride = (1..total)
        .rev()
        .find(|s| gcd(*s, total) == 1 && *s < total / 2)
        .unwrap();
    let bodies: Arc<Vec<Vec<u8>>> = Arc::new(
        (0..total)
            .map(|k| bodies[k * stride % total].clone())
            .collect(),
    );
    let batches_before = settle_metric(&app.metrics_text().await, "payoutd_batches_total");
    let requests_before =
        settle_metric(&app.metrics_text().await, "payoutd_batched_requests_total");

    let statuses = concurrently(total, |k| {
        let (replicas, bodies) = (replicas.clone(), bodies.clone());
        async move { replicas[k % 2].post_callback(&bodies[k]).await }
    })
    .await;
    assert!(
        statuses.iter().all(|s| *s == StatusCode::OK),
        "{:?}",
        statuses
            .iter()
            .filter(|s| **s != StatusCode::OK)
            .collect::<Vec<_>>()
    );

    // Each hold settled once, as its withdrawal's final status says.
    let mut debited: HashMap<&str, rust_decimal::Decimal> = HashMap::new();
    for (i, w) in withdrawals.iter().enumerate() {
        let done = replicas[1].withdrawal(&id_of(w)).await;
        let status = done["status"].as_str().unwrap().to_owned();
        let kinds = replicas[1].ledger_kinds(&id_of(w)).await;
        match status.as_str() {
            "confirmed" => {
                assert_eq!(kinds, ["hold", "debit"], "{done}");
                *debited.entry(users[i % users.len()]).or_default() +=
                    dec(w["amount"].as_str().unwrap());
            }
            "cancelled" => assert_eq!(kinds, ["hold", "release"], "{done}"),
            other => panic!("not settled: {other}"),
        }
        let (word, uncontradicted) = own_word[&id_of(w)];
        if uncontradicted {
            assert_eq!(status, word, "only its own word was sent");
        }
        // The report of the wrong amount was recorded on it, whenever it came.
        let anomalies: Vec<Option<String>> = sqlx::query_scalar(
            "SELECT detail FROM callbacks WHERE foreign_id = $1 AND outcome = 'anomaly'",
        )
        .bind(fid_of(w))
        .fetch_all(&app.pool)
        .await
        .unwrap();
        assert!(
            anomalies.iter().any(|d| d
                .as_deref()
                .unwrap_or("")
                .contains("currency_sent amount 1.00")),
            "{anomalies:?}"
        );
    }
    for user in users {
        let spent = debited.get(user).copied().unwrap_or_default();
        assert_eq!(
            app.balance(user, "EUR").await,
            ((dec("1000.00") - spent).to_string(), "0.00".to_owned()),
            "{user}"
        );
    }

    // Every callback on record once, with its final outcome.
    let outcomes: HashMap<String, i64> =
        sqlx::query_as("SELECT outcome, count(*) FROM callbacks GROUP BY outcome")
            .fetch_all(&app.pool)
            .await
            .unwrap()
            .into_iter()
            .collect();
    let count = |o: &str| outcomes.get(o).copied().unwrap_or(0);
    assert_eq!(outcomes.values().sum::<i64>(), total as i64, "{outcomes:?}");
    assert_eq!(count("applied"), n as i64, "{outcomes:?}");
    assert_eq!(count("ignored"), unknown, "{outcomes:?}");
    assert_eq!(count("received"), 0, "{outcomes:?}");
    assert!(count("anomaly") >= n as i64, "{outcomes:?}");
    assert_eq!(
        count("applied") + count("duplicate") + count("anomaly") + count("ignored"),
        total as i64,
        "{outcomes:?}"
    );
    let jobs: i64 = sqlx::query_scalar("SELECT count(*) FROM submission_jobs")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(jobs, 0);
    app.assert_invariants().await;

    // The callbacks shared transactions (both replicas export this process's counters).
    let metrics = app.metrics_text().await;
    let batches = settle_metric(&metrics, "payoutd_batches_total") - batches_before;
    let requests = settle_metric(&metrics, "payoutd_batched_requests_total") - requests_before;
    assert!(
        requests >= total as f64,
        "{requests} of {total} went through a batch"
    );
    assert!(
        requests > batches,
        "batches of more than one formed: {requests} callbacks in {batches} batches"
    );
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// A settle batch of several callbacks crashes after its statements and before its commit
/// (one runner; the first batch is held on a row lock and cancelled, so the crash is reached
/// by the batch of everything that queued behind it). Nothing of it stays; after a restart,
/// CoinsPaid's retry of the same bodies settles each withdrawal once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_between_gathering_a_settle_batch_and_its_commit() {
    let sim = start_simulator().await;
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let database = format!("payoutd_test_{}", uuid::Uuid::now_v7().simple());
    let _drop = DropDatabase::new(&database);
    let config_dir = fast_retry_config_dir();
    let mut config = std::fs::read_to_string(config_dir.join("development.toml")).unwrap();
    config.push_str("[batching]\nrunners = 1\n");
    std::fs::write(config_dir.join("development.toml"), config).unwrap();
    let mut child = start_service(
        port,
        &database,
        &config_dir,
        &sim.base_url(),
        Some("callback_before_commit"),
    )
    .await;
    let http = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        http.post(format!("{base}{path}"))
            .bearer_auth(TOKEN)
            .header("Idempotency-Key", uuid::Uuid::now_v7().to_string())
            .json(&body)
            .send()
    };
    let r = post(
        "/v1/users/u1/credits",
        json!({"currency":"EUR","amount":"1000.00","reference":"d1"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let n = 8;
    let mut foreign_ids = Vec::new();
    for _ in 0..n {
        let r = post("/v1/withdrawals", eur_to_btc("u1", "10.00"))
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        let w: Value = r.json().await.unwrap();
        assert_eq!(w["status"], "processing");
        foreign_ids.push(fid_of(&w));
    }
    let signer = Signer::new(Credentials {
        key: SIM_KEY.into(),
        secret: SecretString::new(SIM_SECRET),
    });
    let bodies: Vec<Vec<u8>> = foreign_ids
        .iter()
        .map(|fid| sim.control().callback_body(fid, "confirmed").unwrap())
        .collect();
    let send = |body: Vec<u8>| {
        let request = http
            .post(format!("{base}/v1/callbacks/coinspaid"))
            .header("content-type", "application/json")
            .header("X-Processing-Key", SIM_KEY)
            .header("X-Processing-Signature", signer.sign(&body))
            .body(body);
        tokio::spawn(async move { request.send().await.map(|r| r.status()) })
    };

    // Hold the first withdrawal's row: the first batch (its callback alone) waits for it.
    let url = format!("{}/{database}", base_database_url());
    let mut holder = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut holder).await.unwrap();
    sqlx::query("SELECT 1 FROM withdrawals WHERE foreign_id = $1 FOR UPDATE")
        .bind(&foreign_ids[0])
        .execute(&mut holder)
        .await
        .unwrap();
    let mut answers = vec![send(bodies[0].clone())];
    let observer = PgPool::connect(&url).await.unwrap();
    let waiting_batch = || async {
        sqlx::query_scalar::<_, i32>(
            "SELECT pid FROM pg_stat_activity
             WHERE datname = current_database() AND wait_event_type = 'Lock'
               AND query LIKE '%foreign_id = ANY%FOR UPDATE%'",
        )
        .fetch_optional(&observer)
        .await
        .unwrap()
    };
    let mut blocked = None;
    for _ in 0..200 {
        blocked = waiting_batch().await;
        if blocked.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let blocked = blocked.expect("the first settle batch waits for the held row");
    // The rest queue behind the busy runner and will be gathered into one batch.
    answers.extend(bodies[1..].iter().cloned().map(send));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // The first batch fails (its callback goes to the single path, which waits for the held
    // row); the runner takes everything queued, and that batch reaches the crash point.
    let cancelled: bool = sqlx::query_scalar("SELECT pg_cancel_backend($1)")
        .bind(blocked)
        .fetch_one(&observer)
        .await
        .unwrap();
    assert!(cancelled);
    let status = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .expect("the crash point was reached")
        .unwrap();
    assert!(!status.success(), "the process aborted");
    for answer in answers {
        assert!(
            answer.await.unwrap().is_err(),
            "no callback was answered before the crash"
        );
    }
    sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();

    // Nothing of the batch stayed.
    let (callbacks, settlements): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM callbacks),
                (SELECT count(*) FROM ledger_entries WHERE kind IN ('debit', 'release'))",
    )
    .fetch_one(&observer)
    .await
    .unwrap();
    assert_eq!((callbacks, settlements), (0, 0));

    // CoinsPaid retries the same bodies, all at once.
    let mut child = start_service(port, &database, &config_dir, &sim.base_url(), None).await;
    let retries: Vec<_> = bodies.iter().cloned().map(send).collect();
    for retry in retries {
        assert_eq!(retry.await.unwrap().unwrap(), StatusCode::OK);
    }
    let settled: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT w.status, c.outcome,
                (SELECT count(*) FROM ledger_entries l WHERE l.withdrawal_id = w.id AND l.kind = 'debit')
         FROM withdrawals w JOIN callbacks c ON c.foreign_id = w.foreign_id ORDER BY w.id",
    )
    .fetch_all(&observer)
    .await
    .unwrap();
    assert_eq!(settled.len(), n, "one callback row each: {settled:?}");
    assert!(
        settled.iter().all(|(status, outcome, debits)| (
            status.as_str(),
            outcome.as_str(),
            *debits
        ) == ("confirmed", "applied", 1)),
        "{settled:?}"
    );
    let balance: (rust_decimal::Decimal, rust_decimal::Decimal) =
        sqlx::query_as("SELECT available, held FROM balances WHERE user_id = 'u1'")
            .fetch_one(&observer)
            .await
            .unwrap();
    assert_eq!(balance, (dec("920.00"), dec("0.00")));
    assert_invariants(&observer).await;
    child.start_kill().unwrap();
    let _ = child.wait().await;
}
