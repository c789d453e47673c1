-- payoutd core schema. Money is NUMERIC, never float. Every constraint is named so the code
-- can map a violation to a client error by name rather than by message text.

CREATE TABLE balances (
    user_id     TEXT        NOT NULL,
    currency    TEXT        NOT NULL,
    available   NUMERIC     NOT NULL DEFAULT 0,
    held        NUMERIC     NOT NULL DEFAULT 0,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT balances_pkey PRIMARY KEY (user_id, currency),
    CONSTRAINT balances_available_not_negative CHECK (available >= 0),
    CONSTRAINT balances_held_not_negative CHECK (held >= 0)
);

CREATE TABLE withdrawals (
    id                  UUID        NOT NULL,
    foreign_id          TEXT        NOT NULL,
    user_id             TEXT        NOT NULL,
    amount              NUMERIC     NOT NULL,
    currency            TEXT        NOT NULL,
    convert_to          TEXT,
    address             TEXT        NOT NULL,
    tag                 TEXT,
    end_user_reference  TEXT        NOT NULL,
    status              TEXT        NOT NULL DEFAULT 'pending',
    provider_id         BIGINT,
    provider_status     TEXT,
    sent_amount         NUMERIC,
    sent_currency       TEXT,
    received_amount     NUMERIC,
    received_currency   TEXT,
    fees                JSONB       NOT NULL DEFAULT '[]',
    txids               JSONB       NOT NULL DEFAULT '[]',
    error               TEXT,
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT withdrawals_pkey PRIMARY KEY (id),
    CONSTRAINT withdrawals_foreign_id_key UNIQUE (foreign_id),
    CONSTRAINT withdrawals_amount_positive CHECK (amount > 0),
    CONSTRAINT withdrawals_status_known
        CHECK (status IN ('pending', 'processing', 'confirmed', 'cancelled', 'rejected'))
);
-- Newest-first listings per user and per status use keyset pagination on the UUIDv7 id.
CREATE INDEX withdrawals_user_id_idx ON withdrawals (user_id, id DESC);
CREATE INDEX withdrawals_status_id_idx ON withdrawals (status, id DESC);
-- The age of the oldest open withdrawal is a metric and the reconciler's work list.
CREATE INDEX withdrawals_open_created_idx ON withdrawals (created_at)
    WHERE status IN ('pending', 'processing');

CREATE TABLE ledger_entries (
    id             UUID        NOT NULL,
    user_id        TEXT        NOT NULL,
    currency       TEXT        NOT NULL,
    kind           TEXT        NOT NULL,
    amount         NUMERIC     NOT NULL,
    withdrawal_id  UUID,
    reference      TEXT,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT ledger_entries_pkey PRIMARY KEY (id),
    CONSTRAINT ledger_entries_amount_positive CHECK (amount > 0),
    CONSTRAINT ledger_entries_kind_known CHECK (kind IN ('credit', 'hold', 'release', 'debit')),
    -- A credit is keyed by the website's reference; the other kinds by their withdrawal.
    CONSTRAINT ledger_entries_kind_key_present CHECK (
        (kind = 'credit' AND reference IS NOT NULL AND withdrawal_id IS NULL)
        OR (kind <> 'credit' AND withdrawal_id IS NOT NULL)
    ),
    CONSTRAINT ledger_entries_withdrawal_fkey
        FOREIGN KEY (withdrawal_id) REFERENCES withdrawals (id)
);
-- These three make a second credit, hold or settlement impossible rather than merely checked.
CREATE UNIQUE INDEX ledger_entries_credit_reference_key
    ON ledger_entries (user_id, reference) WHERE kind = 'credit';
CREATE UNIQUE INDEX ledger_entries_withdrawal_hold_key
    ON ledger_entries (withdrawal_id) WHERE kind = 'hold';
-- A withdrawal settles once: a debit or a release, never both, never twice.
CREATE UNIQUE INDEX ledger_entries_withdrawal_settlement_key
    ON ledger_entries (withdrawal_id) WHERE kind IN ('release', 'debit');
CREATE INDEX ledger_entries_user_currency_idx ON ledger_entries (user_id, currency, id DESC);
CREATE INDEX ledger_entries_user_idx ON ledger_entries (user_id, id DESC);

CREATE TABLE idempotency_keys (
    key            TEXT        NOT NULL,
    request_hash   BYTEA       NOT NULL,
    withdrawal_id  UUID        NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT idempotency_keys_pkey PRIMARY KEY (key),
    -- Deferred: the key is claimed first in the create transaction, before the withdrawal row
    -- exists, so a concurrent duplicate waits on the key instead of racing for the balance.
    CONSTRAINT idempotency_keys_withdrawal_fkey
        FOREIGN KEY (withdrawal_id) REFERENCES withdrawals (id) DEFERRABLE INITIALLY DEFERRED
);

-- Every callback that reached us, verified or not, exactly as received.
CREATE TABLE callbacks (
    id           UUID        NOT NULL,
    received_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    verified     BOOLEAN     NOT NULL,
    raw_body     BYTEA       NOT NULL,
    foreign_id   TEXT,
    provider_status TEXT,
    -- applied | duplicate | ignored | anomaly | rejected (bad signature) | invalid (bad JSON)
    outcome      TEXT        NOT NULL,
    detail       TEXT,
    CONSTRAINT callbacks_pkey PRIMARY KEY (id)
);
CREATE INDEX callbacks_foreign_id_idx ON callbacks (foreign_id, received_at);

-- The submission queue. A row exists while a withdrawal still has to reach CoinsPaid.
-- Workers lease a row by pushing run_at forward and stamping lease_id, in a short
-- transaction; the provider call happens outside any transaction.
CREATE TABLE submission_jobs (
    withdrawal_id  UUID        NOT NULL,
    attempts       INTEGER     NOT NULL DEFAULT 0,
    run_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    lease_id       UUID,
    last_error     TEXT,
    -- A job that used up its attempts parks here; its withdrawal stays pending and held.
    parked         BOOLEAN     NOT NULL DEFAULT false,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT submission_jobs_pkey PRIMARY KEY (withdrawal_id),
    CONSTRAINT submission_jobs_withdrawal_fkey
        FOREIGN KEY (withdrawal_id) REFERENCES withdrawals (id)
);
CREATE INDEX submission_jobs_due_idx ON submission_jobs (run_at) WHERE NOT parked;
