//! The events feed (`GET /v1/events`): the notification outbox, read oldest first in commit
//! order, whether or not a notification URL is set. An event is exactly the body a
//! notification POSTs (`id`, `type`, `created_at`, `data`).
//!
//! A reader that follows the cursor never skips an event. Ids (UUIDv7, made before commit on
//! each replica's clock) and `created_at` (the transaction's start) do not follow commit
//! order, so the feed pages on the writing transaction's id instead (`tx_id`, see the
//! migration `events_feed`) and holds back every row at or above the oldest transaction still
//! running: once a cursor is handed out, no later commit can land below it. A long
//! transaction anywhere on the server delays the feed by its length; it never loses an event.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

/// A place in the feed: the position of the last event a reader has, its cursor opaque to
/// the reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// The writing transaction's id (`xid8`; below 2^63 for as long as PostgreSQL runs).
    tx: i64,
    id: Uuid,
}

impl Position {
    /// The cursor: 8 bytes of the transaction id and the 16 of the event id, base64url.
    pub fn encode(&self) -> String {
        let mut bytes = [0u8; 24];
        bytes[..8].copy_from_slice(&self.tx.to_be_bytes());
        bytes[8..].copy_from_slice(self.id.as_bytes());
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// A cursor [`Position::encode`] made, or `None`.
    pub fn decode(cursor: &str) -> Option<Self> {
        let bytes: [u8; 24] = URL_SAFE_NO_PAD.decode(cursor).ok()?.try_into().ok()?;
        let tx = i64::from_be_bytes(bytes[..8].try_into().ok()?);
        let id = Uuid::from_slice(&bytes[8..]).ok()?;
        (tx >= 0).then_some(Self { tx, id })
    }
}

/// Events in commit order, and where the next page starts.
#[derive(Debug)]
pub struct FeedPage {
    pub events: Vec<Value>,
    /// The last event's position; `None` when there was no event to give.
    pub next: Option<Position>,
}

/// Up to `limit` events after `after` (from the first kept when `None`), oldest first in
/// commit order. One statement: its snapshot decides both what is visible and the horizon
/// below which every transaction has ended.
pub async fn page(
    pool: &PgPool,
    after: Option<Position>,
    limit: i64,
) -> Result<FeedPage, sqlx::Error> {
    let after = after.unwrap_or(Position {
        tx: 0,
        id: Uuid::nil(),
    });
    let rows = sqlx::query!(
        r#"SELECT tx_id::text::bigint AS "tx!", id, payload FROM notification_outbox
           WHERE (tx_id, id) > ($1::bigint::text::xid8, $2)
             AND tx_id < pg_snapshot_xmin(pg_current_snapshot())
           ORDER BY tx_id, id
           LIMIT $3"#,
        after.tx,
        after.id,
        limit
    )
    .fetch_all(pool)
    .await?;
    let next = rows.last().map(|row| Position {
        tx: row.tx,
        id: row.id,
    });
    Ok(FeedPage {
        events: rows.into_iter().map(|row| row.payload).collect(),
        next,
    })
}

/// Has the event delivered again as soon as the notifier next runs, with its id (the
/// `webhook-id`) and body unchanged, and its backoff started afresh. One statement; `false`
/// when no such event is kept.
pub async fn redeliver(pool: &PgPool, id: Uuid) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!(
        "UPDATE notification_outbox
         SET delivered_at = NULL, next_attempt_at = now(), attempts = 0, last_error = NULL
         WHERE id = $1",
        id
    )
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Writes a `webhook.test` event to the outbox: delivered like any other and listed in the
/// feed. Returns its id.
pub async fn record_test(pool: &PgPool) -> Result<Uuid, sqlx::Error> {
    let id = Uuid::now_v7();
    // The envelope of every event (`payload.rs`), with no data.
    sqlx::query!(
        r#"INSERT INTO notification_outbox (id, payload)
           VALUES ($1, jsonb_build_object(
               'id', $1::uuid,
               'type', 'webhook.test',
               'created_at', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
               'data', '{}'::jsonb))"#,
        id
    )
    .execute(pool)
    .await?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_reads_back_as_its_position_and_nothing_else_does() {
        let position = Position {
            tx: 1 << 40 | 12345,
            id: Uuid::now_v7(),
        };
        let cursor = position.encode();
        assert_eq!(cursor.len(), 32);
        assert_eq!(Position::decode(&cursor), Some(position));
        for bad in [
            "",
            "abc",
            &cursor[1..],
            &format!("{cursor}A"),
            &URL_SAFE_NO_PAD.encode([0xffu8; 24]),
            &position.id.to_string(),
        ] {
            assert_eq!(Position::decode(bad), None, "{bad:?}");
        }
    }
}
