-- Reconciliation, website notifications and withdrawal limits.

-- When the reconciler may next look a withdrawal up at CoinsPaid. Claimed like a lease:
-- pushed forward in the claiming statement, so replicas never look up the same one at once.
ALTER TABLE withdrawals ADD COLUMN reconcile_after TIMESTAMPTZ NOT NULL DEFAULT now();
CREATE INDEX withdrawals_reconcile_idx ON withdrawals (reconcile_after)
    WHERE status IN ('pending', 'processing');

-- Status changes to tell the website about, written in the same transaction as the change
-- and delivered at least once by the notifier.
CREATE TABLE notification_outbox (
    id               UUID        NOT NULL,
    withdrawal_id    UUID        NOT NULL,
    payload          JSONB       NOT NULL,
    attempts         INTEGER     NOT NULL DEFAULT 0,
    next_attempt_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    delivered_at     TIMESTAMPTZ,
    last_error       TEXT,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT notification_outbox_pkey PRIMARY KEY (id),
    CONSTRAINT notification_outbox_withdrawal_fkey
        FOREIGN KEY (withdrawal_id) REFERENCES withdrawals (id)
);
CREATE INDEX notification_outbox_due_idx ON notification_outbox (next_attempt_at)
    WHERE delivered_at IS NULL;

-- Per-user withdrawal limits; a user without a row gets the configured per-currency defaults.
CREATE TABLE user_limits (
    user_id             TEXT        NOT NULL,
    currency            TEXT        NOT NULL,
    max_per_withdrawal  NUMERIC,
    max_per_day         NUMERIC,
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT user_limits_pkey PRIMARY KEY (user_id, currency),
    CONSTRAINT user_limits_positive
        CHECK ((max_per_withdrawal IS NULL OR max_per_withdrawal > 0) AND (max_per_day IS NULL OR max_per_day > 0))
);
-- The rolling 24-hour sum per user and currency.
CREATE INDEX withdrawals_user_currency_created_idx ON withdrawals (user_id, currency, created_at);
