//! Limits on abuse: rate limits answered 429 problem+json with Retry-After, and the callback
//! allow-list with a trusted proxy's X-Forwarded-For.

use crate::helpers::*;
use reqwest::StatusCode;

#[tokio::test]
async fn api_requests_over_the_per_token_limit_get_429_with_retry_after() {
    let app = spawn_app_with(|s| {
        s.abuse.api_per_second = 1;
        s.abuse.api_burst = 3;
    })
    .await;
    let mut statuses = Vec::new();
    let mut last = None;
    for _ in 0..5 {
        let response = app
            .http
            .get(app.url("/v1/users/u1/balances"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        statuses.push(response.status());
        last = Some(response);
    }
    assert_eq!(&statuses[..3], &[StatusCode::OK; 3]);
    assert_eq!(statuses[4], StatusCode::TOO_MANY_REQUESTS);
    let refused = last.unwrap();
    assert_eq!(
        refused.headers()["content-type"],
        "application/problem+json"
    );
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    let problem: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(problem["code"], "rate_limited");
    // Health and metrics are not /v1: never limited.
    assert!(app
        .metrics_text()
        .await
        .contains("payoutd_rate_limited_total{scope=\"api\"}"));
}

#[tokio::test]
async fn guessing_tokens_on_either_interface_spends_one_allowance_per_address() {
    let app = spawn_app_with(|s| {
        with_operator(s);
        s.abuse.unauthenticated_per_second = 1;
        s.abuse.unauthenticated_burst = 4;
    })
    .await;
    let guess = |path: &str, token: &str| {
        app.http
            .get(app.url(path))
            .bearer_auth(token.to_owned())
            .send()
    };
    // Two guesses at the operator API, two at the website's: the one bucket is spent...
    for (path, token) in [
        ("/admin/v1/stuck", "guess-operator-0001"),
        ("/v1/users/u1/balances", "guess-website-0001"),
        ("/admin/v1/pauses", "guess-operator-0002"),
        ("/v1/users/u1/balances", "guess-website-0002"),
    ] {
        assert_eq!(
            guess(path, token).await.unwrap().status(),
            StatusCode::UNAUTHORIZED,
            "{path}"
        );
    }
    // ...so the next guess at either is 429 with Retry-After, not another try.
    for path in ["/admin/v1/stuck", "/v1/users/u1/balances"] {
        let refused = guess(path, "guess-0003").await.unwrap();
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS, "{path}");
        assert!(refused.headers().contains_key("retry-after"), "{path}");
        let problem: serde_json::Value = refused.json().await.unwrap();
        assert_eq!(problem["code"], "rate_limited");
    }
    // The real tokens are not refused: only refusals are counted.
    assert_eq!(
        guess("/admin/v1/stuck", ADMIN_TOKEN)
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        guess("/v1/users/u1/balances", TOKEN)
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn callbacks_over_the_per_address_limit_get_429() {
    let app = spawn_app_with(|s| {
        s.abuse.callback_per_second = 1;
        s.abuse.callback_burst = 2;
    })
    .await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(app.post_callback_raw(b"{}", Some(KEY), Some("00")).await);
    }
    assert_eq!(&statuses[..2], &[StatusCode::UNAUTHORIZED; 2]);
    assert_eq!(statuses[3], StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn the_callback_allow_list_believes_forwarded_for_only_from_trusted_proxies() {
    let outside =
        spawn_app_with(|s| s.abuse.callback_allow = vec!["203.0.113.0/24".parse().unwrap()]).await;
    let w = outside.processing_withdrawal("10.00").await;
    let body = outside.callback_for(&w, "confirmed");
    let signature = outside.signer.sign(&body);
    let post = |app: &TestApp, forwarded: Option<&'static str>| {
        let mut request = app
            .http
            .post(app.url("/v1/callbacks/coinspaid"))
            .header("X-Processing-Key", KEY)
            .header("X-Processing-Signature", signature.clone())
            .body(body.clone());
        if let Some(hop) = forwarded {
            request = request.header("X-Forwarded-For", hop);
        }
        async move { request.send().await.unwrap().status() }
    };
    // Loopback is not allowed, and without a trusted proxy the header is not believed.
    assert_eq!(
        post(&outside, Some("203.0.113.5")).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        outside.withdrawal(w["id"].as_str().unwrap()).await["status"],
        "processing"
    );

    let behind_proxy = spawn_app_with(|s| {
        s.abuse.callback_allow = vec!["203.0.113.0/24".parse().unwrap()];
        s.abuse.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    let w = behind_proxy.processing_withdrawal("10.00").await;
    let body2 = behind_proxy.callback_for(&w, "confirmed");
    let signed = behind_proxy.signer.sign(&body2);
    let send = |hop: &'static str| {
        behind_proxy
            .http
            .post(behind_proxy.url("/v1/callbacks/coinspaid"))
            .header("X-Processing-Key", KEY)
            .header("X-Processing-Signature", signed.clone())
            .header("X-Forwarded-For", hop)
            .body(body2.clone())
            .send()
    };
    assert_eq!(
        send("198.51.100.1").await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        send("198.51.100.1, 203.0.113.5").await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        behind_proxy.withdrawal(w["id"].as_str().unwrap()).await["status"],
        "confirmed"
    );
    behind_proxy.assert_invariants().await;
}
