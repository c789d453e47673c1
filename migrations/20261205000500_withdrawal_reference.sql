-- The website's own permanent id for a payout (CONTRACT section 8). Idempotency-Keys are
-- deleted after retention.idempotency_key_hours; a reference never is, so a website retrying
-- late with it replays instead of paying out twice.
ALTER TABLE withdrawals ADD COLUMN reference TEXT;
CREATE UNIQUE INDEX withdrawals_reference_key ON withdrawals (reference) WHERE reference IS NOT NULL;

-- Claimed in the create transaction before the withdrawal row exists (as idempotency keys
-- are), so a concurrent request with the same reference waits for this one and replays it.
-- `request_hash` tells the same request again from a different one.
CREATE TABLE withdrawal_references (
    reference      TEXT        NOT NULL,
    request_hash   BYTEA       NOT NULL,
    withdrawal_id  UUID        NOT NULL,
    CONSTRAINT withdrawal_references_pkey PRIMARY KEY (reference),
    CONSTRAINT withdrawal_references_withdrawal_fkey
        FOREIGN KEY (withdrawal_id) REFERENCES withdrawals (id) DEFERRABLE INITIALLY DEFERRED
);
