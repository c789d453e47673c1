//! The `withdrawal_travel_rules` table: MiCA data kept apart from the withdrawal row, read by
//! each submission attempt and purged once the withdrawal has long been terminal.
//!
//! Apart, so that nothing built from a `Withdrawal` (views, listings, notifications, logs)
//! can carry it. It is written by the create statement (`group`).

use std::time::Duration;

use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::coinspaid::wire::TravelRuleFields;
use crate::domain::travel_rule::Redactor;

/// Deleted per statement, so a large backlog never holds one long lock.
const PURGE_BATCH: i64 = 1_000;

/// The fields stored for a withdrawal, exactly as they are sent (`None`: none were stored).
pub async fn load(
    pool: &PgPool,
    withdrawal_id: Uuid,
) -> Result<Option<TravelRuleFields>, sqlx::Error> {
    let data = sqlx::query_scalar!(
        r#"SELECT data AS "data: Json<TravelRuleFields>" FROM withdrawal_travel_rules
           WHERE withdrawal_id = $1"#,
        withdrawal_id
    )
    .fetch_optional(pool)
    .await?;
    Ok(data.map(|json| json.0))
}

/// What scrubs the withdrawal's stored travel-rule values from provider text, read inside the
/// caller's transaction; `None` when none are stored (or they were purged).
pub async fn redactor(
    conn: &mut PgConnection,
    withdrawal_id: Uuid,
) -> Result<Option<Redactor>, sqlx::Error> {
    let data = sqlx::query_scalar!(
        r#"SELECT data AS "data: Json<TravelRuleFields>" FROM withdrawal_travel_rules
           WHERE withdrawal_id = $1"#,
        withdrawal_id
    )
    .fetch_optional(conn)
    .await?;
    Ok(data.map(|json| json.0.redactor()).filter(|r| !r.is_empty()))
}

/// Scrubs `redactor`'s values from every stored text about one withdrawal that came from
/// outside or quotes what did: its `error` and `anomaly`, its submission job's `last_error`,
/// its callbacks' bodies and verdicts, and its notifications' payloads and delivery errors.
/// Text written since provider answers are scrubbed on arrival holds none; this covers the
/// rest, and any spelling the scrub on arrival missed but a later one finds. `updated_at` is
/// left alone: nothing about the withdrawal changed. The audit trail is append-only and is
/// written only from text already scrubbed on arrival.
pub async fn scrub_stored(
    tx: &mut PgConnection,
    withdrawal_id: Uuid,
    foreign_id: &str,
    redactor: &Redactor,
) -> Result<(), sqlx::Error> {
    if redactor.is_empty() {
        return Ok(());
    }
    let row = sqlx::query!(
        "SELECT error, anomaly FROM withdrawals WHERE id = $1 FOR UPDATE",
        withdrawal_id
    )
    .fetch_one(&mut *tx)
    .await?;
    let (error, anomaly) = (row.error, row.anomaly);
    let (new_error, new_anomaly) = (
        redactor.scrub_opt(error.as_deref()),
        redactor.scrub_opt(anomaly.as_deref()),
    );
    if (&new_error, &new_anomaly) != (&error, &anomaly) {
        // The same anomaly, scrubbed, is not a new one for operators: counted (so the
        // migration's trigger leaves it alone) with its acknowledgement, if it had one.
        sqlx::query!(
            "UPDATE withdrawals SET error = $2, anomaly = $3,
                 anomaly_seq = anomaly_seq + 1,
                 anomaly_acknowledged_seq = CASE WHEN anomaly_acknowledged_seq = anomaly_seq
                     THEN anomaly_seq + 1 ELSE anomaly_acknowledged_seq END
             WHERE id = $1",
            withdrawal_id,
            new_error,
            new_anomaly
        )
        .execute(&mut *tx)
        .await?;
    }
    let job = sqlx::query_scalar!(
        "SELECT last_error FROM submission_jobs WHERE withdrawal_id = $1 FOR UPDATE",
        withdrawal_id
    )
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(Some(last_error)) = job {
        let scrubbed = redactor.scrub(&last_error);
        if scrubbed != last_error {
            sqlx::query!(
                "UPDATE submission_jobs SET last_error = $2 WHERE withdrawal_id = $1",
                withdrawal_id,
                scrubbed
            )
            .execute(&mut *tx)
            .await?;
        }
    }
    let callbacks = sqlx::query!(
        "SELECT id, raw_body, detail FROM callbacks WHERE foreign_id = $1 FOR UPDATE",
        foreign_id
    )
    .fetch_all(&mut *tx)
    .await?;
    for callback in callbacks {
        let (id, body, detail) = (callback.id, callback.raw_body, callback.detail);
        let new_body = redactor.scrub(&String::from_utf8_lossy(&body)).into_bytes();
        let new_detail = redactor.scrub_opt(detail.as_deref());
        // A body that was not UTF-8 changes under a lossy read even without a value in it.
        let body_changed = std::str::from_utf8(&body).is_ok() && new_body != body;
        if body_changed || new_detail != detail {
            sqlx::query!(
                "UPDATE callbacks SET raw_body = $2, detail = $3 WHERE id = $1",
                id,
                if body_changed { new_body } else { body },
                new_detail
            )
            .execute(&mut *tx)
            .await?;
        }
    }
    let notifications = sqlx::query!(
        "SELECT id, payload, last_error FROM notification_outbox
         WHERE withdrawal_id = $1 FOR UPDATE",
        withdrawal_id
    )
    .fetch_all(&mut *tx)
    .await?;
    for notification in notifications {
        let (id, payload, last_error) = (
            notification.id,
            notification.payload,
            notification.last_error,
        );
        let new_payload = scrub_json(redactor, &payload);
        let new_last_error = redactor.scrub_opt(last_error.as_deref());
        if new_payload != payload || new_last_error != last_error {
            sqlx::query!(
                "UPDATE notification_outbox SET payload = $2, last_error = $3 WHERE id = $1",
                id,
                new_payload,
                new_last_error
            )
            .execute(&mut *tx)
            .await?;
        }
    }
    Ok(())
}

/// Every string in `value` scrubbed; keys and structure as they were.
fn scrub_json(redactor: &Redactor, value: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::String(text) => Value::String(redactor.scrub(text)),
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| scrub_json(redactor, v)).collect())
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), scrub_json(redactor, v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Deletes the travel-rule data of withdrawals that have been terminal (confirmed,
/// cancelled, rejected) for longer than the retention period. An open withdrawal keeps its
/// data: every retry must send the same bytes.
#[derive(Clone)]
pub struct Purger {
    pool: PgPool,
    retention_days: u32,
}

impl Purger {
    pub fn new(pool: PgPool, retention_days: u32) -> Self {
        Self {
            pool,
            retention_days,
        }
    }

    /// One pass; returns how many withdrawals' data was deleted. Idempotent, so replicas may
    /// run it at the same time (each batch skips rows another replica has locked). A terminal
    /// withdrawal's `updated_at` is when it settled (or later, for an anomaly recorded on
    /// it), so the period is never cut short.
    ///
    /// Before a withdrawal's values are deleted, they are scrubbed from every text that may
    /// still quote them (see [`scrub_stored`]): once deleted, nothing could find them.
    /// One transaction per batch, so values are never deleted without that scrub.
    pub async fn purge_once(&self) -> Result<u64, sqlx::Error> {
        let mut total = 0;
        loop {
            let mut tx = self.pool.begin().await?;
            let due = sqlx::query!(
                r#"SELECT t.withdrawal_id, w.foreign_id,
                          t.data AS "data: Json<TravelRuleFields>"
                   FROM withdrawal_travel_rules t
                   JOIN withdrawals w ON w.id = t.withdrawal_id
                   WHERE w.status IN ('confirmed', 'cancelled', 'rejected')
                     AND w.updated_at < now() - make_interval(days => $1)
                   LIMIT $2
                   FOR UPDATE OF t SKIP LOCKED"#,
                self.retention_days as i32,
                PURGE_BATCH
            )
            .fetch_all(&mut *tx)
            .await?;
            let mut ids = Vec::with_capacity(due.len());
            for row in &due {
                scrub_stored(
                    &mut tx,
                    row.withdrawal_id,
                    &row.foreign_id,
                    &row.data.0.redactor(),
                )
                .await?;
                ids.push(row.withdrawal_id);
            }
            let deleted = sqlx::query!(
                "DELETE FROM withdrawal_travel_rules WHERE withdrawal_id = ANY($1)",
                &ids
            )
            .execute(&mut *tx)
            .await?
            .rows_affected();
            tx.commit().await?;
            total += deleted;
            if (due.len() as i64) < PURGE_BATCH {
                break;
            }
        }
        if total > 0 {
            tracing::info!(
                withdrawals = total,
                "travel-rule data purged after retention"
            );
            metrics::counter!("payoutd_travel_rule_purged_total").increment(total);
        }
        Ok(total)
    }

    /// The purge loop, until `shutdown` fires.
    pub async fn run(self, interval: Duration, shutdown: tokio::sync::watch::Receiver<bool>) {
        crate::background::every("travel-rule purge", interval, shutdown, || async {
            crate::db::failover::step_done("travel-rule purge", self.purge_once().await);
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::coinspaid::wire::WithdrawalRequest;
    use crate::domain::travel_rule::{TravelRule, TravelRuleInput};

    #[test]
    fn stored_data_reaches_the_wire_unchanged_and_in_a_fixed_order() {
        let object = |v: serde_json::Value| v.as_object().unwrap().clone();
        let rule = TravelRule::parse(
            &TravelRuleInput {
                sender_type: Some("natural".into()),
                sender_data: Some(object(
                    json!({"email": "f@example.com", "date_of_birth": "1995-08-17",
                    "last_name": "Müller", "first_name": "Friedrich"}),
                )),
                receiver_type: Some("legal".into()),
                receiver_data: Some(object(
                    json!({"legal_name": "Example GmbH", "country_of_registration": "DEU"}),
                )),
            },
            chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
        )
        .unwrap();
        let stored = rule.to_json().unwrap();
        let fields: TravelRuleFields = serde_json::from_value(stored.clone()).unwrap();
        let request = WithdrawalRequest {
            foreign_id: "f".into(),
            travel_rule: fields,
            ..WithdrawalRequest::default()
        };
        let body = serde_json::to_string(&request).unwrap();
        assert!(
            body.ends_with(r#""sender_type":"natural","sender_data":{"first_name":"Friedrich","last_name":"Müller","date_of_birth":"1995-08-17","email":"f@example.com"},"receiver_type":"legal","receiver_data":{"legal_name":"Example GmbH","country_of_registration":"DEU"}}"#),
            "{body}"
        );
        let sent: serde_json::Value = serde_json::from_str(&body).unwrap();
        for key in [
            "sender_type",
            "sender_data",
            "receiver_type",
            "receiver_data",
        ] {
            assert_eq!(sent[key], stored[key]);
        }
        assert!(!format!("{request:?}").contains("Müller"));
    }
}
