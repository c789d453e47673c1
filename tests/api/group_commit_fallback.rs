//! Group commit: a batch that fails as a whole is rolled back and each of its
//! requests runs alone, with the answer it would have got alone. In a process of its own: it
//! reads the process-wide batch metrics.

use std::sync::Arc;

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_batch_that_fails_as_a_whole_falls_back_to_single_requests() {
    // The batch counters are process-wide: another test's batches would add to them.
    if !in_own_process(
        module_path!(),
        "a_batch_that_fails_as_a_whole_falls_back_to_single_requests",
    )
    .await
    {
        return;
    }
    let app = Arc::new(spawn_app_with(one_batch_runner).await);
    for i in 0..5 {
        app.fund(&format!("u{i}"), "EUR", "100.00").await;
    }
    // Any statement storing more than one withdrawal fails, as a batch would on a deadlock
    // or a lost connection: every multi-request batch rolls back, single requests pass.
    sqlx::raw_sql(
        "CREATE FUNCTION refuse_many() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
             IF (SELECT count(*) FROM stored) > 1 THEN
                 RAISE EXCEPTION 'test: more than one withdrawal in one statement';
             END IF;
             RETURN NULL;
         END $$;
         CREATE TRIGGER refuse_many AFTER INSERT ON withdrawals
             REFERENCING NEW TABLE AS stored FOR EACH STATEMENT EXECUTE FUNCTION refuse_many();",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let answers = concurrently(60, |i| {
        let app = app.clone();
        async move {
            let response = app
                .withdraw(
                    &format!("k-{i}"),
                    &eur_to_btc(&format!("u{}", i % 5), "10.00"),
                )
                .await;
            let status = response.status();
            let body: Value = response.json().await.unwrap();
            (status, body["code"].as_str().unwrap_or("").to_owned())
        }
    })
    .await;
    let created = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .count();
    let refused = answers
        .iter()
        .filter(|(_, c)| c == "insufficient_funds")
        .count();
    assert_eq!((created, refused), (50, 10), "{answers:?}");
    for i in 0..5 {
        assert_eq!(
            app.balance(&format!("u{i}"), "EUR").await,
            ("0.00".into(), "100.00".into())
        );
    }
    let (requests, batches, failed) = app.batch_counts("create").await;
    assert!(requests > batches, "batches of many were tried");
    assert!(failed > 0.0, "and failed as a whole");
    app.assert_invariants().await;
}
