//! Retention deletes old callbacks, delivered notifications and idempotency keys, and never a
//! ledger entry or a withdrawal. The clock is "accelerated" by ageing rows in the database;
//! ledger entries cannot be aged (or changed, or deleted): the database refuses it.

use crate::helpers::*;
use payoutd::config::Settings;
use payoutd::db::retention::{Deleted, Retention};

async fn count(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&app.pool).await.unwrap()
}

#[tokio::test]
async fn old_records_go_and_money_history_stays() {
    let app = spawn_app().await;
    let old = app.processing_withdrawal("10.00").await;
    app.post_callback(&app.callback_for(&old, "confirmed"))
        .await;
    let old_id = old["id"].as_str().unwrap();
    // Everything about the first withdrawal is made old; one of its notifications delivered.
    for sql in [
        "UPDATE callbacks SET received_at = now() - interval '91 days'",
        "UPDATE notification_outbox SET created_at = now() - interval '31 days'",
        "UPDATE idempotency_keys SET created_at = now() - interval '73 hours'",
        "UPDATE withdrawals SET created_at = now() - interval '400 days'",
    ] {
        sqlx::query(sql).execute(&app.pool).await.unwrap();
    }
    sqlx::query("UPDATE notification_outbox SET delivered_at = now() WHERE id = (SELECT id FROM notification_outbox ORDER BY id LIMIT 1)")
        .execute(&app.pool)
        .await
        .unwrap();
    let notifications_before = count(&app, "SELECT count(*) FROM notification_outbox").await;
    assert!(notifications_before >= 2);
    // A recent one keeps everything.
    let recent = app.processing_withdrawal("20.00").await;
    app.post_callback(&app.callback_for(&recent, "confirmed"))
        .await;
    let ledger = count(&app, "SELECT count(*) FROM ledger_entries").await;
    let recent_notifications = count(
        &app,
        "SELECT count(*) FROM notification_outbox WHERE created_at > now() - interval '1 day'",
    )
    .await;

    let retention = Retention::new(app.pool.clone(), Settings::defaults().retention, true);
    let deleted = retention.purge_once().await.unwrap();
    assert_eq!(
        deleted,
        Deleted {
            callbacks: 1,
            notifications: 1,
            idempotency_keys: 1,
        }
    );
    assert_eq!(count(&app, "SELECT count(*) FROM callbacks").await, 1);
    assert_eq!(
        count(&app, "SELECT count(*) FROM notification_outbox").await,
        notifications_before - 1 + recent_notifications,
        "an old notification still waiting for delivery is kept"
    );
    assert_eq!(
        count(&app, "SELECT count(*) FROM idempotency_keys").await,
        1
    );
    assert_eq!(count(&app, "SELECT count(*) FROM withdrawals").await, 2);
    assert_eq!(
        count(&app, "SELECT count(*) FROM ledger_entries").await,
        ledger
    );
    assert_eq!(app.withdrawal(old_id).await["status"], "confirmed");
    app.assert_invariants().await;
    // A second pass finds nothing more.
    assert_eq!(retention.purge_once().await.unwrap(), Deleted::default());

    // With no notification URL nothing would ever deliver them: old undelivered ones go too.
    let no_url = Retention::new(app.pool.clone(), Settings::defaults().retention, false);
    assert_eq!(
        no_url.purge_once().await.unwrap().notifications,
        (notifications_before - 1) as u64
    );
    assert_eq!(
        count(&app, "SELECT count(*) FROM notification_outbox").await,
        recent_notifications
    );
    app.assert_invariants().await;
}

#[tokio::test]
async fn ledger_entries_cannot_be_changed_or_deleted() {
    let app = spawn_app().await;
    let w = app.processing_withdrawal("10.00").await;
    app.post_callback(&app.callback_for(&w, "confirmed")).await;
    let entries = "SELECT string_agg(id::text || kind || amount::text || created_at::text, ',' ORDER BY id) FROM ledger_entries";
    let before: String = sqlx::query_scalar(entries)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(
        app.ledger_kinds(w["id"].as_str().unwrap()).await,
        ["hold", "debit"]
    );
    for statement in [
        "UPDATE ledger_entries SET amount = amount + 1",
        "UPDATE ledger_entries SET created_at = now() - interval '400 days'",
        "DELETE FROM ledger_entries WHERE kind = 'debit'",
        "DELETE FROM ledger_entries",
        "TRUNCATE ledger_entries",
    ] {
        let err = sqlx::query(statement)
            .execute(&app.pool)
            .await
            .expect_err(statement);
        let db = err.as_database_error().expect(statement);
        assert_eq!(db.code().as_deref(), Some("42501"), "{statement}: {db}");
        assert!(
            db.message().contains("ledger_entries is append-only"),
            "{statement}: {db}"
        );
    }
    let after: String = sqlx::query_scalar(entries)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(after, before);
    // Appending still works: the next withdrawal holds and settles.
    let next = app.processing_withdrawal("5.00").await;
    app.post_callback(&app.callback_for(&next, "confirmed"))
        .await;
    assert_eq!(
        app.ledger_kinds(next["id"].as_str().unwrap()).await,
        ["hold", "debit"]
    );
    app.assert_invariants().await;
}
