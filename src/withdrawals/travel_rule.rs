//! The `withdrawal_travel_rules` table: MiCA data kept apart from the withdrawal row, read by
//! each submission attempt and purged once the withdrawal has long been terminal.
//!
//! Apart, so that nothing built from a `Withdrawal` (views, listings, notifications, logs)
//! can carry it. It is written by the create statement (`request::create`).

use std::time::Duration;

use sqlx::PgPool;
use uuid::Uuid;

use crate::coinspaid::wire::TravelRuleFields;

/// Deleted per statement, so a large backlog never holds one long lock.
const PURGE_BATCH: i64 = 1_000;

/// The fields stored for a withdrawal, exactly as they are sent (`None`: none were stored).
pub async fn load(
    pool: &PgPool,
    withdrawal_id: Uuid,
) -> Result<Option<TravelRuleFields>, sqlx::Error> {
    let data: Option<sqlx::types::Json<TravelRuleFields>> =
        sqlx::query_scalar("SELECT data FROM withdrawal_travel_rules WHERE withdrawal_id = $1")
            .bind(withdrawal_id)
            .fetch_optional(pool)
            .await?;
    Ok(data.map(|json| json.0))
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
    /// run it at the same time. A terminal withdrawal's `updated_at` is when it settled (or
    /// later, for an anomaly recorded on it), so the period is never cut short.
    pub async fn purge_once(&self) -> Result<u64, sqlx::Error> {
        let mut total = 0;
        loop {
            let deleted = sqlx::query(
                "DELETE FROM withdrawal_travel_rules WHERE withdrawal_id IN (
                     SELECT t.withdrawal_id FROM withdrawal_travel_rules t
                     JOIN withdrawals w ON w.id = t.withdrawal_id
                     WHERE w.status IN ('confirmed', 'cancelled', 'rejected')
                       AND w.updated_at < now() - make_interval(days => $1)
                     LIMIT $2)",
            )
            .bind(self.retention_days as i32)
            .bind(PURGE_BATCH)
            .execute(&self.pool)
            .await?
            .rows_affected();
            total += deleted;
            if deleted < PURGE_BATCH as u64 {
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
            crate::failover::step_done("travel-rule purge", self.purge_once().await);
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
