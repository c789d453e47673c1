//! The database's money guards (the named constraints and guard triggers of migrations/) and
//! the `payoutd::error::Error` each violation becomes. The code never relies on one firing;
//! these tests make each fire and check that the error says what it refused. And the guard on
//! reading: a withdrawal's ids and currencies are parsed as they are decoded.

use crate::helpers::*;
use payoutd::domain::withdrawal::Decision;
use payoutd::error::Error;
use payoutd::withdrawals::settle::transition;
use payoutd::withdrawals::store;
use uuid::Uuid;

/// Runs `statements` in one transaction, rolled back: every one but the last must succeed;
/// the last one's error, as the money path sees it.
async fn refused(pool: &sqlx::PgPool, statements: &[String]) -> Error {
    let mut tx = pool.begin().await.unwrap();
    let (last, setup) = statements.split_last().unwrap();
    for sql in setup {
        sqlx::raw_sql(sql).execute(&mut *tx).await.unwrap();
    }
    let err = sqlx::raw_sql(last).execute(&mut *tx).await.unwrap_err();
    Error::from(err)
}

#[tokio::test]
async fn a_settlement_of_a_settled_withdrawal_is_refused_as_settled_twice() {
    let app = spawn_app().await;
    let w = app.processing_withdrawal("10.00").await;
    let id: Uuid = id_of(&w).parse().unwrap();
    // A release nobody decided takes the withdrawal's one settlement.
    sqlx::query(
        "INSERT INTO ledger_entries (id, user_id, currency, kind, amount, withdrawal_id)
         VALUES ($1, 'u1', 'EUR', 'release', 10.00, $2)",
    )
    .bind(Uuid::now_v7())
    .bind(id)
    .execute(&app.pool)
    .await
    .unwrap();

    let mut tx = app.pool.begin().await.unwrap();
    let current = store::lock_by_id(&mut tx, id).await.unwrap().unwrap();
    let err = transition::decide(&mut tx, current, Decision::ResolvePaid, None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::SettledTwice), "{err:?}");
    tx.rollback().await.unwrap();

    // Nothing of the refused settlement stayed.
    assert_eq!(app.withdrawal(&id_of(&w)).await["status"], "processing");
    let (_, held) = app.balance("u1", "EUR").await;
    assert_eq!(dec(&held), dec("10.00"));
    assert_eq!(app.ledger_kinds(&id_of(&w)).await, ["hold", "release"]);
}

/// A constraint's name, the statements that break it, and the variant it must map to.
type GuardCase = (&'static str, Vec<String>, fn(&Error) -> bool);

#[tokio::test]
async fn each_money_guard_maps_to_the_variant_naming_what_it_refused() {
    let app = spawn_app().await;
    let w = app.processing_withdrawal("10.00").await;
    let id = id_of(&w);
    let entry = |kind: &str, amount: &str| {
        format!(
            "INSERT INTO ledger_entries (id, user_id, currency, kind, amount, withdrawal_id)
             VALUES ('{}', 'u1', 'EUR', '{kind}', {amount}, '{id}')",
            Uuid::now_v7()
        )
    };
    let credit = |amount: &str| {
        format!(
            "INSERT INTO ledger_entries (id, user_id, currency, kind, amount, reference)
             VALUES ('{}', 'u1', 'EUR', 'credit', {amount}, 'guard-ref')",
            Uuid::now_v7()
        )
    };
    let copy_of_withdrawal = |foreign_id: &str| {
        format!(
            "INSERT INTO withdrawals (id, foreign_id, user_id, amount, currency, address,
                                      end_user_reference, reference)
             SELECT '{}', {foreign_id}, user_id, amount, currency, address, end_user_reference,
                    reference
             FROM withdrawals WHERE id = '{id}'",
            Uuid::now_v7()
        )
    };
    let reference_claim = format!(
        "INSERT INTO withdrawal_references (reference, request_hash, withdrawal_id)
         VALUES ('guard-ref', '\\x00', '{id}')"
    );
    let audit = format!(
        "INSERT INTO audit_log (id, actor, action) VALUES ('{}', 'test', 'note')",
        Uuid::now_v7()
    );
    let cases: Vec<GuardCase> = vec![
        (
            "ledger_entries_withdrawal_settlement_key",
            vec![entry("debit", "10.00"), entry("release", "10.00")],
            |e| matches!(e, Error::SettledTwice),
        ),
        (
            "ledger_entries_withdrawal_hold_key",
            vec![entry("hold", "10.00")],
            |e| matches!(e, Error::HeldTwice),
        ),
        (
            "ledger_entries_credit_reference_key",
            vec![credit("1.00"), credit("1.00")],
            |e| matches!(e, Error::CreditedTwice),
        ),
        (
            "withdrawals_foreign_id_key",
            vec![copy_of_withdrawal("foreign_id")],
            |e| matches!(e, Error::ForeignIdReused),
        ),
        (
            "idempotency_keys_pkey",
            vec![
                "INSERT INTO idempotency_keys (key, request_hash, withdrawal_id)
                  SELECT key, request_hash, withdrawal_id FROM idempotency_keys"
                    .into(),
            ],
            |e| matches!(e, Error::KeyClaimedTwice),
        ),
        (
            "withdrawal_references_pkey",
            vec![reference_claim.clone(), reference_claim],
            |e| matches!(e, Error::ReferenceClaimedTwice { constraint } if *constraint == "withdrawal_references_pkey"),
        ),
        (
            "withdrawals_reference_key",
            vec![
                format!("UPDATE withdrawals SET reference = 'guard-ref' WHERE id = '{id}'"),
                copy_of_withdrawal("'pd-guard'"),
            ],
            |e| matches!(e, Error::ReferenceClaimedTwice { constraint } if *constraint == "withdrawals_reference_key"),
        ),
        (
            "balances_available_not_negative",
            vec!["UPDATE balances SET available = available - 1000".into()],
            |e| matches!(e, Error::Overdrawn { constraint } if *constraint == "balances_available_not_negative"),
        ),
        (
            "balances_held_not_negative",
            vec!["UPDATE balances SET held = held - 1000".into()],
            |e| matches!(e, Error::Overdrawn { constraint } if *constraint == "balances_held_not_negative"),
        ),
        (
            "withdrawals_amount_positive",
            vec![format!(
                "UPDATE withdrawals SET amount = 0 WHERE id = '{id}'"
            )],
            |e| matches!(e, Error::AmountNotPositive { constraint } if *constraint == "withdrawals_amount_positive"),
        ),
        (
            "ledger_entries_amount_positive",
            vec![credit("0")],
            |e| matches!(e, Error::AmountNotPositive { constraint } if *constraint == "ledger_entries_amount_positive"),
        ),
        (
            "ledger_entries_no_update_or_delete (update)",
            vec![format!(
                "UPDATE ledger_entries SET amount = amount + 1 WHERE withdrawal_id = '{id}'"
            )],
            |e| {
                matches!(
                    e,
                    Error::AppendOnly {
                        table: "ledger_entries"
                    }
                )
            },
        ),
        (
            "ledger_entries_no_update_or_delete (delete)",
            vec![format!(
                "DELETE FROM ledger_entries WHERE withdrawal_id = '{id}'"
            )],
            |e| {
                matches!(
                    e,
                    Error::AppendOnly {
                        table: "ledger_entries"
                    }
                )
            },
        ),
        (
            "ledger_entries_no_truncate",
            vec!["TRUNCATE ledger_entries".into()],
            |e| {
                matches!(
                    e,
                    Error::AppendOnly {
                        table: "ledger_entries"
                    }
                )
            },
        ),
        (
            "audit_log_no_update_or_delete",
            vec![audit, "DELETE FROM audit_log".into()],
            |e| matches!(e, Error::AppendOnly { table: "audit_log" }),
        ),
        (
            "withdrawals_outcome_unknown_one_way",
            vec![
                format!("UPDATE withdrawals SET outcome_unknown = true WHERE id = '{id}'"),
                format!("UPDATE withdrawals SET outcome_unknown = false WHERE id = '{id}'"),
            ],
            |e| matches!(e, Error::OutcomeUnknownCleared),
        ),
        (
            "any other error",
            vec![format!(
                "UPDATE withdrawals SET status = 'lost' WHERE id = '{id}'"
            )],
            |e| matches!(e, Error::Database(_)),
        ),
    ];
    for (guard, statements, expected) in cases {
        let err = refused(&app.pool, &statements).await;
        assert!(expected(&err), "{guard}: {err:?}");
        if !matches!(err, Error::Database(_)) {
            assert!(
                !payoutd::db::failover::MaybeUnavailable::database_unavailable(&err),
                "{guard}: a refusal is not an outage"
            );
        }
    }
    // Every refusal was rolled back.
    app.assert_invariants().await;
}

#[tokio::test]
async fn a_withdrawal_whose_stored_ids_do_not_parse_fails_to_read() {
    let app = spawn_app().await;
    let w = app.processing_withdrawal("10.00").await;
    let id: Uuid = id_of(&w).parse().unwrap();
    let read = store::get(&app.pool, id).await.unwrap().unwrap();
    assert_eq!(read.foreign_id.as_str(), fid_of(&w));
    assert_eq!(
        (read.user_id.as_str(), read.currency.as_str()),
        ("u1", "EUR")
    );
    assert_eq!(read.convert_to.as_ref().map(|c| c.as_str()), Some("BTC"));
    for (column, text) in [
        ("user_id", "u 1"),
        ("currency", "eur"),
        ("convert_to", "btc"),
        ("foreign_id", "f1"),
    ] {
        let mut tx = app.pool.begin().await.unwrap();
        sqlx::query(&format!(
            "UPDATE withdrawals SET {column} = $2 WHERE id = $1"
        ))
        .bind(id)
        .bind(text)
        .execute(&mut *tx)
        .await
        .unwrap();
        let err = store::lock_by_id(&mut tx, id).await.unwrap_err();
        assert!(
            matches!(err, sqlx::Error::ColumnDecode { ref source, .. }
                if source.to_string().contains(&format!("{text:?}"))),
            "{column}: {err:?}"
        );
    }
}
