//! The events feed (`GET /v1/events`), redelivery and the test event: the feed holds exactly
//! the notified bodies, oldest first in commit order, and a reader paging it while
//! transactions commit out of order gets every event exactly once.

use std::collections::HashSet;
use std::time::Duration;

use crate::helpers::webhooks::{
    python_verify, standardwebhooks_python, start_receiver, Receiver, NOTIFY_SECRET,
};
use crate::helpers::*;
use axum::http::HeaderMap;
use payoutd::api::views::Event;
use payoutd::coinspaid::signing::SecretString;
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

/// An app notifying a receiver of its own.
async fn notifying_app() -> (TestApp, Receiver) {
    let (url, receiver) = start_receiver().await;
    let app = spawn_app_with(|s| {
        s.notify.url = Some(url.parse().unwrap());
        s.notify.secret = SecretString::new(NOTIFY_SECRET);
    })
    .await;
    (app, receiver)
}

impl TestApp {
    /// One page of the feed: (events, next_cursor).
    async fn events_page(&self, query: &str) -> (Vec<Value>, Option<String>) {
        let (status, page) = self.get_json(&format!("/v1/events{query}")).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let next = page["next_cursor"].as_str().map(str::to_owned);
        (page["data"].as_array().unwrap().clone(), next)
    }

    /// The feed from the start in pages of `limit`, until `want` events came (each listed once
    /// its transaction and every one that started before it on the server have ended, so this
    /// waits, up to 60 s), and then nothing more.
    async fn whole_feed(&self, limit: usize, want: usize) -> Vec<Value> {
        let mut after = None;
        let events = self.read_until(&mut after, limit, want).await;
        let (page, next) = match &after {
            Some(cursor) => self.events_page(&format!("?after={cursor}")).await,
            None => self.events_page("").await,
        };
        assert!(page.is_empty(), "more than {want} events: {page:?}");
        assert_eq!(next, None, "an empty page has no next_cursor");
        events
    }

    /// Pages the feed after `after` until `want` events were read, or 60 s passed: the events
    /// in order. `after` is left at the last one.
    async fn read_until(
        &self,
        after: &mut Option<String>,
        limit: usize,
        want: usize,
    ) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let mut read = Vec::new();
        while read.len() < want {
            assert!(
                tokio::time::Instant::now() < deadline,
                "only {} of {want} events came",
                read.len()
            );
            let query = match after {
                Some(cursor) => format!("?limit={limit}&after={cursor}"),
                None => format!("?limit={limit}"),
            };
            let (page, next) = self.events_page(&query).await;
            if page.is_empty() {
                assert_eq!(next, None, "an empty page has no next_cursor");
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            }
            assert!(page.len() <= limit);
            read.extend(page);
            *after = Some(next.expect("a page with events says where to go on"));
        }
        read
    }
}

/// The documented `Event` type reads the event and writes it back unchanged: no field
/// missing, none extra, each of its documented type.
fn assert_documented(event: &Value) {
    let typed: Event = serde_json::from_value(event.clone())
        .unwrap_or_else(|e| panic!("{event} is not a documented Event: {e}"));
    assert_eq!(&serde_json::to_value(&typed).unwrap(), event);
}

fn ids(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn after_a_confirm_the_feed_holds_processing_then_confirmed_as_notified() {
    let Some(python) = standardwebhooks_python() else {
        return;
    };
    let (app, receiver) = notifying_app().await;
    let w = app.processing_withdrawal("40.00").await;
    assert_eq!(
        app.post_callback(&app.callback_for(&w, "confirmed")).await,
        200
    );
    assert_eq!(app.notifier.deliver_once().await.unwrap(), 2);

    let events = app.whole_feed(50, 2).await;
    let statuses: Vec<(&str, &str)> = events
        .iter()
        .map(|e| {
            assert_eq!(e["data"]["withdrawal_id"], w["id"]);
            (
                e["data"]["previous_status"].as_str().unwrap(),
                e["data"]["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        [("pending", "processing"), ("processing", "confirmed")],
        "oldest first"
    );
    events.iter().for_each(assert_documented);

    // Byte for byte the bodies the receiver got, under their webhook-ids, and they verify.
    let received = receiver.received.lock().unwrap().clone();
    assert_eq!(received.len(), 2);
    for event in &events {
        let (_, body) = received
            .iter()
            .find(|(h, _)| h["webhook-id"] == event["id"].as_str().unwrap())
            .expect("the event was notified");
        assert_eq!(serde_json::to_vec(event).unwrap(), body.to_vec());
    }
    let cases: Vec<(&str, &HeaderMap, &[u8])> = received
        .iter()
        .map(|(h, b)| (NOTIFY_SECRET, h, &b[..]))
        .collect();
    assert_eq!(python_verify(&python, &cases).await, ["ok", "ok"]);

    // Paged one at a time: the same events in the same order, then nothing.
    assert_eq!(ids(&app.whole_feed(1, 2).await), ids(&events));
}

#[tokio::test]
async fn a_redelivery_arrives_again_with_the_same_webhook_id_and_body() {
    let Some(python) = standardwebhooks_python() else {
        return;
    };
    let (app, receiver) = notifying_app().await;
    let w = app.processing_withdrawal("40.00").await;
    assert_eq!(app.notifier.deliver_once().await.unwrap(), 1);
    assert_eq!(app.notifier.deliver_once().await.unwrap(), 0);
    let events = app.whole_feed(50, 1).await;
    let event_id = events[0]["id"].as_str().unwrap();
    assert_eq!(events[0]["data"]["withdrawal_id"], w["id"]);

    let (status, _) = app
        .post_empty(&format!("/v1/events/{event_id}/redeliver"))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(app.notifier.deliver_once().await.unwrap(), 1, "sent again");
    assert_eq!(app.notifier.deliver_once().await.unwrap(), 0, "once");

    let received = receiver.received.lock().unwrap().clone();
    assert_eq!(received.len(), 2);
    let (first, again) = (&received[0], &received[1]);
    assert_eq!(first.0["webhook-id"], event_id);
    assert_eq!(again.0["webhook-id"], event_id, "the same webhook-id");
    assert_eq!(again.1, first.1, "the same body");
    assert_eq!(again.1.to_vec(), serde_json::to_vec(&events[0]).unwrap());
    assert_eq!(
        python_verify(&python, &[(NOTIFY_SECRET, &again.0, &again.1[..])]).await,
        ["ok"],
        "signed afresh"
    );
    // Redelivered, still listed once.
    assert_eq!(ids(&app.whole_feed(50, 1).await), [event_id]);

    for unknown in [Uuid::now_v7().to_string(), "not-an-event".to_owned()] {
        let (status, problem) = app
            .post_empty(&format!("/v1/events/{unknown}/redeliver"))
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{unknown}");
        assert_eq!(problem["code"], "not_found");
    }
}

#[tokio::test]
async fn the_test_event_is_delivered_and_listed() {
    let Some(python) = standardwebhooks_python() else {
        return;
    };
    let (app, receiver) = notifying_app().await;
    let (status, sent) = app.post_empty("/v1/webhooks/test").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{sent}");
    let id = sent["id"].as_str().unwrap().to_owned();
    assert_eq!(app.notifier.deliver_once().await.unwrap(), 1);

    let received = receiver.received.lock().unwrap().clone();
    assert_eq!(received.len(), 1);
    let (headers, body) = &received[0];
    assert_eq!(headers["webhook-id"], id.as_str());
    assert_eq!(
        python_verify(&python, &[(NOTIFY_SECRET, headers, &body[..])]).await,
        ["ok"]
    );
    let event: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(event["type"], "webhook.test");
    assert_eq!(event["id"], id.as_str());
    assert_eq!(event["data"], json!({}));
    assert_documented(&event);

    let feed = app.whole_feed(50, 1).await;
    assert_eq!(feed, std::slice::from_ref(&event), "listed, the same body");
    assert_eq!(serde_json::to_vec(&feed[0]).unwrap(), body.to_vec());
}

#[tokio::test]
async fn without_a_notification_url_the_feed_is_kept_and_nothing_can_be_sent() {
    let app = spawn_app().await;
    let w = app.processing_withdrawal("40.00").await;
    assert_eq!(
        app.post_callback(&app.callback_for(&w, "confirmed")).await,
        200
    );
    let feed = app.whole_feed(50, 2).await;
    let statuses: Vec<&str> = feed
        .iter()
        .map(|e| e["data"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["processing", "confirmed"]);
    let id = feed[0]["id"].as_str().unwrap();
    for path in [
        format!("/v1/events/{id}/redeliver"),
        "/v1/webhooks/test".into(),
    ] {
        let (status, problem) = app.post_empty(&path).await;
        assert_eq!(status, StatusCode::CONFLICT, "{path}");
        assert_eq!(problem["code"], "notify_url_not_set", "{path}");
    }
    assert_eq!(
        app.whole_feed(50, 2).await,
        feed,
        "no test event was written"
    );
}

#[tokio::test]
async fn a_bad_limit_cursor_or_parameter_is_refused_by_name() {
    let app = spawn_app().await;
    for (query, named) in [
        ("?limit=0", "limit"),
        ("?limit=201", "limit"),
        ("?limit=x", "limit"),
        ("?after=not-a-cursor", "after"),
        ("?after=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "after"),
        ("?cursor=x", "cursor"),
        ("?limit=5&since=2026-01-01", "since"),
    ] {
        let (status, problem) = app.get_json(&format!("/v1/events{query}")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}");
        assert_eq!(problem["code"], "validation_failed", "{query}");
        assert!(
            problem["detail"].as_str().unwrap().starts_with(named),
            "{query}: {problem}"
        );
    }
}

/// A `webhook.test`-shaped event written by hand into `conn`'s transaction, as the outbox's
/// writers do: its id made now, its transaction id whatever the transaction has.
async fn write_event(conn: &mut sqlx::PgConnection, id: Uuid) {
    sqlx::query("INSERT INTO notification_outbox (id, payload) VALUES ($1, $2)")
        .bind(id)
        .bind(json!({"id": id, "type": "webhook.test", "created_at": "2026-12-06T00:00:00.000Z", "data": {}}))
        .execute(conn)
        .await
        .unwrap();
}

#[tokio::test]
async fn an_event_committed_late_below_a_later_one_is_held_back_not_skipped() {
    let app = spawn_app().await;
    // `early` has the lower id and the lower transaction id, but commits last: a reader paging
    // by id would pass it once `late` is listed.
    let (early, late) = (Uuid::now_v7(), Uuid::now_v7());
    let mut open = app.pool.begin().await.unwrap();
    write_event(&mut open, early).await;
    let mut other = app.pool.begin().await.unwrap();
    write_event(&mut other, late).await;
    other.commit().await.unwrap();

    let mut after = None;
    for _ in 0..3 {
        let (page, next) = app.events_page("").await;
        assert!(
            page.is_empty() && next.is_none(),
            "nothing is listed while a transaction below it runs: {page:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    open.commit().await.unwrap();
    assert_eq!(
        ids(&app.read_until(&mut after, 3, 2).await),
        [early.to_string(), late.to_string()]
    );
}

#[tokio::test]
async fn a_reader_paging_while_writers_commit_out_of_order_gets_every_event_once() {
    let (app, _receiver) = notifying_app().await;
    let app = std::sync::Arc::new(app);
    app.fund("u1", "EUR", "1000.00").await;
    const WRITERS: usize = 6;
    const ROUNDS: usize = 12;
    let done = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        let (app, done) = (app.clone(), done.clone());
        writers.push(tokio::spawn(async move {
            let mut committed = Vec::new();
            let mut rolled_back = Vec::new();
            for round in 0..ROUNDS {
                match (writer + round) % 4 {
                    // Through the API: a test event.
                    0 => {
                        let (status, sent) = app.post_empty("/v1/webhooks/test").await;
                        assert_eq!(status, StatusCode::ACCEPTED);
                        committed.push(sent["id"].as_str().unwrap().to_owned());
                    }
                    // Ids made, then a wait before the write (case 1: transactions that
                    // start meanwhile have later ids but lower transaction ids) or after it,
                    // the transaction held open (case 2: later ones commit first).
                    case @ (1 | 2) => {
                        let ids: Vec<Uuid> = (0..1 + round % 3).map(|_| Uuid::now_v7()).collect();
                        let hold = 0.005 * ((writer * 7 + round * 3) % 11) as f64;
                        let sleep = format!("SELECT pg_sleep({hold})");
                        if case == 1 {
                            sqlx::query(&sleep).execute(&app.pool).await.unwrap();
                        }
                        let mut tx = app.pool.begin().await.unwrap();
                        for id in &ids {
                            write_event(&mut tx, *id).await;
                        }
                        if case == 2 {
                            sqlx::query(&sleep).execute(&mut *tx).await.unwrap();
                        }
                        if round % 5 == 4 {
                            tx.rollback().await.unwrap();
                            rolled_back.extend(ids.iter().map(Uuid::to_string));
                        } else {
                            tx.commit().await.unwrap();
                            committed.extend(ids.iter().map(Uuid::to_string));
                        }
                    }
                    // A real status change: its notification written with it.
                    _ => {
                        app.withdraw_ok(&eur_to_btc("u1", "1.00")).await;
                    }
                }
            }
            done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            (committed, rolled_back)
        }));
    }

    // The reader pages while the writers run, small pages, from the start.
    let mut read: Vec<String> = Vec::new();
    let mut after: Option<String> = None;
    while done.load(std::sync::atomic::Ordering::SeqCst) < WRITERS {
        let query = match &after {
            Some(cursor) => format!("?limit={}&after={cursor}", 1 + read.len() % 4),
            None => "?limit=2".to_owned(),
        };
        let (page, next) = app.events_page(&query).await;
        if page.is_empty() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        } else {
            read.extend(ids(&page));
            after = next;
        }
    }
    let (mut committed, mut rolled_back) = (Vec::new(), Vec::new());
    for writer in writers {
        let (c, r) = writer.await.unwrap();
        committed.extend(c);
        rolled_back.extend(r);
    }
    let stored: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM notification_outbox")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    let rest = stored.len() - read.len().min(stored.len());
    read.extend(ids(&app.read_until(&mut after, 3, rest).await));

    let distinct: HashSet<&String> = read.iter().collect();
    assert_eq!(distinct.len(), read.len(), "an event was read twice");
    let stored: HashSet<String> = stored.iter().map(Uuid::to_string).collect();
    assert_eq!(
        distinct,
        stored.iter().collect(),
        "the reader got every event"
    );
    assert!(committed.iter().all(|id| stored.contains(id)));
    assert!(!rolled_back.is_empty());
    assert!(rolled_back.iter().all(|id| !distinct.contains(id)));
    // Status changes were among them.
    assert!(stored.len() > committed.len());
    let (page, _) = app.events_page(&format!("?after={}", after.unwrap())).await;
    assert!(page.is_empty(), "nothing after the last event");
}

#[tokio::test]
async fn a_redelivery_asked_for_during_a_delivery_is_still_sent() {
    // A receiver that holds its first request until told to answer.
    let release = std::sync::Arc::new(tokio::sync::Notify::new());
    let arrived = std::sync::Arc::new(tokio::sync::Notify::new());
    let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Vec<u8>>::new()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let handler = {
        let (release, arrived, bodies) = (release.clone(), arrived.clone(), bodies.clone());
        move |body: axum::body::Bytes| async move {
            let first = {
                let mut bodies = bodies.lock().unwrap();
                bodies.push(body.to_vec());
                bodies.len() == 1
            };
            if first {
                arrived.notify_one();
                release.notified().await;
            }
            StatusCode::NO_CONTENT
        }
    };
    let router = axum::Router::new().route("/hook", axum::routing::post(handler));
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let app = spawn_app_with(|s| {
        s.notify.url = Some(url.parse().unwrap());
        s.notify.secret = SecretString::new(NOTIFY_SECRET);
    })
    .await;
    let (status, sent) = app.post_empty("/v1/webhooks/test").await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let id = sent["id"].as_str().unwrap().to_owned();

    let notifier = app.notifier.clone();
    let first = tokio::spawn(async move { notifier.deliver_once().await.unwrap() });
    arrived.notified().await;
    // Asked for while the first delivery is still being answered.
    let (status, _) = app.post_empty(&format!("/v1/events/{id}/redeliver")).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    release.notify_one();
    assert_eq!(first.await.unwrap(), 1);
    assert_eq!(
        app.notifier.deliver_once().await.unwrap(),
        1,
        "the first delivery's success does not stand for the redelivery"
    );
    assert_eq!(app.notifier.deliver_once().await.unwrap(), 0);
    let bodies = bodies.lock().unwrap().clone();
    assert_eq!(bodies.len(), 2);
    assert_eq!(bodies[0], bodies[1]);
}
