//! Changing the CoinsPaid secret without refusing traffic: during the change-over callbacks
//! signed with the previous secret are still accepted (and counted as such), requests are
//! signed with the new one only, and a secret payoutd never had is refused.
//! (Notification secrets rotate in tests/notifications.rs.)

mod common;

use common::*;
use payoutd::coinspaid::signing::SecretString;
use payoutd::coinspaid::{Credentials, Signer};
use reqwest::StatusCode;

const PREVIOUS_SECRET: &str = "merchant-secret-being-replaced";

fn signer_with(secret: &str) -> Signer {
    Signer::new(Credentials {
        key: KEY.into(),
        secret: SecretString::new(secret),
    })
}

async fn verified_with(app: &TestApp, secret: &str) -> f64 {
    let prefix = format!("payoutd_callback_signatures_verified_total{{secret=\"{secret}\"}} ");
    app.metrics_text()
        .await
        .lines()
        .find_map(|l| l.strip_prefix(&prefix).map(|v| v.parse().unwrap()))
        .unwrap_or_else(|| panic!("no {prefix}series"))
}

#[tokio::test]
async fn callbacks_signed_with_the_previous_secret_are_accepted_and_unknown_ones_refused() {
    let app = spawn_app_with(|s| {
        s.coinspaid.api_secret_previous = SecretString::new(PREVIOUS_SECRET);
    })
    .await;
    assert_eq!(
        verified_with(&app, "previous").await,
        0.0,
        "registered at start"
    );
    app.fund("u1", "EUR", "100.00").await;
    // The simulator only accepts the current secret: the submission proves requests use it.
    let confirmed = app.withdraw_ok(&eur_to_btc("u1", "10.00")).await;
    let cancelled = app.withdraw_ok(&eur_to_btc("u1", "20.00")).await;
    let submissions = app.sim.submissions();
    assert_eq!(submissions.len(), 2);
    assert!(submissions.iter().all(|s| s.signature_valid));

    let unknown = signer_with("a-secret-payoutd-never-had");
    let body = app.callback_for(&confirmed, "confirmed");
    let signature = unknown.sign(&body);
    assert_eq!(
        app.post_callback_raw(&body, Some(KEY), Some(&signature))
            .await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.withdrawal(confirmed["id"].as_str().unwrap()).await["status"],
        "processing"
    );

    let signature = signer_with(PREVIOUS_SECRET).sign(&body);
    assert_eq!(
        app.post_callback_raw(&body, Some(KEY), Some(&signature))
            .await,
        StatusCode::OK
    );
    assert_eq!(
        app.withdrawal(confirmed["id"].as_str().unwrap()).await["status"],
        "confirmed"
    );
    // The new secret works alongside.
    assert_eq!(
        app.post_callback(&app.callback_for(&cancelled, "cancelled"))
            .await,
        StatusCode::OK
    );
    assert_eq!(
        app.withdrawal(cancelled["id"].as_str().unwrap()).await["status"],
        "cancelled"
    );

    assert_eq!(verified_with(&app, "previous").await, 1.0);
    assert_eq!(verified_with(&app, "current").await, 1.0);
    // 10.00 debited, 20.00 released.
    assert_eq!(
        app.balance("u1", "EUR").await,
        ("90.00".into(), "0.00".into())
    );
    app.assert_invariants().await;
}

#[tokio::test]
async fn without_a_previous_secret_the_old_one_is_refused() {
    let app = spawn_app().await;
    app.fund("u1", "EUR", "100.00").await;
    let w = app.withdraw_ok(&eur_to_btc("u1", "10.00")).await;
    let body = app.callback_for(&w, "confirmed");
    let signature = signer_with(PREVIOUS_SECRET).sign(&body);
    assert_eq!(
        app.post_callback_raw(&body, Some(KEY), Some(&signature))
            .await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.withdrawal(w["id"].as_str().unwrap()).await["status"],
        "processing"
    );
}
