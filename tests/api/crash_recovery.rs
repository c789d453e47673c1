//! Crash recovery: the real binary is made to abort (like `kill -9`) at each step of a
//! withdrawal, restarted on the same database, and the withdrawal must still end in exactly
//! one terminal state, created once at CoinsPaid, with the ledger matching the balances.

use std::time::Duration;

use crate::helpers::*;
use payoutd::simulator::{Simulator, SubmitBehavior};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use sqlx::PgPool;
use tokio::process::Child;

struct Scenario {
    sim: Simulator,
    port: u16,
    database: String,
    config_dir: std::path::PathBuf,
    http: reqwest::Client,
    _drop_database: DropDatabase,
}

impl Scenario {
    async fn new() -> Self {
        let sim = start_simulator().await;
        let port = free_port();
        sim.control().set_callback_url(Some(format!(
            "http://127.0.0.1:{port}/v1/callbacks/coinspaid"
        )));
        let database = format!("payoutd_test_{}", uuid::Uuid::now_v7().simple());
        Self {
            sim,
            port,
            _drop_database: DropDatabase::new(&database),
            database,
            config_dir: fast_retry_config_dir(),
            http: reqwest::Client::new(),
        }
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    async fn start(&self, crash_at: Option<&str>) -> Child {
        start_service(
            self.port,
            &self.database,
            &self.config_dir,
            &self.sim.base_url(),
            crash_at,
        )
        .await
    }

    async fn post(
        &self,
        path: &str,
        key: Option<&str>,
        body: &Value,
    ) -> Result<(u16, Value), reqwest::Error> {
        let mut request = self
            .http
            .post(format!("{}{path}", self.base()))
            .bearer_auth(TOKEN)
            .json(body);
        if let Some(k) = key {
            request = request.header("Idempotency-Key", k);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        Ok((status, response.json().await.unwrap_or(Value::Null)))
    }

    async fn get(&self, path: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.base()))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn wait_status(&self, id: &str, want: &str) -> Value {
        let mut last = Value::Null;
        for _ in 0..200 {
            last = self.get(&format!("/v1/withdrawals/{id}")).await;
            if last["status"] == want {
                return last;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("withdrawal never became {want}: {last}");
    }
}

async fn expect_crash(child: &mut Child) {
    let status = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .expect("the crash point was reached")
        .unwrap();
    assert!(!status.success(), "the process aborted");
}

/// One withdrawal through a crash at `point`, then recovery after a restart, against a
/// CoinsPaid that pays out every request, even one with a reused foreign_id (its v2 pages
/// never promise to refuse one): it must still be paid out once.
async fn crash_and_recover(point: &str) {
    let s = Scenario::new().await;
    s.sim.control().set_refuse_reused_foreign_id(false);
    let mut child = s.start(Some(point)).await;
    let (status, _) = s
        .post(
            "/v1/users/u1/credits",
            None,
            &json!({"currency":"EUR","amount":"100.00","reference":"d1"}),
        )
        .await
        .unwrap();
    assert_eq!(status, 201);
    let request = json!({"user_id":"u1","amount":"10.00","currency":"EUR","convert_to":"BTC","address":BTC_ADDRESS});
    let first = s.post("/v1/withdrawals", Some("crash-key"), &request).await;
    let callback_point = point.starts_with("callback_");
    if callback_point {
        let (status, w) = first.expect("the request path does not crash here");
        assert_eq!((status, w["status"].as_str()), (201, Some("processing")));
        // CoinsPaid's first callback hits the crash point.
        assert!(s
            .sim
            .control()
            .send_callback(w["foreign_id"].as_str().unwrap(), "confirmed")
            .await
            .is_err());
    } else {
        assert!(first.is_err(), "the process died mid-request");
    }
    expect_crash(&mut child).await;

    let mut child = s.start(None).await;
    // The website retries its request with the same key: it must get the same withdrawal.
    let (status, w) = s
        .post("/v1/withdrawals", Some("crash-key"), &request)
        .await
        .unwrap();
    // A crash between gathering a create batch and its commit leaves nothing: the retry
    // creates the withdrawal afresh. Every later point committed it: the retry replays it.
    let committed = point != "create_batch_before_commit";
    assert_eq!(
        status,
        if committed { 200 } else { 201 },
        "committed before the crash: {committed}; {w}"
    );
    let (id, foreign_id) = (
        w["id"].as_str().unwrap().to_owned(),
        w["foreign_id"].as_str().unwrap().to_owned(),
    );
    if callback_point {
        // CoinsPaid retries the callback it got no answer for.
        assert_eq!(
            s.sim
                .control()
                .send_callback(&foreign_id, "confirmed")
                .await
                .unwrap(),
            200
        );
    } else {
        // The dead process's lease expires and the new one submits with the same foreign_id.
        s.wait_status(&id, "processing").await;
        assert_eq!(
            s.sim
                .control()
                .send_callback(&foreign_id, "confirmed")
                .await
                .unwrap(),
            200
        );
    }
    let done = s.wait_status(&id, "confirmed").await;
    assert_eq!(done["foreign_id"], foreign_id.as_str());
    let balances = s.get("/v1/users/u1/balances").await;
    assert_eq!(balances["balances"][0]["available"], "90.00");
    assert_eq!(balances["balances"][0]["held"], "0.00");

    let created: Vec<_> = s
        .sim
        .control()
        .withdrawals()
        .into_iter()
        .filter(|w| w.foreign_id == foreign_id)
        .collect();
    assert_eq!(created.len(), 1, "CoinsPaid created it exactly once");
    assert_eq!(s.sim.control().payouts(&foreign_id), 1, "paid out once");
    let accepted_as_new = s
        .sim
        .control()
        .submissions()
        .iter()
        .filter(|x| x.foreign_id.as_deref() == Some(&foreign_id) && x.answered_status == 201)
        .count();
    assert_eq!(
        accepted_as_new, 1,
        "submitted at most once as a new withdrawal"
    );

    let pool = PgPool::connect(&format!("{}/{}", base_database_url(), s.database))
        .await
        .unwrap();
    assert_invariants(&pool).await;
    let open_jobs: i64 = sqlx::query_scalar("SELECT count(*) FROM submission_jobs")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(open_jobs, 0);
    child.start_kill().unwrap();
    let _ = child.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_between_gathering_a_create_batch_and_its_commit() {
    crash_and_recover("create_batch_before_commit").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_after_the_hold_commits() {
    crash_and_recover("after_hold_commit").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_before_the_provider_call() {
    crash_and_recover("before_provider_call").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_after_the_provider_call() {
    crash_and_recover("after_provider_call").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_before_the_answer_is_recorded() {
    crash_and_recover("before_record_commit").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_after_storing_a_callback() {
    crash_and_recover("callback_before_apply").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_while_applying_a_callback() {
    crash_and_recover("callback_before_commit").await;
}

/// Where a refusal taken as proof would lose money, tried as an adversary would: CoinsPaid
/// creates the payout and the process dies mid-call; after the restart CoinsPaid refuses our
/// key once (403), its look-ups are throttled (429), refused (403) and answered without our
/// record, then it even says it has no record while it has one (a lagging look-up), refuses
/// the resend for a field of its own, and an operator retries in between. The amount stays held until CoinsPaid
/// itself reports, then it is debited once, and CoinsPaid paid out once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_mid_call_then_refusals_and_failed_look_ups_never_release_the_hold() {
    let s = Scenario::new().await;
    // Two attempts before a job parks, and a reconciler that looks every open withdrawal up
    // each second: its look-up is what puts the parked job back in line with fresh attempts.
    std::fs::write(
        s.config_dir.join("development.toml"),
        "[coinspaid]\ntimeout_secs = 1\n\
         [worker]\nlease_secs = 2\npoll_interval_ms = 50\nbackoff_base_ms = 10\n\
         backoff_max_secs = 1\nresend_margin_secs = 0\nmax_attempts = 2\n\
         [reconciler]\ninterval_secs = 1\nmin_age_secs = 0\nrecheck_secs = 0\n",
    )
    .unwrap();
    let sim = s.sim.control();
    let mut child = s.start(Some("after_provider_call")).await;
    let (status, _) = s
        .post(
            "/v1/users/u1/credits",
            None,
            &json!({"currency":"EUR","amount":"100.00","reference":"d1"}),
        )
        .await
        .unwrap();
    assert_eq!(status, 201);
    let request = json!({"user_id":"u1","amount":"10.00","currency":"EUR","convert_to":"BTC","address":BTC_ADDRESS});
    assert!(s
        .post("/v1/withdrawals", Some("k1"), &request)
        .await
        .is_err());
    expect_crash(&mut child).await;
    let foreign_id = sim.withdrawals()[0].foreign_id.clone();

    // What CoinsPaid will answer, in order, once the service is back.
    let fixture = |file: &str| {
        std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/coinspaid")
                .join(file),
        )
        .unwrap()
    };
    sim.push_lookup_answer(429, &fixture("exchange_calculate_429_gh.txt"));
    sim.push_lookup_answer(403, &fixture("error_403_bad_header_key.json"));
    sim.push_lookup_answer(200, r#"{"data": []}"#);
    let no_record = r#"{"errors": {"foreign_id": "Transaction not found"}}"#;
    sim.set_lookup_answer_raw(Some((400, no_record.into())));
    sim.push_behavior(SubmitBehavior::AuthError {
        code: "bad_header_key".into(),
    });
    sim.push_behavior(SubmitBehavior::Refuse {
        status: 400,
        field: Some("amount".into()),
        message: "Not enough money on the balance".into(),
    });

    let mut child = s.start(None).await;
    let (_, w) = s
        .post("/v1/withdrawals", Some("k1"), &request)
        .await
        .unwrap();
    let id = w["id"].as_str().unwrap().to_owned();
    assert_eq!(w["foreign_id"], foreign_id.as_str());
    let pool = PgPool::connect(&format!("{}/{}", base_database_url(), s.database))
        .await
        .unwrap();
    let job = || async {
        sqlx::query_as::<_, (bool, Option<String>)>(
            "SELECT parked, park_reason FROM submission_jobs WHERE withdrawal_id = $1::uuid",
        )
        .bind(&id)
        .fetch_optional(&pool)
        .await
        .unwrap()
    };
    // Looked up (failed, failed, failed, "no record"), sent again (403), looked up, sent
    // again (refused for a field), looked up: parked for a person, never released.
    let mut parked = None;
    for _ in 0..300 {
        parked = job().await;
        if parked == Some((true, Some("needs_operator".into()))) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(parked, Some((true, Some("needs_operator".into()))));
    let held = |b: Value| {
        (
            b["balances"][0]["available"].clone(),
            b["balances"][0]["held"].clone(),
        )
    };
    assert_eq!(
        held(s.get("/v1/users/u1/balances").await),
        (json!("90.00"), json!("10.00"))
    );
    assert_eq!(
        s.get(&format!("/v1/withdrawals/{id}")).await["status"],
        "pending"
    );

    // An operator sends it again (fresh attempts): looked up again first; CoinsPaid still says
    // no record after the quiet period, so it goes again and is refused for a field again:
    // still not proof, since an earlier request may have created it.
    sim.push_behavior(SubmitBehavior::Refuse {
        status: 400,
        field: Some("amount".into()),
        message: "Not enough money on the balance".into(),
    });
    let retried = s
        .http
        .post(format!("{}/admin/v1/withdrawals/{id}/retry", s.base()))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"reason": "CoinsPaid support says try again"}))
        .send()
        .await
        .unwrap();
    assert_eq!(retried.status(), 200);
    for _ in 0..300 {
        if job().await == Some((true, Some("needs_operator".into()))) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(job().await, Some((true, Some("needs_operator".into()))));
    assert_eq!(
        s.get(&format!("/v1/withdrawals/{id}")).await["status"],
        "pending"
    );
    assert_eq!(
        held(s.get("/v1/users/u1/balances").await),
        (json!("90.00"), json!("10.00"))
    );
    // CoinsPaid's look-up works again: it has the payout. The reconciler would find it in
    // its next round; an operator's look-up finds it now.
    sim.set_lookup_answer_raw(None);
    let looked_up = s
        .http
        .post(format!("{}/admin/v1/withdrawals/{id}/lookup", s.base()))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(looked_up.status(), 200);
    s.wait_status(&id, "processing").await;
    assert_eq!(
        sim.send_callback(&foreign_id, "confirmed").await.unwrap(),
        200
    );
    s.wait_status(&id, "confirmed").await;
    let kinds: Vec<String> = sqlx::query_scalar(
        "SELECT kind FROM ledger_entries WHERE withdrawal_id = $1::uuid ORDER BY id",
    )
    .bind(&id)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(kinds, ["hold", "debit"]);
    assert_eq!(sim.payouts(&foreign_id), 1, "CoinsPaid paid out once");
    let refused = sim
        .submissions()
        .iter()
        .filter(|x| x.answered_status == 400 && x.foreign_id.as_deref() == Some(&foreign_id))
        .count();
    assert_eq!(refused, 2, "both field refusals were met");
    assert_invariants(&pool).await;
    child.start_kill().unwrap();
    let _ = child.wait().await;
}

/// Many creates in flight when a batch reaches its commit and the process dies: none of them
/// may leave anything behind (no hold, no key, no withdrawal), and the website's retries with
/// the same keys then each create exactly once, or are refused as they would have been.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crash_before_a_batch_commits_leaves_nothing_of_any_request_in_flight() {
    let s = std::sync::Arc::new(Scenario::new().await);
    let mut child = s.start(Some("create_batch_before_commit")).await;
    for user in ["u0", "u1", "u2", "u3"] {
        let (status, _) = s
            .post(
                &format!("/v1/users/{user}/credits"),
                None,
                &json!({"currency":"EUR","amount":"50.00","reference":format!("d-{user}")}),
            )
            .await
            .unwrap();
        assert_eq!(status, 201);
    }
    let body = |i: usize| {
        json!({"user_id": format!("u{}", i % 4), "amount":"10.00","currency":"EUR",
               "convert_to":"BTC","address":BTC_ADDRESS})
    };
    // 24 requests for 4 users of 50.00: 20 fit, 4 do not.
    let answers = concurrently(24, |i| {
        let s = s.clone();
        let request = body(i);
        async move {
            s.post("/v1/withdrawals", Some(&format!("k-{i}")), &request)
                .await
        }
    })
    .await;
    assert!(
        answers.iter().all(|a| a.is_err()),
        "every request in flight died with the process"
    );
    expect_crash(&mut child).await;
    let pool = PgPool::connect(&format!("{}/{}", base_database_url(), s.database))
        .await
        .unwrap();
    let left: (i64, i64, i64, Decimal) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM withdrawals), (SELECT count(*) FROM idempotency_keys),
                (SELECT count(*) FROM ledger_entries WHERE kind = 'hold'),
                (SELECT COALESCE(sum(held), 0) FROM balances)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        left,
        (0, 0, 0, Decimal::ZERO),
        "nothing of the batch stayed"
    );

    let mut child = s.start(None).await;
    let mut created = 0;
    let mut refused = 0;
    for i in 0..24 {
        let (status, w) = s
            .post("/v1/withdrawals", Some(&format!("k-{i}")), &body(i))
            .await
            .unwrap();
        match status {
            201 => created += 1,
            422 if w["code"] == "insufficient_funds" => refused += 1,
            other => panic!("unexpected {other}: {w}"),
        }
    }
    assert_eq!((created, refused), (20, 4));
    assert_invariants(&pool).await;
    child.start_kill().unwrap();
    let _ = child.wait().await;
}

#[test]
fn every_crash_point_has_a_test() {
    let source = include_str!("crash_recovery.rs");
    for point in payoutd::faults::POINTS {
        assert!(
            source.contains(&format!("crash_and_recover(\"{point}\")")),
            "no test for {point}"
        );
    }
}
