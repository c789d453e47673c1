//! PostgreSQL restarted under load: requests fail cleanly with 503 while it is away, the
//! service recovers by itself, and nothing is half-written.
//!
//! The test stops and starts a PostgreSQL cluster of its own (`helpers::pg_cluster`), never
//! the machine's server. Where no server binaries are installed it says so and passes,
//! except under CI, where it fails.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::helpers::pg_cluster::PgCluster;
use crate::helpers::*;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_restart_mid_load_fails_cleanly_and_recovers() {
    let Some(cluster) = PgCluster::init(&[]).await else {
        assert!(
            std::env::var("CI").is_err(),
            "CI must have PostgreSQL's server binaries (/usr/lib/postgresql/*/bin)"
        );
        eprintln!("SKIPPED: no PostgreSQL server binaries for a cluster of the test's own");
        return;
    };
    let app = Arc::new(
        spawn_cluster_on(&cluster.url(), 1, |s| {
            s.database.acquire_timeout_secs = 1;
            s.server.request_timeout_secs = 10;
        })
        .await
        .remove(0),
    );
    app.fund("u1", "EUR", "100000.00").await;

    // Load: credits with unique references and withdrawals, until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let answers: Arc<Mutex<Vec<(String, u16, Value)>>> = Arc::default();
    let mut load = Vec::new();
    for worker in 0..4 {
        let (app, stop, answers) = (app.clone(), stop.clone(), answers.clone());
        load.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                n += 1;
                let reference = format!("load-{worker}-{n}");
                let (status, body) = if n % 2 == 0 {
                    let r = app.credit("u2", "EUR", "1.00", &reference).await;
                    (
                        r.status().as_u16(),
                        r.json::<Value>().await.unwrap_or(Value::Null),
                    )
                } else {
                    let r = app.withdraw(&reference, &eur_to_btc("u1", "1.00")).await;
                    (
                        r.status().as_u16(),
                        r.json::<Value>().await.unwrap_or(Value::Null),
                    )
                };
                answers.lock().unwrap().push((reference, status, body));
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Down for a second under load (a bare restart can be fast enough to go unnoticed).
    cluster.stop().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    cluster.start().await;
    // Recovery: keep the load on until requests succeed again by themselves.
    let recovered_after = answers.lock().unwrap().len();
    let mut recovered = false;
    for _ in 0..200 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let seen = answers.lock().unwrap();
        if seen[recovered_after..]
            .iter()
            .filter(|(_, s, _)| *s == 201)
            .count()
            >= 20
        {
            recovered = true;
            break;
        }
    }
    stop.store(true, Ordering::SeqCst);
    for task in load {
        task.await.unwrap();
    }
    assert!(
        recovered,
        "the service did not recover after PostgreSQL came back"
    );

    let answers = answers.lock().unwrap().clone();
    let failed: Vec<&(String, u16, Value)> = answers.iter().filter(|(_, s, _)| *s != 201).collect();
    assert!(
        !failed.is_empty(),
        "the restart was not noticed by any request"
    );
    for (reference, status, body) in &failed {
        assert_eq!(
            *status, 503,
            "{reference}: a database outage is a 503, got {status}: {body}"
        );
        assert_eq!(body["code"], "unavailable");
    }
    // Every acknowledged request is there exactly once; the unanswered ones are whole or absent.
    for (reference, status, body) in &answers {
        let credited: i64 =
            sqlx::query_scalar("SELECT count(*) FROM ledger_entries WHERE reference = $1")
                .bind(reference)
                .fetch_one(&app.pool)
                .await
                .unwrap();
        let withdrawn: i64 =
            sqlx::query_scalar("SELECT count(*) FROM idempotency_keys WHERE key = $1")
                .bind(reference)
                .fetch_one(&app.pool)
                .await
                .unwrap();
        if *status == 201 {
            assert_eq!(
                credited + withdrawn,
                1,
                "{reference} acknowledged but not stored once: {body}"
            );
        } else {
            assert!(credited + withdrawn <= 1);
        }
    }
    let ready = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    app.assert_invariants().await;
}
