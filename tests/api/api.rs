//! The HTTP edge: auth, credits, balances, ledger, and every refusal code of the contract.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn problem(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    assert_eq!(
        response.headers().get("content-type").unwrap(),
        "application/problem+json"
    );
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn v1_endpoints_require_a_valid_bearer_token() {
    let app = spawn_app().await;
    for token in [None, Some("wrong-token-0123456789")] {
        let mut request = app.http.get(app.url("/v1/users/u1/balances"));
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        let (status, body) = problem(request.send().await.unwrap()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["code"], "unauthorized");
        assert_eq!(body["status"], 401);
    }
    let health = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let ready: Value = app
        .http
        .get(app.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["provider"], "coinspaid");
}

#[tokio::test]
async fn credits_are_idempotent_by_reference() {
    let app = spawn_app().await;
    let first = app.credit("u1", "EUR", "250.00", "dep-991").await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["entry"]["kind"], "credit");
    assert_eq!(first["entry"]["amount"], "250.00");
    assert_eq!(first["entry"]["reference"], "dep-991");
    assert_eq!(first["balance"]["available"], "250.00");
    assert_eq!(first["balance"]["total"], "250.00");

    let again = app.credit("u1", "EUR", "250.00", "dep-991").await;
    assert_eq!(again.status(), StatusCode::OK);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["entry"]["id"], first["entry"]["id"]);
    assert_eq!(again["balance"]["available"], "250.00");

    let (status, body) = problem(app.credit("u1", "EUR", "25.00", "dep-991").await).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["code"], "reference_conflict");
    let (status, _) = problem(app.credit("u1", "USD", "250.00", "dep-991").await).await;
    assert_eq!(status, StatusCode::CONFLICT);

    // The same reference for another user is another credit.
    assert_eq!(
        app.credit("u2", "EUR", "1.00", "dep-991").await.status(),
        StatusCode::CREATED
    );
    assert_eq!(
        app.balance("u1", "EUR").await,
        ("250.00".into(), "0.00".into())
    );
    app.assert_invariants().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_identical_credits_credit_once() {
    let app = std::sync::Arc::new(spawn_app().await);
    let statuses = concurrently(20, |_| {
        let app = app.clone();
        async move { app.credit("u1", "EUR", "10.00", "same-ref").await.status() }
    })
    .await;
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CREATED)
            .count(),
        1
    );
    assert!(statuses
        .iter()
        .all(|s| *s == StatusCode::CREATED || *s == StatusCode::OK));
    assert_eq!(app.balance("u1", "EUR").await.0, "10.00");
    app.assert_invariants().await;
}

#[tokio::test]
async fn credit_refusals_have_stable_codes() {
    let app = spawn_app().await;
    let post = |body: Value| {
        let app = &app;
        async move {
            problem(
                app.http
                    .post(app.url("/v1/users/u1/credits"))
                    .bearer_auth(TOKEN)
                    .json(&body)
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }
    };
    let cases = [
        (
            json!({"currency":"EUR","amount":250,"reference":"r"}),
            422,
            "invalid_amount",
        ),
        (
            json!({"currency":"EUR","amount":"1.001","reference":"r"}),
            422,
            "invalid_amount",
        ),
        (
            json!({"currency":"EUR","amount":"-1","reference":"r"}),
            422,
            "invalid_amount",
        ),
        (
            json!({"currency":"DOGE","amount":"1","reference":"r"}),
            422,
            "unsupported_currency",
        ),
        (
            json!({"currency":"EUR","amount":"1"}),
            422,
            "validation_failed",
        ),
        (
            json!({"currency":"EUR","amount":"1","reference":"r","extra":1}),
            422,
            "validation_failed",
        ),
    ];
    for (body, status, code) in cases {
        let (got_status, got) = post(body.clone()).await;
        assert_eq!(
            (got_status.as_u16(), got["code"].as_str().unwrap()),
            (status, code),
            "{body}"
        );
    }
    let (status, body) = problem(
        app.http
            .post(app.url("/v1/users/u1/credits"))
            .bearer_auth(TOKEN)
            .body("{not json")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str().unwrap()),
        (StatusCode::BAD_REQUEST, "invalid_json")
    );
    assert!(app.balance("u1", "EUR").await == ("0".into(), "0".into()));
}

#[tokio::test]
async fn withdrawal_refusals_hold_nothing_and_send_nothing() {
    let app = spawn_app().await;
    app.fund("u1", "EUR", "100.00").await;
    let base = eur_to_btc("u1", "10.00");
    let with = |field: &str, value: Value| {
        let mut body = base.clone();
        body[field] = value;
        body
    };
    let cases = [
        (with("amount", json!(10)), "invalid_amount"),
        (with("amount", json!("10.001")), "invalid_amount"),
        (with("amount", json!("0")), "invalid_amount"),
        (with("currency", json!("XYZ")), "unsupported_currency"),
        (with("convert_to", json!("USD")), "unsupported_pair"),
        (with("convert_to", Value::Null), "unsupported_pair"),
        (
            with(
                "address",
                json!("0xde0B295669a9FD93d5F28D9Ec85E40f4cb697BAe"),
            ),
            "invalid_address",
        ),
        (with("amount", json!("0.50")), "below_minimum"),
        (with("amount", json!("100.01")), "insufficient_funds"),
        (with("user_id", json!(42)), "validation_failed"),
        (with("surprise", json!("x")), "validation_failed"),
    ];
    for (i, (body, code)) in cases.into_iter().enumerate() {
        let (status, problem_body) =
            problem(app.withdraw(&format!("refused-{i}"), &body).await).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(problem_body["code"], code, "{body}");
        assert!(problem_body["detail"]
            .as_str()
            .is_some_and(|d| !d.is_empty()));
    }
    let (status, body) = problem(
        app.http
            .post(app.url("/v1/withdrawals"))
            .bearer_auth(TOKEN)
            .json(&base)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str().unwrap()),
        (StatusCode::BAD_REQUEST, "idempotency_key_required")
    );
    let (status, body) = problem(
        app.http
            .post(app.url("/v1/withdrawals"))
            .bearer_auth(TOKEN)
            .header("Idempotency-Key", "k-json")
            .body("{\"user_id\":")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str().unwrap()),
        (StatusCode::BAD_REQUEST, "invalid_json")
    );

    assert_eq!(
        app.balance("u1", "EUR").await,
        ("100.00".into(), "0.00".into())
    );
    assert!(
        app.sim.submissions().is_empty(),
        "nothing may reach CoinsPaid"
    );
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM withdrawals")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(count, 0);
    app.assert_invariants().await;
}

#[tokio::test]
async fn bodies_over_64_kib_are_refused_with_413() {
    let app = spawn_app().await;
    let huge = format!(
        "{{\"currency\":\"EUR\",\"amount\":\"1\",\"reference\":\"{}\"}}",
        "x".repeat(70 * 1024)
    );
    let (status, body) = problem(
        app.http
            .post(app.url("/v1/users/u1/credits"))
            .bearer_auth(TOKEN)
            .body(huge.clone())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["code"], "payload_too_large");
    let status = app.post_callback(huge.as_bytes()).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn ledger_lists_newest_first_with_keyset_pages() {
    let app = spawn_app().await;
    for i in 0..5 {
        assert_eq!(
            app.credit("u1", "EUR", &format!("{}.00", i + 1), &format!("r{i}"))
                .await
                .status(),
            StatusCode::CREATED
        );
    }
    app.fund("u1", "USD", "3.00").await;
    let (_, page1) = app
        .get_json("/v1/users/u1/ledger?currency=EUR&limit=2")
        .await;
    let amounts: Vec<&str> = page1["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["amount"].as_str().unwrap())
        .collect();
    assert_eq!(amounts, ["5.00", "4.00"]);
    let cursor = page1["next_cursor"].as_str().unwrap();
    let (_, page2) = app
        .get_json(&format!(
            "/v1/users/u1/ledger?currency=EUR&limit=2&cursor={cursor}"
        ))
        .await;
    let (_, page3) = app
        .get_json(&format!(
            "/v1/users/u1/ledger?currency=EUR&limit=2&cursor={}",
            page2["next_cursor"].as_str().unwrap()
        ))
        .await;
    assert_eq!(page3["data"].as_array().unwrap().len(), 1);
    assert_eq!(page3["next_cursor"], Value::Null);
    let (_, all) = app.get_json("/v1/users/u1/ledger").await;
    assert_eq!(all["data"].as_array().unwrap().len(), 6);
    let (status, body) = app.get_json("/v1/users/u1/ledger?limit=0").await;
    assert_eq!(
        (status, body["code"].as_str().unwrap()),
        (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")
    );
    let (_, unknown) = app.get_json("/v1/users/nobody/balances").await;
    assert_eq!(unknown, json!({"user_id": "nobody", "balances": []}));
}

#[tokio::test]
async fn unknown_routes_and_ids_are_problem_404s() {
    let app = spawn_app().await;
    let (status, body) = problem(
        app.http
            .get(app.url("/v1/nope"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str().unwrap()),
        (StatusCode::NOT_FOUND, "not_found")
    );
    let (status, body) = app
        .get_json(&format!("/v1/withdrawals/{}", uuid::Uuid::now_v7()))
        .await;
    assert_eq!(
        (status, body["code"].as_str().unwrap()),
        (StatusCode::NOT_FOUND, "not_found")
    );
    let (status, _) = app.get_json("/v1/withdrawals/not-a-uuid").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// Collects every `$ref` in the document.
fn refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => out.push(r.clone()),
                    _ => refs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn openapi_document_covers_every_route_and_is_consistent() {
    let app = spawn_app().await;
    let doc: Value = app
        .http
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    // The contract's operations, all documented...
    let expected = [
        ("post", "/v1/users/{user_id}/credits"),
        ("get", "/v1/users/{user_id}/balances"),
        ("get", "/v1/users/{user_id}/ledger"),
        ("post", "/v1/withdrawals"),
        ("get", "/v1/withdrawals"),
        ("get", "/v1/withdrawals/{id}"),
        ("get", "/v1/currencies"),
        ("post", "/v1/quotes"),
        ("get", "/v1/users/{user_id}/limits/{currency}"),
        ("put", "/v1/users/{user_id}/limits/{currency}"),
        ("post", "/v1/callbacks/coinspaid"),
        ("get", "/healthz"),
        ("get", "/readyz"),
        ("get", "/metrics"),
        // Operators in control (CONTRACT-ADDITIONS section 8).
        ("post", "/v1/withdrawals/{id}/cancel"),
        ("put", "/v1/users/{user_id}/review-flag"),
        ("delete", "/v1/users/{user_id}/review-flag"),
        ("get", "/admin/v1/stuck"),
        ("get", "/admin/v1/withdrawals/{id}"),
        ("post", "/admin/v1/withdrawals/{id}/acknowledge"),
        ("post", "/admin/v1/withdrawals/{id}/approve"),
        ("post", "/admin/v1/withdrawals/{id}/reject"),
        ("post", "/admin/v1/withdrawals/{id}/retry"),
        ("post", "/admin/v1/withdrawals/{id}/lookup"),
        ("post", "/admin/v1/withdrawals/{id}/resolve"),
        ("get", "/admin/v1/pauses"),
        ("put", "/admin/v1/pauses/{scope}"),
        ("delete", "/admin/v1/pauses/{scope}"),
        ("put", "/admin/v1/users/{user_id}/review-flag"),
        ("delete", "/admin/v1/users/{user_id}/review-flag"),
        ("get", "/admin/v1/audit"),
        // Staying in sync (contract section 8).
        ("get", "/v1/events"),
        ("post", "/v1/events/{id}/redeliver"),
        ("post", "/v1/webhooks/test"),
    ];
    let paths = doc["paths"].as_object().unwrap();
    let mut documented = Vec::new();
    for (path, item) in paths {
        for method in item
            .as_object()
            .unwrap()
            .keys()
            .filter(|m| ["get", "post", "put", "delete", "patch"].contains(&m.as_str()))
        {
            documented.push((method.clone(), path.clone()));
        }
    }
    documented.sort();
    let mut want: Vec<(String, String)> = expected
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    want.sort();
    assert_eq!(
        documented, want,
        "documented operations differ from the contract's"
    );

    // ...each one really routed (the router is built from the same annotations, so this also
    // proves nothing routed is undocumented, apart from /openapi.json and /docs themselves)...
    for (method, path) in &documented {
        let concrete = path
            .replace("{user_id}", "u1")
            .replace("{currency}", "EUR")
            .replace("{scope}", "all")
            .replace("{id}", &uuid::Uuid::now_v7().to_string());
        let request = match method.as_str() {
            "post" => app.http.post(app.url(&concrete)),
            "put" => app.http.put(app.url(&concrete)),
            "delete" => app.http.delete(app.url(&concrete)),
            _ => app.http.get(app.url(&concrete)),
        };
        let response = request.bearer_auth(TOKEN).send().await.unwrap();
        assert_ne!(
            response.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path} is documented but not routed"
        );
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert_ne!(
            body["detail"], "no such route",
            "{method} {path} is documented but not routed"
        );
    }
    assert_eq!(
        app.http
            .get(app.url("/docs"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );

    // ...and internally consistent: every $ref resolves, every path parameter is declared.
    let mut all_refs = Vec::new();
    refs(&doc, &mut all_refs);
    assert!(!all_refs.is_empty());
    for r in all_refs {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("unexpected $ref {r}"));
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "dangling $ref {r}"
        );
    }
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            assert!(
                op["responses"].as_object().is_some_and(|r| !r.is_empty()),
                "{method} {path} has no responses"
            );
            for segment in path.split('/').filter(|s| s.starts_with('{')) {
                let name = segment.trim_matches(|c| c == '{' || c == '}');
                let declared = op["parameters"]
                    .as_array()
                    .is_some_and(|ps| ps.iter().any(|p| p["name"] == name && p["in"] == "path"));
                assert!(
                    declared,
                    "{method} {path} does not declare path parameter {name}"
                );
            }
        }
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
}

/// Each documented request body is what its handler reads: every documented property is a
/// field the handler knows (a wrong type is refused naming it), anything else is refused as
/// unknown.
#[tokio::test]
async fn every_documented_request_body_is_what_its_handler_reads() {
    let app = spawn_app_with(with_operator).await;
    let doc: Value = app
        .http
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let Some(reference) =
                op["requestBody"]["content"]["application/json"]["schema"]["$ref"].as_str()
            else {
                continue;
            };
            let schema = &doc["components"]["schemas"]
                [reference.trim_start_matches("#/components/schemas/")];
            let token = if path.starts_with("/admin/") {
                ADMIN_TOKEN
            } else {
                TOKEN
            };
            let concrete = path
                .replace("{user_id}", "u1")
                .replace("{currency}", "EUR")
                .replace("{scope}", "all")
                .replace("{id}", &uuid::Uuid::now_v7().to_string());
            let send = |body: Value| {
                let request = match method.as_str() {
                    "put" => app.http.put(app.url(&concrete)),
                    _ => app.http.post(app.url(&concrete)),
                };
                async move {
                    problem(
                        request
                            .bearer_auth(token)
                            .header("Idempotency-Key", "schema-check")
                            .json(&body)
                            .send()
                            .await
                            .unwrap(),
                    )
                    .await
                }
            };
            for property in schema["properties"].as_object().unwrap().keys() {
                let (status, refused) = send(json!({ property: [1] })).await;
                let detail = refused["detail"].as_str().unwrap_or_default();
                assert_eq!(
                    status,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "{path} {property}"
                );
                assert!(
                    detail.starts_with(property.as_str())
                        && !detail.contains("is not a known field"),
                    "{method} {path}: {property} is documented but {detail:?}"
                );
            }
            let (status, refused) = send(json!({"undocumented": "x"})).await;
            assert_eq!(
                (status, refused["detail"].as_str()),
                (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    Some("undocumented: is not a known field")
                ),
                "{method} {path}"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 13, "the operations with a request body");
}
