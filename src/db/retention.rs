//! Retention: rows that only record the past are deleted after configurable ages, so the
//! database does not grow for ever. Ledger entries and withdrawals are never deleted (they are
//! the money's history); neither is a notification still waiting for delivery to a URL.

use std::future::Future;
use std::time::Duration;

use serde::Deserialize;
use sqlx::postgres::PgQueryResult;
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
        let pool = &self.pool;
        let callbacks_hours = s.callbacks_days as i32 * 24;
        let notifications_hours = s.notifications_days as i32 * 24;
        let idempotency_hours = s.idempotency_key_hours as i32;
        let deleted = Deleted {
            callbacks: in_batches(|| {
                sqlx::query!(
                    "DELETE FROM callbacks WHERE id IN (
                         SELECT id FROM callbacks
                         WHERE received_at < now() - make_interval(hours => $1) LIMIT $2)",
                    callbacks_hours,
                    BATCH
                )
                .execute(pool)
            })
            .await?,
            notifications: if self.notify_configured {
                in_batches(|| {
                    sqlx::query!(
                        "DELETE FROM notification_outbox WHERE id IN (
                             SELECT id FROM notification_outbox
                             WHERE delivered_at IS NOT NULL
                               AND created_at < now() - make_interval(hours => $1) LIMIT $2)",
                        notifications_hours,
                        BATCH
                    )
                    .execute(pool)
                })
                .await?
            } else {
                in_batches(|| {
                    sqlx::query!(
                        "DELETE FROM notification_outbox WHERE id IN (
                             SELECT id FROM notification_outbox
                             WHERE created_at < now() - make_interval(hours => $1) LIMIT $2)",
                        notifications_hours,
                        BATCH
                    )
                    .execute(pool)
                })
                .await?
            },
            idempotency_keys: in_batches(|| {
                sqlx::query!(
                    "DELETE FROM idempotency_keys WHERE key IN (
                         SELECT key FROM idempotency_keys
                         WHERE created_at < now() - make_interval(hours => $1) LIMIT $2)",
                    idempotency_hours,
                    BATCH
                )
                .execute(pool)
            })
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

    /// The retention loop, until `shutdown`.
    pub async fn run(self, every: Duration, shutdown: watch::Receiver<bool>) {
        crate::background::every("retention", every, shutdown, || async {
            crate::db::failover::step_done("retention", self.purge_once().await);
        })
        .await;
    }
}

/// Runs `delete` (one statement deleting at most [`BATCH`] rows) until a run deletes fewer;
/// returns how many rows went.
async fn in_batches<F, Fut>(mut delete: F) -> Result<u64, sqlx::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<PgQueryResult, sqlx::Error>>,
{
    let mut total = 0;
    loop {
        let done = delete().await?.rows_affected();
        total += done;
        if done < BATCH as u64 {
            return Ok(total);
        }
    }
}
