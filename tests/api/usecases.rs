//! The use cases called directly, without HTTP: what a handler calls is a function a test can
//! call, with the same database and the CoinsPaid simulator behind it.

use crate::helpers::*;
use payoutd::domain::travel_rule::TravelRuleInput;
use payoutd::domain::{IdempotencyKey, UserId, WithdrawalStatus};
use payoutd::usecases::{Credit, Requested};
use payoutd::withdrawals::create::request::{CreateError, Refusal, WithdrawalInput};
use rust_decimal::Decimal;

fn eur_to_btc(amount: &str) -> WithdrawalInput {
    WithdrawalInput {
        user_id: "u1".into(),
        amount: amount.into(),
        currency: "EUR".into(),
        convert_to: Some("BTC".into()),
        address: BTC_ADDRESS.into(),
        tag: None,
        end_user_reference: None,
        reference: None,
        travel_rule: TravelRuleInput::default(),
    }
}

fn key(text: &str) -> IdempotencyKey {
    IdempotencyKey::parse(text).unwrap()
}

#[tokio::test]
async fn withdrawals_create_holds_and_makes_the_first_attempt_without_http() {
    let app = spawn_app().await;
    let user = UserId::parse("u1").unwrap();
    let credit = Credit {
        currency: "EUR".into(),
        amount: "100.00".into(),
        reference: "dep-1".into(),
    };
    let credited = app.usecases.balances.credit(&user, credit).await.unwrap();
    assert!(!credited.replayed);

    let withdrawals = &app.usecases.withdrawals;
    let Requested::New(created) = withdrawals
        .create(key("facade-1"), eur_to_btc("10.00"))
        .await
        .unwrap()
    else {
        panic!("a new key makes a new withdrawal")
    };
    // Held, and the first attempt made before the call returned: CoinsPaid has it.
    assert_eq!(created.status, WithdrawalStatus::Processing);
    let sent = app.sim.submissions();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].foreign_id.as_deref(),
        Some(created.foreign_id.as_str())
    );

    // The same key and input again: the same withdrawal, nothing new held or sent.
    let Requested::Replayed(again) = withdrawals
        .create(key("facade-1"), eur_to_btc("10.00"))
        .await
        .unwrap()
    else {
        panic!("the same key and input replay")
    };
    assert_eq!(again.id, created.id);
    // A refusal holds nothing and sends nothing.
    let refused = withdrawals
        .create(key("facade-2"), eur_to_btc("90.01"))
        .await
        .unwrap_err();
    assert!(
        matches!(refused, CreateError::Refused(Refusal::InsufficientFunds)),
        "{refused:?}"
    );
    assert_eq!(app.sim.submissions().len(), 1);

    let balances = app.usecases.balances.of(&user).await.unwrap();
    let eur = balances.iter().find(|b| b.currency == "EUR").unwrap();
    assert_eq!(
        (eur.available, eur.held),
        (Decimal::new(9000, 2), Decimal::new(1000, 2))
    );
    assert_eq!(
        withdrawals.get(created.id).await.unwrap().map(|w| w.id),
        Some(created.id)
    );
    app.assert_invariants().await;
}
