//! `GET /v1/withdrawals` filters, each choosing among several withdrawals and combined with the
//! others, and the query strings of every endpoint that takes one: an unknown or repeated
//! parameter is refused by name, and an endpoint that takes none refuses any.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::Value;

impl TestApp {
    /// The ids `GET /v1/withdrawals?{query}` lists (one page), newest first.
    async fn listed(&self, query: &str) -> Vec<String> {
        let (status, page) = self.get_json(&format!("/v1/withdrawals?{query}")).await;
        assert_eq!(status, StatusCode::OK, "{query}: {page}");
        page["data"].as_array().unwrap().iter().map(id_of).collect()
    }

    /// A withdrawal of `user` under `key`, with `reference` if given; CoinsPaid accepts it.
    async fn requested(&self, user: &str, key: &str, reference: Option<&str>) -> Value {
        let mut body = eur_to_btc(user, "10.00");
        if let Some(reference) = reference {
            body["reference"] = reference.into();
        }
        let r = self.withdraw(key, &body).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let w: Value = r.json().await.unwrap();
        assert_eq!(w["status"], "processing");
        w
    }
}

fn encoded(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[tokio::test]
async fn each_filter_chooses_among_several_withdrawals_and_they_combine() {
    let app = spawn_app().await;
    app.fund("u1", "EUR", "100.00").await;
    app.fund("u2", "EUR", "100.00").await;
    let w1 = app.requested("u1", "key-1", Some("order-1")).await;
    let w2 = app.requested("u1", "key-2", Some("order-2")).await;
    let w3 = app.requested("u2", "key-3", None).await;
    let ids = [id_of(&w1), id_of(&w2), id_of(&w3)];
    let [w1_id, w2_id, w3_id] = [ids[0].as_str(), ids[1].as_str(), ids[2].as_str()];
    // Everything so far was committed before `since`; only w1 changes after it.
    let since: chrono::DateTime<chrono::Utc> = sqlx::query_scalar("SELECT clock_timestamp()")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(
        app.post_callback(&app.callback_for(&w1, "confirmed")).await,
        StatusCode::OK
    );

    assert_eq!(app.listed("").await, [w3_id, w2_id, w1_id]);
    assert_eq!(app.listed("user_id=u1").await, [w2_id, w1_id]);
    assert_eq!(app.listed("user_id=u2").await, [w3_id]);
    assert_eq!(app.listed("status=confirmed").await, [w1_id]);
    assert_eq!(app.listed("status=processing").await, [w3_id, w2_id]);
    assert_eq!(
        app.listed(&format!("foreign_id={}", fid_of(&w2))).await,
        [w2_id]
    );
    assert!(app.listed("foreign_id=pd-unknown").await.is_empty());
    assert_eq!(app.listed("reference=order-1").await, [w1_id]);
    assert_eq!(app.listed("reference=order-2&user_id=u1").await, [w2_id]);
    assert!(app.listed("reference=order-2&user_id=u2").await.is_empty());
    assert_eq!(app.listed("idempotency_key=key-3").await, [w3_id]);
    assert_eq!(
        app.listed("idempotency_key=key-2&status=processing").await,
        [w2_id]
    );
    assert!(app
        .listed("idempotency_key=key-3&status=confirmed")
        .await
        .is_empty());
    let z = since.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    assert_eq!(app.listed(&format!("updated_after={z}")).await, [w1_id]);
    // The same instant with an offset (its `+` sent as %2B).
    let offset = since
        .with_timezone(&chrono::FixedOffset::east_opt(2 * 3600).unwrap())
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, false);
    assert_eq!(
        app.listed(&format!("updated_after={}", encoded(&offset)))
            .await,
        [w1_id]
    );
    assert!(app
        .listed(&format!("updated_after={z}&user_id=u2"))
        .await
        .is_empty());
    assert_eq!(
        app.listed(&format!("updated_after={z}&status=confirmed&user_id=u1&reference=order-1&foreign_id={}&idempotency_key=key-1", fid_of(&w1)))
            .await,
        [w1_id],
        "all of them at once"
    );

    // Keyset pages are unchanged under a filter.
    let (_, first) = app.get_json("/v1/withdrawals?user_id=u1&limit=1").await;
    assert_eq!(first["data"][0]["id"], w2["id"]);
    let cursor = first["next_cursor"].as_str().unwrap();
    let (_, second) = app
        .get_json(&format!(
            "/v1/withdrawals?user_id=u1&limit=1&cursor={cursor}"
        ))
        .await;
    assert_eq!(second["data"][0]["id"], w1["id"]);
    assert_eq!(second["next_cursor"], Value::Null);

    // A key is found while it is kept; retention deletes it, the reference stays.
    sqlx::query("DELETE FROM idempotency_keys WHERE key = 'key-1'")
        .execute(&app.pool)
        .await
        .unwrap();
    assert!(app.listed("idempotency_key=key-1").await.is_empty());
    assert_eq!(app.listed("reference=order-1").await, [w1_id]);

    for (query, named) in [
        ("updated_after=yesterday", "updated_after"),
        // An offset's unencoded `+` arrives as a space.
        ("updated_after=2026-12-06T09:00:00+02:00", "updated_after"),
        ("status=paid", "status"),
        ("user_id=a%20b", "user_id"),
        ("reference=%C3%A9", "reference"),
        (&format!("foreign_id={}", "f".repeat(256)), "foreign_id"),
        ("idempotency_key=a%09b", "idempotency_key"),
        ("user=u1", "user"),
        ("status=confirmed&status=processing", "status"),
    ] {
        let (status, problem) = app.get_json(&format!("/v1/withdrawals?{query}")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}");
        assert_eq!(problem["code"], "validation_failed", "{query}");
        let detail = problem["detail"].as_str().unwrap();
        assert!(
            detail.starts_with(&format!("{named}:")),
            "{query}: {detail}"
        );
    }
}

#[tokio::test]
async fn every_endpoint_with_a_query_refuses_unknown_or_repeated_parameters_by_name() {
    let app = spawn_app_with(with_operator).await;
    let doc = serde_json::to_value(payoutd::api::openapi_document()).unwrap();
    let mut checked = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let params: Vec<&str> = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "query")
                .map(|p| p["name"].as_str().unwrap())
                .collect();
            if params.is_empty() {
                continue;
            }
            assert_eq!(method, "get", "{path}");
            let concrete = path
                .replace("{user_id}", "u1")
                .replace("{id}", &uuid::Uuid::now_v7().to_string());
            let token = if path.starts_with("/admin/") {
                ADMIN_TOKEN
            } else {
                TOKEN
            };
            let get = |query: String| {
                let request = app
                    .http
                    .get(app.url(&format!("{concrete}?{query}")))
                    .bearer_auth(token);
                async move {
                    let r = request.send().await.unwrap();
                    (r.status(), r.json::<Value>().await.unwrap())
                }
            };
            // Every documented parameter is known (empty: absent)...
            let all: Vec<String> = params.iter().map(|p| format!("{p}=")).collect();
            let (status, body) = get(all.join("&")).await;
            assert_eq!(status, StatusCode::OK, "{path}: {body}");
            // ...anything else is refused, every unknown one named...
            let (status, problem) =
                get(format!("{}&zz_unknown=1&aa_unknown=", all.join("&"))).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{path}");
            assert_eq!(problem["code"], "validation_failed");
            assert!(
                problem["detail"]
                    .as_str()
                    .unwrap()
                    .starts_with("aa_unknown, zz_unknown: unknown query parameter"),
                "{path}: {problem}"
            );
            // ...and so is a parameter given twice.
            let (status, problem) = get(format!("{0}=&{0}=", params[0])).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{path}");
            assert_eq!(
                problem["detail"],
                format!("{}: given more than once", params[0])
            );
            checked.push(path.clone());
        }
    }
    checked.sort();
    assert_eq!(
        checked,
        [
            "/admin/v1/audit",
            "/admin/v1/stuck",
            "/v1/events",
            "/v1/users/{user_id}/ledger",
            "/v1/withdrawals",
        ]
    );
}

#[tokio::test]
async fn every_endpoint_without_a_query_refuses_one_and_does_nothing() {
    let app = spawn_app_with(with_operator).await;
    let doc = serde_json::to_value(payoutd::api::openapi_document()).unwrap();
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let takes_query = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|p| p["in"] == "query");
            let public = op["security"].as_array().is_some_and(Vec::is_empty);
            if takes_query || public {
                continue;
            }
            let concrete = path
                .replace("{user_id}", "u1")
                .replace("{currency}", "EUR")
                .replace("{scope}", "all")
                .replace("{id}", &uuid::Uuid::now_v7().to_string());
            let token = if path.starts_with("/admin/") {
                ADMIN_TOKEN
            } else {
                TOKEN
            };
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            // A body the operation accepts, so that only the query can be refused.
            let body = op["requestBody"]["content"]["application/json"]["example"].clone();
            let mut request = app
                .http
                .request(
                    method.clone(),
                    app.url(&format!("{concrete}?user_id=u2&b=1&a=")),
                )
                .bearer_auth(token)
                .header("Idempotency-Key", format!("stray-{checked}"));
            if !body.is_null() {
                request = request.json(&body);
            }
            let r = request.send().await.unwrap();
            assert_eq!(
                r.status(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "{method} {path}"
            );
            let problem: Value = r.json().await.unwrap();
            assert_eq!(problem["code"], "validation_failed", "{method} {path}");
            assert_eq!(
                problem["detail"],
                "a, b, user_id: unknown query parameter; this operation takes none",
                "{method} {path}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 25, "{checked} operations checked");
    // Refused before anything was done: no credit, no withdrawal, no event.
    for table in [
        "ledger_entries",
        "withdrawals",
        "notification_outbox",
        "audit_log",
        "user_review_flags",
        "submission_pauses",
        "user_limits",
    ] {
        let rows: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(&app.pool)
            .await
            .unwrap();
        assert_eq!(rows, 0, "{table}");
    }
}
