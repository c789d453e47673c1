//! The website's view of its notifications: the events feed, redelivery of one event, and a
//! test event (see [`crate::notify::feed`]).

use sqlx::PgPool;
use uuid::Uuid;

use crate::notify::feed::{self, FeedPage, Position};

#[derive(Clone)]
pub struct Events {
    pool: PgPool,
    /// Whether `notify.url` is set: without it nothing can be delivered, though the feed is
    /// kept all the same.
    deliverable: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("no such event is kept")]
    NotFound,
    #[error("no notification URL is configured (notify.url, PAYOUTD_NOTIFY_URL): nothing can be delivered")]
    NotDeliverable,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl Events {
    pub fn new(pool: PgPool, deliverable: bool) -> Self {
        Self { pool, deliverable }
    }

    /// Up to `limit` events after `after`, oldest first in commit order.
    pub async fn feed(&self, after: Option<Position>, limit: i64) -> Result<FeedPage, sqlx::Error> {
        feed::page(&self.pool, after, limit).await
    }

    /// Sends the event again (same `webhook-id`, same body) on the notifier's next round.
    /// One statement; asking twice before it goes sends it once.
    pub async fn redeliver(&self, id: Uuid) -> Result<(), EventError> {
        if !self.deliverable {
            return Err(EventError::NotDeliverable);
        }
        if feed::redeliver(&self.pool, id).await? {
            tracing::info!(event_id = %id, "event to be delivered again");
            Ok(())
        } else {
            Err(EventError::NotFound)
        }
    }

    /// Writes a `webhook.test` event, delivered like any other and listed in the feed;
    /// returns its id. Each call is a new event.
    pub async fn send_test(&self) -> Result<Uuid, EventError> {
        if !self.deliverable {
            return Err(EventError::NotDeliverable);
        }
        let id = feed::record_test(&self.pool).await?;
        tracing::info!(event_id = %id, "test event written");
        Ok(id)
    }
}
