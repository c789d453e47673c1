//! Gauges read at scrape time. Database-derived ones (open withdrawals, the oldest one's age,
//! parked jobs, undelivered notifications, withdrawals awaiting approval, pauses) describe the shared database, so every replica
//! reports the same value: aggregate them with `max()`, never `sum()`. They are refreshed at
//! most once per `metrics.db_gauges_interval_secs` per process, however often it is scraped.
//! Pool and process gauges are per process and cheap (no query), refreshed on every scrape.

use std::time::{Duration, Instant};

use sqlx::PgPool;
use tokio::sync::Mutex;

pub struct Gauges {
    pool: PgPool,
    interval: Duration,
    /// Undelivered notifications are only a backlog when something delivers them.
    notify_configured: bool,
    max_connections: u32,
    process: metrics_process::Collector,
    last_refresh: Mutex<Option<Instant>>,
}

impl Gauges {
    pub fn new(
        pool: PgPool,
        interval: Duration,
        notify_configured: bool,
        max_connections: u32,
    ) -> Self {
        let process = metrics_process::Collector::new("");
        process.describe();
        Self {
            pool,
            interval,
            notify_configured,
            max_connections,
            process,
            last_refresh: Mutex::new(None),
        }
    }

    /// Brings every gauge up to date for a scrape.
    pub async fn refresh(&self) {
        self.process.collect();
        let idle = self.pool.num_idle() as f64;
        let size = f64::from(self.pool.size());
        metrics::gauge!("payoutd_db_pool_connections", "state" => "idle").set(idle);
        metrics::gauge!("payoutd_db_pool_connections", "state" => "in_use").set(size - idle);
        metrics::gauge!("payoutd_db_pool_max_connections").set(f64::from(self.max_connections));
        // Concurrent scrapes wait for one refresh rather than each querying.
        let mut last = self.last_refresh.lock().await;
        if last.is_some_and(|at| at.elapsed() < self.interval) {
            return;
        }
        match self.refresh_database().await {
            Ok(()) => *last = Some(Instant::now()),
            Err(err) => tracing::warn!(error = %err, "metrics: database gauges not refreshed"),
        }
    }

    async fn refresh_database(&self) -> Result<(), sqlx::Error> {
        let open = sqlx::query!(
            r#"SELECT
                 count(*) FILTER (WHERE status = 'pending') AS "pending!",
                 count(*) FILTER (WHERE status = 'processing') AS "processing!",
                 EXTRACT(EPOCH FROM now() - min(created_at))::float8 AS oldest,
                 (SELECT count(*) FROM submission_jobs WHERE parked) AS "parked!",
                 (SELECT count(*) FROM notification_outbox WHERE delivered_at IS NULL)
                     AS "undelivered!"
               FROM withdrawals WHERE status IN ('pending', 'processing')"#
        )
        .fetch_one(&self.pool)
        .await?;
        let (pending, processing, oldest, parked, undelivered) = (
            open.pending,
            open.processing,
            open.oldest,
            open.parked,
            open.undelivered,
        );
        metrics::gauge!("payoutd_withdrawals", "status" => "pending").set(pending as f64);
        metrics::gauge!("payoutd_withdrawals", "status" => "processing").set(processing as f64);
        metrics::gauge!("payoutd_oldest_pending_withdrawal_age_seconds").set(oldest.unwrap_or(0.0));
        metrics::gauge!("payoutd_submission_jobs_parked").set(parked as f64);
        // Without a URL the rows are kept for the record, never sent (the retention job deletes
        // them): not a backlog, so 0 keeps the alert quiet rather than firing for ever.
        let undelivered = if self.notify_configured {
            undelivered
        } else {
            0
        };
        metrics::gauge!("payoutd_notifications_undelivered").set(undelivered as f64);
        let operators = sqlx::query!(
            r#"SELECT
                 (SELECT count(*) FROM withdrawals WHERE status = 'awaiting_approval')
                     AS "awaiting!",
                 (SELECT count(*) FROM submission_pauses) AS "pauses!",
                 EXISTS (SELECT 1 FROM submission_pauses WHERE scope = '*') AS "all_paused!""#
        )
        .fetch_one(&self.pool)
        .await?;
        let (awaiting, pauses, all_paused) =
            (operators.awaiting, operators.pauses, operators.all_paused);
        metrics::gauge!("payoutd_withdrawals", "status" => "awaiting_approval")
            .set(awaiting as f64);
        metrics::gauge!("payoutd_submissions_paused", "scope" => "all")
            .set(f64::from(u8::from(all_paused)));
        metrics::gauge!("payoutd_submissions_paused_scopes").set(pauses as f64);
        metrics::gauge!("payoutd_db_gauges_refreshed_timestamp_seconds")
            .set(chrono::Utc::now().timestamp() as f64);
        Ok(())
    }
}
