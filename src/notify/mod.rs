//! Notifications to the website backend: every status change writes its notification (payload
//! from [`status_change_query!`]) to an outbox in the same statement as the change, and the outbox is
//! delivered at least once as a signed POST. The outbox is also the events feed
//! ([`feed`]), which can ask for an event to be delivered again.
//!
//! Signed in the Standard Webhooks format ([`crate::standard_webhooks`]): `webhook-id` (the
//! event's `id`, the same on every retry, so the receiver drops duplicates),
//! `webhook-timestamp` (this attempt, so the receiver refuses old, replayed requests) and
//! `webhook-signature` with one `v1,<base64>` per configured secret.

pub mod feed;
mod payload;

use std::time::Duration;

use sqlx::PgPool;
use uuid::Uuid;

use crate::config::NotifySettings;
use crate::standard_webhooks::{self, WebhookSecret};

pub use crate::standard_webhooks::{ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};
pub(crate) use payload::status_change_query;

#[derive(Debug, thiserror::Error)]
pub enum NotifierError {
    #[error("cannot build the notification HTTP client: {0}")]
    Http(#[from] reqwest::Error),
    /// Never quotes the secret.
    #[error("notify.secret (PAYOUTD_NOTIFY_SECRET): {0}")]
    Secret(String),
}

/// Delivers the outbox to `notify.url`.
#[derive(Clone)]
pub struct Notifier {
    pool: PgPool,
    http: reqwest::Client,
    settings: NotifySettings,
    /// Current first; every one signs each delivery.
    secrets: Vec<WebhookSecret>,
}

/// A delivery is leased this long, so two replicas never post the same event at once.
const LEASE: Duration = Duration::from_secs(60);
const BATCH: i64 = 50;

impl Notifier {
    pub fn new(pool: PgPool, settings: NotifySettings) -> Result<Self, NotifierError> {
        let secrets =
            WebhookSecret::parse_list(settings.secret.expose()).map_err(NotifierError::Secret)?;
        if settings.url.is_some() && secrets.is_empty() {
            return Err(NotifierError::Secret(
                "required with notify.url (PAYOUTD_NOTIFY_URL)".into(),
            ));
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(settings.timeout_secs))
            .user_agent(concat!("payoutd/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            pool,
            http,
            settings,
            secrets,
        })
    }

    pub fn enabled(&self) -> bool {
        self.settings.url.is_some()
    }

    /// Posts every due notification once; returns how many were delivered.
    pub async fn deliver_once(&self) -> Result<usize, sqlx::Error> {
        if !self.enabled() {
            return Ok(0);
        }
        // The lease's end also names this claim: the outcome is recorded only while the row
        // still holds it, so a redelivery asked for meanwhile is not marked done by an
        // attempt that started before it.
        let due = sqlx::query!(
            "UPDATE notification_outbox
             SET next_attempt_at = now() + make_interval(secs => $1), attempts = attempts + 1
             WHERE id IN (
                 SELECT id FROM notification_outbox
                 WHERE delivered_at IS NULL AND next_attempt_at <= now()
                 ORDER BY created_at LIMIT $2
                 FOR UPDATE SKIP LOCKED)
             RETURNING id, payload, attempts, next_attempt_at",
            LEASE.as_secs_f64(),
            BATCH
        )
        .fetch_all(&self.pool)
        .await?;
        let mut delivered = 0;
        for row in due {
            let (id, attempts, claim) = (row.id, row.attempts, row.next_attempt_at);
            let payload = row.payload;
            match self.post(id, &payload).await {
                Ok(()) => {
                    sqlx::query!(
                        "UPDATE notification_outbox SET delivered_at = now(), last_error = NULL
                         WHERE id = $1 AND next_attempt_at = $2",
                        id,
                        claim
                    )
                    .execute(&self.pool)
                    .await?;
                    metrics::counter!("payoutd_notifications_total", "outcome" => "delivered")
                        .increment(1);
                    delivered += 1;
                }
                Err(error) => {
                    let delay = crate::background::backoff(
                        attempts,
                        Duration::from_secs(1),
                        Duration::from_secs(self.settings.backoff_max_secs),
                    );
                    tracing::warn!(event_id = %id, attempts, %error, retry_in_s = delay.as_secs(), "notification not delivered; will retry");
                    sqlx::query!(
                        "UPDATE notification_outbox
                         SET next_attempt_at = now() + make_interval(secs => $2), last_error = $3
                         WHERE id = $1 AND next_attempt_at = $4",
                        id,
                        delay.as_secs_f64(),
                        error,
                        claim
                    )
                    .execute(&self.pool)
                    .await?;
                    metrics::counter!("payoutd_notifications_total", "outcome" => "failed")
                        .increment(1);
                }
            }
        }
        Ok(delivered)
    }

    async fn post(&self, id: Uuid, payload: &serde_json::Value) -> Result<(), String> {
        let url = self.settings.url.clone().ok_or("notify.url is not set")?;
        // Serialized once; those bytes are signed and sent.
        let body = serde_json::to_vec(payload).map_err(|e| e.to_string())?;
        let id = id.to_string();
        let timestamp = chrono::Utc::now().timestamp();
        let signature = standard_webhooks::signature_header(&self.secrets, &id, timestamp, &body);
        let response = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(ID_HEADER, id)
            .header(TIMESTAMP_HEADER, timestamp)
            .header(SIGNATURE_HEADER, signature)
            .body(body)
            .send()
            .await
            .map_err(|e| format!("transport: {e}"))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(format!("HTTP {}", response.status().as_u16()))
        }
    }

    /// The delivery loop, until `shutdown`.
    pub async fn run(self, shutdown: tokio::sync::watch::Receiver<bool>) {
        let interval = Duration::from_millis(self.settings.poll_interval_ms);
        crate::background::every("notifier", interval, shutdown, || async {
            crate::db::failover::step_done("notifier", self.deliver_once().await);
        })
        .await;
    }
}
