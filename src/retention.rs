//! Retention: rows that only record the past are deleted after configurable ages, so the
//! database does not grow for ever. Ledger entries and withdrawals are never deleted (they are
//! the money's history); neither is a notification still waiting for delivery to a URL.

use std::time::Duration;

use serde::Deserialize;
use sqlx::PgPool;
use tokio::sync::watch;

/// How long rows that only record the past are kept. Ledger entries and withdrawals are
/// never deleted.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionSettings {
    /// How often the deletion runs (0: not in this process).
    pub interval_secs: u64,
    pub callbacks_days: u32,
    /// Delivered notifications (and, with no notification URL, undelivered ones).
    pub notifications_days: u32,
    /// At least 24: a client retrying within a day must still get its replay.
    pub idempotency_key_hours: u32,
}

/// Rows deleted by one pass, per table.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Deleted {
    pub callbacks: u64,
    pub notifications: u64,
    pub idempotency_keys: u64,
}

#[derive(Clone)]
pub struct Retention {
    pool: PgPool,
    settings: RetentionSettings,
    /// Without a notification URL nothing is ever delivered: old undelivered rows go too.
    notify_configured: bool,
}

/// Deleted per statement, so one pass never holds a long lock or a huge transaction.
const BATCH: i64 = 5_000;

impl Retention {
    pub fn new(pool: PgPool, settings: RetentionSettings, notify_configured: bool) -> Self {
        Self {
            pool,
            settings,
            notify_configured,
        }
    }

    /// One pass over every table; each delete its own statement, in batches.
    pub async fn purge_once(&self) -> Result<Deleted, sqlx::Error> {
        let s = &self.settings;
        let deleted = Deleted {
            callbacks: self
                .in_batches(
                    "DELETE FROM callbacks WHERE id IN (
                         SELECT id FROM callbacks
                         WHERE received_at < now() - make_interval(hours => $1) LIMIT $2)",
                    s.callbacks_days as i32 * 24,
                )
                .await?,
            notifications: self
                .in_batches(
                    if self.notify_configured {
                        "DELETE FROM notification_outbox WHERE id IN (
                             SELECT id FROM notification_outbox
                             WHERE delivered_at IS NOT NULL
                               AND created_at < now() - make_interval(hours => $1) LIMIT $2)"
                    } else {
                        "DELETE FROM notification_outbox WHERE id IN (
                             SELECT id FROM notification_outbox
                             WHERE created_at < now() - make_interval(hours => $1) LIMIT $2)"
                    },
                    s.notifications_days as i32 * 24,
                )
                .await?,
            idempotency_keys: self
                .in_batches(
                    "DELETE FROM idempotency_keys WHERE key IN (
                         SELECT key FROM idempotency_keys
                         WHERE created_at < now() - make_interval(hours => $1) LIMIT $2)",
                    s.idempotency_key_hours as i32,
                )
                .await?,
        };
        for (table, count) in [
            ("callbacks", deleted.callbacks),
            ("notifications", deleted.notifications),
            ("idempotency_keys", deleted.idempotency_keys),
        ] {
            metrics::counter!("payoutd_retention_deleted_total", "table" => table).increment(count);
        }
        if deleted != Deleted::default() {
            tracing::info!(?deleted, "retention: old rows deleted");
        }
        Ok(deleted)
    }

    async fn in_batches(&self, sql: &str, hours: i32) -> Result<u64, sqlx::Error> {
        let mut total = 0;
        loop {
            let done = sqlx::query(sql)
                .bind(hours)
                .bind(BATCH)
                .execute(&self.pool)
                .await?
                .rows_affected();
            total += done;
            if done < BATCH as u64 {
                return Ok(total);
            }
        }
    }

    /// The retention loop, until `shutdown`.
    pub async fn run(self, every: Duration, shutdown: watch::Receiver<bool>) {
        crate::background::every("retention", every, shutdown, || async {
            crate::failover::step_done("retention", self.purge_once().await);
        })
        .await;
    }
}
