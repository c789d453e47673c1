//! CoinsPaid misbehaving: garbage answers, dropped connections, 5xx bursts, a provider that
//! never recovers. No withdrawal is lost or released on an unknown outcome, retries are
//! bounded, and stuck work shows in the metrics.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::helpers::*;
use payoutd::simulator::SubmitBehavior;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};

/// A TCP proxy in front of the simulator that drops the next `resets` connections after
/// reading the request: the client sees the connection die mid-exchange.
struct DroppingProxy {
    url: String,
    target: Arc<Mutex<Option<SocketAddr>>>,
    resets: Arc<AtomicUsize>,
}

impl DroppingProxy {
    async fn start(resets: usize) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let target: Arc<Mutex<Option<SocketAddr>>> = Arc::default();
        let resets = Arc::new(AtomicUsize::new(resets));
        let (t, r) = (target.clone(), resets.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let (t, r) = (t.clone(), r.clone());
                tokio::spawn(async move {
                    if r.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                        .is_ok()
                    {
                        let mut buf = [0u8; 4096];
                        let _ = inbound.read(&mut buf).await;
                        return; // dropped without an answer
                    }
                    let target = t.lock().unwrap().expect("target set");
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Self {
            url,
            target,
            resets,
        }
    }

    /// Points the app at the proxy and the proxy at the simulator the app was given.
    fn intercept(&self, settings: &mut payoutd::config::Settings) {
        let sim = settings.coinspaid.api_url.as_ref().unwrap();
        let sim = SocketAddr::new(
            sim.host_str().unwrap().parse().unwrap(),
            sim.port().unwrap(),
        );
        *self.target.lock().unwrap() = Some(sim);
        settings.coinspaid.api_url = Some(self.url.parse().unwrap());
    }
}

#[tokio::test]
async fn garbage_answers_are_an_unknown_outcome_never_a_refusal() {
    let app = spawn_app().await;
    app.fund("u1", "EUR", "100.00").await;
    app.sim.push_behavior(SubmitBehavior::Garbage {
        status: 200,
        body: "<html>upstream hiccup</html>".into(),
    });
    app.sim.push_behavior(SubmitBehavior::Garbage {
        status: 400,
        body: "<html>400 Bad Request (proxy)</html>".into(),
    });
    app.sim.push_behavior(SubmitBehavior::Garbage {
        status: 200,
        body: r#"{"data":{"id":"#.into(),
    });
    let w = app.withdraw_ok(&eur_to_btc("u1", "10.00")).await;
    assert_eq!(w["status"], "pending");
    app.drain_waiting(Duration::from_secs(20)).await;
    assert_eq!(app.withdrawal(&id_of(&w)).await["status"], "processing");
    assert_eq!(
        app.sim.submissions().len(),
        4,
        "each unreadable answer was looked up, then sent again once CoinsPaid had no record"
    );
    assert_eq!(
        app.balance("u1", "EUR").await,
        ("90.00".into(), "10.00".into())
    );
    assert_eq!(app.sim.withdrawals().len(), 1);
    app.assert_invariants().await;
}

#[tokio::test]
async fn dropped_connections_are_retried_with_the_same_foreign_id() {
    let proxy = DroppingProxy::start(3).await;
    let app = spawn_app_with(|s| proxy.intercept(s)).await;
    app.fund("u1", "EUR", "100.00").await;
    let w = app.withdraw_ok(&eur_to_btc("u1", "10.00")).await;
    assert_eq!(w["status"], "pending", "the first connection was dropped");
    app.drain_waiting(Duration::from_secs(20)).await;
    let done = app.withdrawal(&id_of(&w)).await;
    assert_eq!(done["status"], "processing");
    assert_eq!(
        proxy.resets.load(Ordering::SeqCst),
        0,
        "all three drops were used"
    );
    let subs = app.sim.submissions();
    assert_eq!(subs.len(), 1, "dropped requests never reached CoinsPaid");
    assert_eq!(subs[0].foreign_id.as_deref(), w["foreign_id"].as_str());
    app.assert_invariants().await;
}

#[tokio::test]
async fn a_5xx_burst_is_ridden_out_with_backoff() {
    let app = spawn_app().await;
    app.fund("u1", "EUR", "100.00").await;
    for status in [500, 502, 503, 504, 500] {
        app.sim
            .push_behavior(SubmitBehavior::ServerError { status });
    }
    let w = app.withdraw_ok(&eur_to_btc("u1", "10.00")).await;
    app.drain_waiting(Duration::from_secs(30)).await;
    assert_eq!(app.withdrawal(&id_of(&w)).await["status"], "processing");
    let subs = app.sim.submissions();
    assert_eq!(subs.len(), 6);
    assert!(subs
        .iter()
        .all(|s| s.foreign_id.as_deref() == w["foreign_id"].as_str()));
    app.assert_invariants().await;
}

#[tokio::test]
async fn a_provider_that_never_recovers_parks_the_work_visibly_and_keeps_the_hold() {
    let app = spawn_app_with(|s| s.worker.max_attempts = 4).await;
    app.fund("u1", "EUR", "100.00").await;
    app.sim
        .set_default_behavior(SubmitBehavior::ServerError { status: 503 });
    let w = app.withdraw_ok(&eur_to_btc("u1", "10.00")).await;
    app.drain_waiting(Duration::from_secs(30)).await;
    assert_eq!(
        app.sim.submissions().len(),
        4,
        "retries are bounded by worker.max_attempts"
    );
    let (attempts, parked, last_error): (i32, bool, Option<String>) = sqlx::query_as(
        "SELECT attempts, parked, last_error FROM submission_jobs WHERE withdrawal_id = $1::uuid",
    )
    .bind(id_of(&w))
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!((attempts, parked), (4, true));
    assert!(last_error.unwrap().contains("503"));
    assert_eq!(app.withdrawal(&id_of(&w)).await["status"], "pending");
    assert_eq!(
        app.balance("u1", "EUR").await,
        ("90.00".into(), "10.00".into()),
        "never released on an unknown outcome"
    );
    let metrics = app.metrics_text().await;
    assert!(
        metrics
            .lines()
            .any(|l| l == "payoutd_submission_jobs_parked 1"),
        "{metrics}"
    );
    let age = metrics
        .lines()
        .find_map(|l| l.strip_prefix("payoutd_oldest_pending_withdrawal_age_seconds "))
        .unwrap()
        .parse::<f64>()
        .unwrap();
    assert!(age > 0.0);
    app.assert_invariants().await;
}

#[tokio::test]
async fn after_an_outage_the_worker_retries_due_jobs_concurrently_never_one_withdrawal_twice() {
    // Every first attempt meets a 502; CoinsPaid then answers slowly. The worker retries the
    // due jobs up to worker.max_in_flight (4) at once.
    let n = 20;
    let app = spawn_app_with(|s| {
        s.worker.enabled = true;
        s.worker.poll_interval_ms = 20;
        s.worker.max_in_flight = 4;
    })
    .await;
    app.fund("u1", "EUR", "200.00").await;
    for _ in 0..n {
        app.sim
            .push_behavior(SubmitBehavior::ServerError { status: 502 });
    }
    app.sim.set_default_behavior(SubmitBehavior::Slow {
        delay: std::time::Duration::from_millis(150),
        callbacks: vec![],
    });
    let mut ids = Vec::new();
    for _ in 0..n {
        ids.push(id_of(&app.withdraw_ok(&eur_to_btc("u1", "10.00")).await));
    }
    for id in &ids {
        let mut status = serde_json::Value::Null;
        for _ in 0..300 {
            status = app.withdrawal(id).await["status"].clone();
            if status == "processing" {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(status, "processing", "{id}");
    }
    // Each 502 was one submission, each acceptance one more: nothing submitted twice after
    // its acceptance, and never two requests for one foreign_id at once.
    assert_eq!(app.sim.submissions().len(), 2 * n);
    assert_eq!(app.sim.max_concurrent_submissions(), 1);
    // One create at a time makes at most one first attempt at a time: more than two requests
    // at once means the worker ran several; never more than the process's one bound of four,
    // which first attempts share with the worker.
    let most = app.sim.max_concurrent_requests();
    assert!((3..=4).contains(&most), "{most} requests at once");
    app.assert_invariants().await;
}

/// `worker.max_in_flight` is one bound per process on withdrawal work at CoinsPaid: first
/// attempts, the worker's attempts, the reconciler's and operators' look-ups all take the same
/// slots, counted at CoinsPaid's end.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn first_attempts_the_worker_look_ups_and_operators_share_one_bound_at_coinspaid() {
    let app = spawn_app_with(|s| {
        s.worker.max_in_flight = 3;
        s.worker.first_attempt_wait_ms = Some(0);
        with_operator(s);
    })
    .await;
    app.fund("u1", "EUR", "1000.00").await;
    // Six withdrawals whose first attempt met a 503: the worker looks them up before anything.
    for _ in 0..6 {
        app.sim
            .push_behavior(SubmitBehavior::ServerError { status: 503 });
    }
    let mut queued = Vec::new();
    for _ in 0..6 {
        queued.push(id_of(&app.withdraw_ok(&eur_to_btc("u1", "10.00")).await));
    }
    for _ in 0..200 {
        let jobs: i64 = sqlx::query_scalar("SELECT count(*) FROM submission_jobs")
            .fetch_one(&app.pool)
            .await
            .unwrap();
        if jobs == 6 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // From now on every call to CoinsPaid takes a while.
    app.sim.set_default_behavior(SubmitBehavior::Slow {
        delay: Duration::from_millis(300),
        callbacks: vec![],
    });
    app.sim.set_lookup_delay(Duration::from_millis(300));
    let creates = async {
        for _ in 0..6 {
            app.withdraw_ok(&eur_to_btc("u1", "10.00")).await;
        }
    };
    let worker = async { app.submitter.drain_concurrently().await.unwrap() };
    let reconciler = async { app.reconciler.run_once().await.unwrap() };
    let operators = async {
        let paths: Vec<String> = queued
            .iter()
            .map(|id| format!("/admin/v1/withdrawals/{id}/lookup"))
            .collect();
        let body = serde_json::json!({});
        tokio::join!(
            app.admin_post(&paths[0], &body),
            app.admin_post(&paths[1], &body),
            app.admin_post(&paths[2], &body),
        )
    };
    tokio::join!(creates, worker, reconciler, operators);
    // Let the first attempts of the last creates finish.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let most = app.sim.max_concurrent_calls();
    assert_eq!(most, 3, "{most} calls at CoinsPaid at once");
    app.assert_invariants().await;
}
