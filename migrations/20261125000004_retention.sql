-- The retention job deletes by age; these keep its scans to the rows it deletes.
CREATE INDEX callbacks_received_at_idx ON callbacks (received_at);
CREATE INDEX notification_outbox_created_at_idx ON notification_outbox (created_at);
CREATE INDEX idempotency_keys_created_at_idx ON idempotency_keys (created_at);
