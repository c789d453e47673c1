//! A create's first submission attempt (`worker.first_attempt_wait_ms`, `worker.max_in_flight`):
//! with no wait the website gets `pending` as soon as the amount is held and the attempt goes
//! on; attempts are bounded per process; one that waited too long for its turn is left to the
//! worker; a graceful stop lets running attempts finish.

use std::collections::HashMap;
use std::time::Duration;

use crate::helpers::*;
use payoutd::simulator::SubmitBehavior;
use reqwest::StatusCode;
use serde_json::Value;

fn answer_when_held(s: &mut payoutd::config::Settings) {
    s.worker.first_attempt_wait_ms = Some(0);
}

/// Polls until the withdrawal has `status` (10 s at most); returns it as last read.
async fn wait_status(app: &TestApp, id: &str, status: &str) -> Value {
    let mut w = Value::Null;
    for _ in 0..200 {
        w = app.withdrawal(id).await;
        if w["status"] == status {
            return w;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("withdrawal {id} never reached {status}: {w}");
}

#[tokio::test]
async fn without_a_wait_the_create_answers_pending_and_the_attempt_goes_on() {
    let app = spawn_app_with(answer_when_held).await;
    app.fund("u1", "EUR", "100.00").await;
    // CoinsPaid answers only after 1.5 s: the answer cannot have waited for it.
    app.sim.push_behavior(SubmitBehavior::Slow {
        delay: Duration::from_millis(1_500),
        callbacks: vec![],
    });
    let r = app.withdraw("held-1", &eur_to_btc("u1", "100.00")).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let w: Value = r.json().await.unwrap();
    assert_eq!(w["status"], "pending", "answered as held: {w}");
    assert!(w["provider_id"].is_null());
    assert_eq!(
        app.balance("u1", "EUR").await,
        ("0.00".into(), "100.00".into())
    );

    let id = id_of(&w);
    let processing = wait_status(&app, &id, "processing").await;
    assert!(processing["provider_id"].is_i64());
    assert_eq!(
        app.sim.submissions().len(),
        1,
        "submitted once, by the request's attempt"
    );
    let jobs: i64 = sqlx::query_scalar("SELECT count(*) FROM submission_jobs")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(jobs, 0, "the attempt completed its job");

    // The same key again: the withdrawal as it now stands, nothing new sent.
    let again = app.withdraw("held-1", &eur_to_btc("u1", "100.00")).await;
    assert_eq!(again.status(), StatusCode::OK);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["status"], "processing");
    assert_eq!(app.sim.submissions().len(), 1);
    app.assert_invariants().await;
}

#[tokio::test]
async fn many_creates_without_a_wait_are_each_submitted_once_within_the_in_flight_bound() {
    let app = spawn_app_with(|s| {
        answer_when_held(s);
        s.worker.max_in_flight = 3;
    })
    .await;
    app.sim.set_default_behavior(SubmitBehavior::Slow {
        delay: Duration::from_millis(20),
        callbacks: vec![],
    });
    let n = 60;
    for i in 0..n {
        app.fund(&format!("u{i}"), "EUR", "10.00").await;
    }
    let app = std::sync::Arc::new(app);
    let answers = concurrently(n, |i| {
        let app = app.clone();
        async move {
            let r = app
                .withdraw(&format!("k{i}"), &eur_to_btc(&format!("u{i}"), "10.00"))
                .await;
            (r.status(), r.json::<Value>().await.unwrap())
        }
    })
    .await;
    for (status, w) in &answers {
        assert_eq!(*status, StatusCode::CREATED, "{w}");
        assert_eq!(w["status"], "pending", "{w}");
    }
    // 3 running and 48 waiting at most (QUEUED_PER_SLOT per slot): the rest were given back
    // to the worker at once. Wait until every first attempt has ended: each withdrawal is
    // then processing, or pending with its lease given back.
    let mut left_to_worker = -1;
    for _ in 0..200 {
        let (in_flight, given_back): (i64, i64) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE j.lease_id IS NOT NULL OR j.withdrawal_id IS NULL),
                    count(*) FILTER (WHERE j.lease_id IS NULL AND j.withdrawal_id IS NOT NULL)
             FROM withdrawals w LEFT JOIN submission_jobs j ON j.withdrawal_id = w.id
             WHERE w.status = 'pending'",
        )
        .fetch_one(&app.pool)
        .await
        .unwrap();
        if in_flight == 0 {
            left_to_worker = given_back;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(left_to_worker >= 0, "first attempts never ended");
    let most = app.sim.max_concurrent_requests();
    assert!(
        (1..=3).contains(&most),
        "at most worker.max_in_flight attempts at once, saw {most}"
    );
    // The worker sends what was left to it.
    assert_eq!(app.drain().await as i64, left_to_worker);
    for (_, w) in &answers {
        wait_status(&app, &id_of(w), "processing").await;
    }
    let mut per_foreign_id: HashMap<String, usize> = HashMap::new();
    for s in app.sim.submissions() {
        *per_foreign_id.entry(s.foreign_id.unwrap()).or_default() += 1;
    }
    assert_eq!(per_foreign_id.len(), n, "every withdrawal was submitted");
    assert!(
        per_foreign_id.values().all(|&c| c == 1),
        "each exactly once: {per_foreign_id:?}"
    );
    app.assert_invariants().await;
}

#[tokio::test]
async fn an_attempt_that_waited_too_long_for_its_turn_is_left_to_the_worker_uncounted() {
    // One slot; a 3 s lease and a 2 s CoinsPaid timeout: an attempt must start within 1 s to
    // end inside its lease. The first holds the slot for 1.8 s: the second gives its lease
    // back instead of racing the worker.
    let app = spawn_app_with(|s| {
        answer_when_held(s);
        s.worker.max_in_flight = 1;
        s.worker.lease_secs = 3;
        s.coinspaid.timeout_secs = 2;
    })
    .await;
    app.fund("u1", "EUR", "20.00").await;
    app.sim.push_behavior(SubmitBehavior::Slow {
        delay: Duration::from_millis(1_800),
        callbacks: vec![],
    });
    let first = app.withdraw_ok(&eur_to_btc("u1", "10.00")).await;
    // The first attempt is at CoinsPaid (and holds the one slot) before the second is made.
    for _ in 0..100 {
        if !app.sim.submissions().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(app.sim.submissions().len(), 1);
    let second = app.withdraw_ok(&eur_to_btc("u1", "10.00")).await;
    assert_eq!(second["status"], "pending");
    wait_status(&app, &id_of(&first), "processing").await;

    // The second's lease is given back, due now, with the reason and no attempt counted;
    // nothing was sent for it.
    let mut job: Option<(Option<uuid::Uuid>, Option<String>, i32)> = None;
    for _ in 0..100 {
        job = sqlx::query_as(
            "SELECT lease_id, last_error, attempts FROM submission_jobs
             WHERE withdrawal_id = $1::uuid",
        )
        .bind(id_of(&second))
        .fetch_optional(&app.pool)
        .await
        .unwrap();
        if matches!(job, Some((None, _, _))) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (lease, error, attempts) = job.expect("the second withdrawal is still queued");
    assert_eq!(lease, None, "lease given back");
    assert_eq!(attempts, 0, "no call was made: no attempt counted");
    assert!(
        error.as_deref().unwrap_or("").contains("max_in_flight"),
        "{error:?}"
    );
    assert_eq!(
        app.sim.submissions().len(),
        1,
        "nothing sent for the second"
    );

    // The worker takes it at once (it is due now) and submits it: a first call, so CoinsPaid's
    // definitive refusal is released at once, not looked up and parked as after a lost answer.
    app.sim.push_behavior(SubmitBehavior::Refuse {
        status: 400,
        field: Some("address".into()),
        message: "Invalid address".into(),
    });
    assert_eq!(app.drain().await, 1);
    wait_status(&app, &id_of(&second), "rejected").await;
    assert_eq!(app.sim.submissions().len(), 2);
    assert_eq!(
        app.balance("u1", "EUR").await,
        ("10.00".into(), "10.00".into()),
        "the second's hold released, the first's kept"
    );
    app.assert_invariants().await;
}

#[tokio::test]
async fn a_graceful_stop_lets_running_first_attempts_finish() {
    let sim = start_simulator().await;
    let port = free_port();
    let database = format!("payoutd_test_{}", uuid::Uuid::now_v7().simple());
    let _drop_database = DropDatabase::new(&database);
    let config_dir =
        std::env::temp_dir().join(format!("payoutd-test-config-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&config_dir).unwrap();
    // A long lease: if the stop cut the attempt short, nothing would resubmit it here.
    std::fs::write(
        config_dir.join("development.toml"),
        "[coinspaid]\ntimeout_secs = 5\n[worker]\nfirst_attempt_wait_ms = 0\nlease_secs = 60\n",
    )
    .unwrap();
    let mut service = start_service(port, &database, &config_dir, &sim.base_url(), None).await;
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let funded = http
        .post(format!("{base}/v1/users/u1/credits"))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"currency": "EUR", "amount": "100.00", "reference": "d1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(funded.status(), StatusCode::CREATED);
    sim.control().push_behavior(SubmitBehavior::Slow {
        delay: Duration::from_millis(1_500),
        callbacks: vec![],
    });
    let created: Value = http
        .post(format!("{base}/v1/withdrawals"))
        .bearer_auth(TOKEN)
        .header("Idempotency-Key", "stop-1")
        .json(&eur_to_btc("u1", "100.00"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(created["status"], "pending");

    let (exit, _) = stop_gracefully(&mut service).await;
    assert!(exit.is_some_and(|s| s.success()), "{exit:?}");
    let pool = sqlx::PgPool::connect(&format!("{}/{database}", base_database_url()))
        .await
        .unwrap();
    let (status, jobs): (String, i64) = sqlx::query_as(
        "SELECT w.status, (SELECT count(*) FROM submission_jobs) FROM withdrawals w",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        (status.as_str(), jobs),
        ("processing", 0),
        "the attempt running at the stop was finished and recorded"
    );
    assert_eq!(sim.control().submissions().len(), 1);
    assert_invariants(&pool).await;
    pool.close().await;
}

#[tokio::test]
async fn a_first_attempt_in_flight_holds_its_jobs_lease_and_nobody_else_may_submit_or_settle_it() {
    let app = spawn_app_with(|s| {
        answer_when_held(s);
        with_operator(s);
        s.worker.lease_secs = 10;
        s.coinspaid.timeout_secs = 5;
    })
    .await;
    app.fund("u1", "EUR", "100.00").await;
    app.sim.push_behavior(SubmitBehavior::Slow {
        delay: Duration::from_millis(1_500),
        callbacks: vec![],
    });
    let w = app.withdraw_ok(&eur_to_btc("u1", "100.00")).await;
    assert_eq!(w["status"], "pending");
    let id = id_of(&w);
    // The create wrote the job already leased to the request's attempt...
    let (attempts, leased): (i32, bool) = sqlx::query_as(
        "SELECT attempts, lease_id IS NOT NULL AND run_at > now() FROM submission_jobs
         WHERE withdrawal_id = $1::uuid",
    )
    .bind(&id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        (attempts, leased),
        (1, true),
        "the job is leased to the first attempt"
    );
    // ...the worker does not take it (its lease has not run out)...
    assert_eq!(app.drain().await, 0);
    // ...and an operator can neither queue it again nor settle it under the attempt.
    let (status, body) = app
        .admin_post(
            &format!("/admin/v1/withdrawals/{id}/retry"),
            &serde_json::json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "submission_in_flight");
    let (status, body) = app
        .admin_post(
            &format!("/admin/v1/withdrawals/{id}/resolve"),
            &serde_json::json!({"outcome": "not_paid", "reason": "test", "override": true}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "submission_in_flight");

    wait_status(&app, &id, "processing").await;
    assert_eq!(app.sim.submissions().len(), 1);
    assert_eq!(app.sim.max_concurrent_submissions(), 1);
    let jobs: i64 = sqlx::query_scalar("SELECT count(*) FROM submission_jobs")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(jobs, 0, "the acceptance removed the job");
    app.assert_invariants().await;
}

#[tokio::test]
async fn a_first_attempt_that_never_ended_is_taken_over_once_its_lease_is_over() {
    let app = spawn_app_with(|s| s.worker.lease_secs = 3).await;
    app.fund("u1", "EUR", "100.00").await;
    let w = app.withdraw_ok(&eur_to_btc("u1", "100.00")).await;
    let (id, foreign_id) = (id_of(&w), fid_of(&w));
    // As a process stopped between the hold and its attempt's end leaves it: pending, its
    // job still leased to the dead attempt, the lease long over, unknown to CoinsPaid.
    sqlx::query(
        "UPDATE withdrawals SET status = 'pending', provider_id = NULL, provider_status = NULL
         WHERE id = $1::uuid",
    )
    .bind(&id)
    .execute(&app.pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO submission_jobs (withdrawal_id, lease_id, attempts, run_at)
         VALUES ($1::uuid, gen_random_uuid(), 1, now() - interval '1 hour')",
    )
    .bind(&id)
    .execute(&app.pool)
    .await
    .unwrap();
    assert!(app.sim.forget(&foreign_id));
    let sent_before = app.sim.submissions().len();

    // The worker takes the job over, records that CoinsPaid may have it, looks it up (no
    // record), and submits it with the same foreign_id once the quiet period has passed.
    app.drain_waiting(Duration::from_secs(10)).await;
    let maybe_sent: bool =
        sqlx::query_scalar("SELECT outcome_unknown FROM withdrawals WHERE id = $1::uuid")
            .bind(&id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(
        maybe_sent,
        "a first attempt that never ended may have reached CoinsPaid"
    );
    let w = app.withdrawal(&id).await;
    assert_eq!(w["status"], "processing", "{w}");
    let resent: Vec<String> = app.sim.submissions()[sent_before..]
        .iter()
        .map(|s| s.foreign_id.clone().unwrap())
        .collect();
    assert_eq!(resent, vec![foreign_id]);
    assert_eq!(app.drain().await, 0, "sent once");
    app.assert_invariants().await;
}
