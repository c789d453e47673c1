//! Notifications to the website backend: every status change is written to an outbox in the
//! same transaction as the change, and delivered at least once as a signed POST.
//!
//! Signature: `X-Payoutd-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>` with
//! `X-Payoutd-Timestamp: <unix seconds>`, so the receiver can refuse old (replayed) requests;
//! `X-Payoutd-Event-Id` (also `id` in the body) lets it drop duplicates.

use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::config::NotifySettings;
use crate::domain::WithdrawalStatus;
use crate::withdrawals::Withdrawal;

pub const TIMESTAMP_HEADER: &str = "X-Payoutd-Timestamp";
pub const SIGNATURE_HEADER: &str = "X-Payoutd-Signature";
pub const EVENT_ID_HEADER: &str = "X-Payoutd-Event-Id";

/// `v1=` + hex HMAC-SHA256 of `"{timestamp}.{body}"`.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// Writes the notification for a status change, inside the transaction that made it.
pub async fn enqueue(
    conn: &mut PgConnection,
    withdrawal: &Withdrawal,
    previous: WithdrawalStatus,
) -> Result<(), sqlx::Error> {
    let id = Uuid::now_v7();
    let payload = json!({
        "id": id,
        "type": "withdrawal.status_changed",
        "created_at": withdrawal.updated_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "data": {
            "withdrawal_id": withdrawal.id,
            "foreign_id": withdrawal.foreign_id,
            "user_id": withdrawal.user_id,
            "status": withdrawal.status,
            "previous_status": previous,
            "provider_status": withdrawal.provider_status,
            "amount": withdrawal.amount.to_string(),
            "currency": withdrawal.currency,
            "convert_to": withdrawal.convert_to,
            "error": withdrawal.error,
        }
    });
    sqlx::query("INSERT INTO notification_outbox (id, withdrawal_id, payload) VALUES ($1, $2, $3)")
        .bind(id)
        .bind(withdrawal.id)
        .bind(payload)
        .execute(conn)
        .await?;
    Ok(())
}

/// The payload [`enqueue`] writes, as a SQL expression over a row alias `row` holding the
/// withdrawal as changed (all its columns) and `previous` a SQL text expression, for a
/// status change made and notified in one statement (the submission answer, see
/// `withdrawals::submit`). `$event_id` is the outbox id's parameter. A test holds it equal to
/// [`enqueue`]'s.
pub(crate) fn payload_sql(row: &str, previous: &str, event_id: &str) -> String {
    format!(
        "jsonb_build_object(
             'id', {event_id}::uuid,
             'type', 'withdrawal.status_changed',
             'created_at', to_char({row}.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'),
             'data', jsonb_build_object(
                 'withdrawal_id', {row}.id,
                 'foreign_id', {row}.foreign_id,
                 'user_id', {row}.user_id,
                 'status', {row}.status,
                 'previous_status', {previous},
                 'provider_status', {row}.provider_status,
                 'amount', {row}.amount::text,
                 'currency', {row}.currency,
                 'convert_to', {row}.convert_to,
                 'error', {row}.error))"
    )
}

/// Delivers the outbox to `notify.url`.
#[derive(Clone)]
pub struct Notifier {
    pool: PgPool,
    http: reqwest::Client,
    settings: NotifySettings,
}

/// A delivery is leased this long, so two replicas never post the same event at once.
const LEASE: Duration = Duration::from_secs(60);
const BATCH: i64 = 50;

impl Notifier {
    pub fn new(pool: PgPool, settings: NotifySettings) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(settings.timeout_secs))
            .user_agent(concat!("payoutd/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            pool,
            http,
            settings,
        })
    }

    pub fn enabled(&self) -> bool {
        !self.settings.url.is_empty()
    }

    /// Posts every due notification once; returns how many were delivered.
    pub async fn deliver_once(&self) -> Result<usize, sqlx::Error> {
        if !self.enabled() {
            return Ok(0);
        }
        let due: Vec<(Uuid, Value, i32)> = sqlx::query_as(
            "UPDATE notification_outbox
             SET next_attempt_at = now() + make_interval(secs => $1), attempts = attempts + 1
             WHERE id IN (
                 SELECT id FROM notification_outbox
                 WHERE delivered_at IS NULL AND next_attempt_at <= now()
                 ORDER BY created_at LIMIT $2
                 FOR UPDATE SKIP LOCKED)
             RETURNING id, payload, attempts",
        )
        .bind(LEASE.as_secs_f64())
        .bind(BATCH)
        .fetch_all(&self.pool)
        .await?;
        let mut delivered = 0;
        for (id, payload, attempts) in due {
            match self.post(id, &payload).await {
                Ok(()) => {
                    sqlx::query("UPDATE notification_outbox SET delivered_at = now(), last_error = NULL WHERE id = $1")
                        .bind(id)
                        .execute(&self.pool)
                        .await?;
                    metrics::counter!("payoutd_notifications_total", "outcome" => "delivered")
                        .increment(1);
                    delivered += 1;
                }
                Err(error) => {
                    let delay = crate::queue::backoff(
                        attempts,
                        Duration::from_secs(1),
                        Duration::from_secs(self.settings.backoff_max_secs),
                    );
                    tracing::warn!(event_id = %id, attempts, %error, retry_in_s = delay.as_secs(), "notification not delivered; will retry");
                    sqlx::query("UPDATE notification_outbox SET next_attempt_at = now() + make_interval(secs => $2), last_error = $3 WHERE id = $1")
                        .bind(id)
                        .bind(delay.as_secs_f64())
                        .bind(&error)
                        .execute(&self.pool)
                        .await?;
                    metrics::counter!("payoutd_notifications_total", "outcome" => "failed")
                        .increment(1);
                }
            }
        }
        Ok(delivered)
    }

    async fn post(&self, id: Uuid, payload: &Value) -> Result<(), String> {
        // Serialized once; those bytes are signed and sent.
        let body = serde_json::to_vec(payload).map_err(|e| e.to_string())?;
        let timestamp = chrono::Utc::now().timestamp();
        let signature = sign(self.settings.secret.expose(), timestamp, &body);
        let response = self
            .http
            .post(&self.settings.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(TIMESTAMP_HEADER, timestamp)
            .header(SIGNATURE_HEADER, signature)
            .header(EVENT_ID_HEADER, id.to_string())
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
            if let Err(err) = self.deliver_once().await {
                tracing::error!(error = %err, "notifier step failed");
            }
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_of_timestamp_dot_body() {
        // printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac notify-secret
        assert_eq!(
            sign("notify-secret", 1_700_000_000, br#"{"a":1}"#),
            "v1=143ea9d9b8ab05a118800c2e11d299ec5d515bd8cd408992d86e740b145b5336"
        );
    }
}
