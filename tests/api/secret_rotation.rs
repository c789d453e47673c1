//! Changing the CoinsPaid key pair without refusing traffic. CoinsPaid has one active key and
//! secret pair, and a new pair has a new key: during the change-over callbacks of the old pair
//! (old key, signed by the old secret) are still accepted and counted as such, requests use the
//! new pair only, and a key of one pair with the secret of the other is refused.
//! (Notification secrets rotate in tests/api/notifications.rs.)

use crate::helpers::*;
use payoutd::coinspaid::signing::SecretString;
use payoutd::coinspaid::{Credentials, Signer};
use reqwest::StatusCode;

const PREVIOUS_KEY: &str = "merchant-key-being-replaced";
const PREVIOUS_SECRET: &str = "merchant-secret-being-replaced";

fn signer_with(key: &str, secret: &str) -> Signer {
    Signer::new(Credentials {
        key: key.into(),
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

/// Posts `body` with the key header `key`, signed with `secret`.
async fn post_as(app: &TestApp, body: &[u8], key: &str, secret: &str) -> StatusCode {
    let signature = signer_with(key, secret).sign(body);
    app.post_callback_raw(body, Some(key), Some(&signature))
        .await
}

#[tokio::test]
async fn callbacks_of_the_previous_pair_are_accepted_and_mixed_pairs_refused() {
    // The counts are process-wide: any other test's verified callback would add to them.
    if !in_own_process(
        module_path!(),
        "callbacks_of_the_previous_pair_are_accepted_and_mixed_pairs_refused",
    )
    .await
    {
        return;
    }
    let app = spawn_app_with(|s| {
        s.coinspaid.api_key_previous = PREVIOUS_KEY.into();
        s.coinspaid.api_secret_previous = SecretString::new(PREVIOUS_SECRET);
    })
    .await;
    assert_eq!(
        verified_with(&app, "previous").await,
        0.0,
        "registered at start"
    );
    app.fund("u1", "EUR", "100.00").await;
    // The simulator only accepts the current pair: the submissions prove requests use it.
    let confirmed = app.withdraw_ok(&eur_to_btc("u1", "10.00")).await;
    let cancelled = app.withdraw_ok(&eur_to_btc("u1", "20.00")).await;
    let submissions = app.sim.submissions();
    assert_eq!(submissions.len(), 2);
    assert!(submissions.iter().all(|s| s.signature_valid));

    let body = app.callback_for(&confirmed, "confirmed");
    for (key, secret, why) in [
        (KEY, "a-secret-payoutd-never-had", "unknown secret"),
        (KEY, PREVIOUS_SECRET, "current key, previous secret"),
        (PREVIOUS_KEY, SECRET, "previous key, current secret"),
        ("a-key-payoutd-never-had", PREVIOUS_SECRET, "unknown key"),
    ] {
        assert_eq!(
            post_as(&app, &body, key, secret).await,
            StatusCode::UNAUTHORIZED,
            "{why}"
        );
    }
    assert_eq!(
        app.withdrawal(confirmed["id"].as_str().unwrap()).await["status"],
        "processing"
    );
    assert_eq!(verified_with(&app, "previous").await, 0.0);

    assert_eq!(
        post_as(&app, &body, PREVIOUS_KEY, PREVIOUS_SECRET).await,
        StatusCode::OK
    );
    assert_eq!(
        app.withdrawal(confirmed["id"].as_str().unwrap()).await["status"],
        "confirmed"
    );
    // The new pair works alongside.
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
async fn without_a_previous_pair_the_old_one_is_refused() {
    let app = spawn_app().await;
    app.fund("u1", "EUR", "100.00").await;
    let w = app.withdraw_ok(&eur_to_btc("u1", "10.00")).await;
    let body = app.callback_for(&w, "confirmed");
    assert_eq!(
        post_as(&app, &body, PREVIOUS_KEY, PREVIOUS_SECRET).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.withdrawal(w["id"].as_str().unwrap()).await["status"],
        "processing"
    );
}
