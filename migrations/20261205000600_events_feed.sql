-- The events feed (GET /v1/events) is the notification outbox read in commit order.
--
-- Event ids are UUIDv7 made before commit on each replica's clock, and `created_at` is the
-- transaction's start: neither follows commit order, so a reader paging on them could pass an
-- event that commits later below its cursor. `tx_id` is the writing transaction's id; the
-- feed returns only rows whose transaction is below the oldest one still running
-- (`pg_snapshot_xmin(pg_current_snapshot())`), where every transaction has ended, and pages on
-- (tx_id, id). A transaction that has not ended yet gets a tx_id above that horizon, and so
-- does any that has not started: nothing can appear below a cursor once it is handed out.
-- The volatile default rewrites the table once; rows already there share this migration's
-- transaction id and keep their id order.
ALTER TABLE notification_outbox
    ADD COLUMN tx_id xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX notification_outbox_feed_idx ON notification_outbox (tx_id, id);

-- A `webhook.test` event belongs to no withdrawal.
ALTER TABLE notification_outbox ALTER COLUMN withdrawal_id DROP NOT NULL;
