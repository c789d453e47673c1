//! Group commit of creates: concurrent `POST /v1/withdrawals` share transactions,
//! and each request still gets exactly the answer it would have got alone. Real PostgreSQL,
//! real HTTP, many tasks at once; the batch runner is narrowed to one so that requests pile
//! up behind a running batch and batches of many form. (The fallback of a failing batch is in
//! `group_commit_fallback`.)

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Success,
    Poor,
    Limited,
    Shared,
    Review,
    Replay,
    KeyReused,
    SameNewKey,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_batch_mixing_refusals_replays_and_successes_answers_each_on_its_own() {
    // The batch counters below are process-wide; no other test may batch meanwhile.
    if !in_own_process(
        module_path!(),
        "a_batch_mixing_refusals_replays_and_successes_answers_each_on_its_own",
    )
    .await
    {
        return;
    }
    let app = Arc::new(
        spawn_app_with(|s| {
            one_batch_runner(s);
            s.approval.thresholds.insert("EUR".into(), dec("1000.00"));
        })
        .await,
    );
    for i in 0..10 {
        app.fund(&format!("rich-{i}"), "EUR", "1000.00").await;
    }
    app.fund("poor", "EUR", "5.00").await;
    app.fund("limited", "EUR", "1000.00").await;
    app.fund("shared", "EUR", "25.00").await;
    app.fund("vip", "EUR", "10000.00").await;
    payoutd::withdrawals::create::limits::set_user_limits(
        &app.pool,
        "limited",
        "EUR",
        None,
        Some(dec("300.00")),
    )
    .await
    .unwrap();
    // Committed before the storm: its key is replayed (same body) and reused (other body).
    let first = app
        .withdraw("replay-me", &eur_to_btc("rich-0", "10.00"))
        .await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();

    let mut plan: Vec<(Kind, String, Value)> = Vec::new();
    for i in 0..40 {
        plan.push((
            Kind::Success,
            format!("ok-{i}"),
            eur_to_btc(&format!("rich-{}", i % 10), "10.00"),
        ));
    }
    for i in 0..10 {
        plan.push((Kind::Poor, format!("poor-{i}"), eur_to_btc("poor", "10.00")));
        plan.push((
            Kind::Limited,
            format!("limited-{i}"),
            eur_to_btc("limited", "100.00"),
        ));
        plan.push((
            Kind::Replay,
            "replay-me".into(),
            eur_to_btc("rich-0", "10.00"),
        ));
        plan.push((
            Kind::SameNewKey,
            "new-key-sent-ten-times".into(),
            eur_to_btc("rich-9", "10.00"),
        ));
    }
    for i in 0..3 {
        plan.push((
            Kind::Shared,
            format!("shared-{i}"),
            eur_to_btc("shared", "10.00"),
        ));
    }
    for i in 0..5 {
        plan.push((
            Kind::Review,
            format!("vip-{i}"),
            eur_to_btc("vip", "1000.00"),
        ));
        plan.push((
            Kind::KeyReused,
            "replay-me".into(),
            eur_to_btc("rich-0", "11.00"),
        ));
    }
    let plan = Arc::new(plan);
    let answers = concurrently(plan.len(), |i| {
        let (app, plan) = (app.clone(), plan.clone());
        async move {
            let (kind, key, body) = &plan[i];
            let response = app.withdraw(key, body).await;
            let status = response.status();
            let body: Value = response.json().await.unwrap();
            (*kind, status, body)
        }
    })
    .await;

    let mut by_kind: HashMap<Kind, Vec<(StatusCode, Value)>> = HashMap::new();
    for (kind, status, body) in answers {
        by_kind.entry(kind).or_default().push((status, body));
    }
    let codes = |kind: Kind| -> Vec<String> {
        let mut codes: Vec<String> = by_kind[&kind]
            .iter()
            .map(|(status, body)| {
                body["code"]
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| format!("{} {}", status.as_u16(), body["status"]))
            })
            .collect();
        codes.sort();
        codes
    };
    assert!(
        by_kind[&Kind::Success]
            .iter()
            .all(|(s, b)| *s == StatusCode::CREATED && b["status"] == "processing"),
        "{:?}",
        codes(Kind::Success)
    );
    assert_eq!(codes(Kind::Poor), vec!["insufficient_funds"; 10]);
    let limited = codes(Kind::Limited);
    assert_eq!(
        limited.iter().filter(|c| *c == "limit_exceeded").count(),
        7,
        "{limited:?}"
    );
    assert_eq!(
        limited
            .iter()
            .filter(|c| *c == "201 \"processing\"")
            .count(),
        3,
        "{limited:?}"
    );
    let shared = codes(Kind::Shared);
    assert_eq!(
        shared,
        vec![
            "201 \"processing\"",
            "201 \"processing\"",
            "insufficient_funds"
        ]
    );
    assert_eq!(codes(Kind::Review), vec!["201 \"awaiting_approval\""; 5]);
    assert!(by_kind[&Kind::Replay]
        .iter()
        .all(|(s, b)| *s == StatusCode::OK && b["id"] == first["id"]));
    assert_eq!(codes(Kind::KeyReused), vec!["idempotency_key_reused"; 5]);
    let same_key = &by_kind[&Kind::SameNewKey];
    let ids: HashSet<&str> = same_key
        .iter()
        .map(|(_, b)| b["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 1, "one withdrawal for one key");
    assert_eq!(
        same_key
            .iter()
            .filter(|(s, _)| *s == StatusCode::CREATED)
            .count(),
        1
    );
    assert_eq!(
        same_key
            .iter()
            .filter(|(s, _)| *s == StatusCode::OK)
            .count(),
        9
    );

    // The money: every accepted request held once, every refused one left no trace.
    assert_eq!(
        app.balance("rich-0", "EUR").await,
        ("950.00".into(), "50.00".into())
    );
    assert_eq!(
        app.balance("rich-9", "EUR").await,
        ("950.00".into(), "50.00".into())
    );
    assert_eq!(
        app.balance("poor", "EUR").await,
        ("5.00".into(), "0.00".into())
    );
    assert_eq!(
        app.balance("limited", "EUR").await,
        ("700.00".into(), "300.00".into())
    );
    assert_eq!(
        app.balance("shared", "EUR").await,
        ("5.00".into(), "20.00".into())
    );
    assert_eq!(
        app.balance("vip", "EUR").await,
        ("5000.00".into(), "5000.00".into())
    );
    let (keys, withdrawals): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM idempotency_keys), (SELECT count(*) FROM withdrawals)",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(keys, withdrawals, "a refused request keeps no key");
    assert_eq!(withdrawals, 1 + 40 + 3 + 2 + 5 + 1);
    let audits: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action = 'hold_for_approval'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(audits, 5);
    app.assert_invariants().await;

    let (requests, batches, failed) = app.batch_counts("create").await;
    assert!(
        requests > batches,
        "requests shared batches: {requests} requests in {batches} batches"
    );
    // Each answer came from its batch, not from the fallback (which would hide a wrong verdict).
    assert_eq!(failed, 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_batching_on_one_database_never_overdraw_and_create_a_key_once() {
    let apps: Vec<Arc<TestApp>> = spawn_cluster(2, one_batch_runner)
        .await
        .into_iter()
        .map(Arc::new)
        .collect();
    apps[0].fund("u1", "EUR", "100.00").await;
    apps[0].fund("u2", "EUR", "100.00").await;
    let apps = Arc::new(apps);
    let answers = concurrently(120, |i| {
        let apps = apps.clone();
        async move {
            let app = &apps[i % 2];
            let (key, user) = match i % 3 {
                0 => (format!("u1-{i}"), "u1"),
                1 => (format!("u2-{i}"), "u2"),
                // The same key through both replicas at once.
                _ => ("one-key".to_owned(), "u2"),
            };
            let response = app.withdraw(&key, &eur_to_btc(user, "10.00")).await;
            let status = response.status();
            let body: Value = response.json().await.unwrap();
            (i % 3, status, body)
        }
    })
    .await;
    let created = |group: usize| {
        answers
            .iter()
            .filter(|(g, s, _)| *g == group && *s == StatusCode::CREATED)
            .count()
    };
    let refused = |group: usize| {
        answers
            .iter()
            .filter(|(g, _, b)| *g == group && b["code"] == "insufficient_funds")
            .count()
    };
    assert_eq!((created(0), refused(0)), (10, 30), "u1 had 100 for 40 x 10");
    let one_key: HashSet<&str> = answers
        .iter()
        .filter(|(g, s, _)| *g == 2 && s.is_success())
        .map(|(_, _, b)| b["id"].as_str().unwrap())
        .collect();
    assert!(
        one_key.len() <= 1,
        "one withdrawal for one key: {one_key:?}"
    );
    // u2's 100 went to its own keys and to "one-key", which held at most once.
    let u2_created = created(1) + usize::from(one_key.len() == 1);
    assert_eq!(u2_created, 10, "{answers:?}");
    assert_eq!(
        apps[1].balance("u1", "EUR").await,
        ("0.00".into(), "100.00".into())
    );
    assert_eq!(
        apps[1].balance("u2", "EUR").await,
        ("0.00".into(), "100.00".into())
    );
    apps[0].assert_invariants().await;
}

#[tokio::test]
async fn a_batch_transaction_gets_its_plan_settings_with_its_begin_and_only_for_itself() {
    let app = spawn_app().await;
    // One connection, so the transaction after the batch runs on the same session.
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect_with((*app.pool.connect_options()).clone())
        .await
        .unwrap();
    async fn settings(conn: &mut sqlx::PgConnection) -> Result<(String, String), sqlx::Error> {
        sqlx::query_as("SELECT current_setting('plan_cache_mode'), current_setting('jit')")
            .fetch_one(conn)
            .await
    }
    let before = settings(&mut pool.acquire().await.unwrap()).await.unwrap();
    let mut tx = payoutd::db::begin_batch_transaction(&pool).await.unwrap();
    assert_eq!(
        settings(&mut tx).await.unwrap(),
        ("force_generic_plan".to_owned(), "off".to_owned())
    );
    tx.commit().await.unwrap();
    let after = settings(&mut pool.acquire().await.unwrap()).await.unwrap();
    assert_eq!(
        after, before,
        "SET LOCAL: the session keeps its own settings"
    );
    assert_ne!(before.0, "force_generic_plan");
    pool.close().await;
}
