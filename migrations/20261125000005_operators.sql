-- Operators in control: approvals, a pause switch, an audit trail, and what operators look at.

-- A withdrawal held for an operator's approval before it is sent.
ALTER TABLE withdrawals DROP CONSTRAINT withdrawals_status_known;
ALTER TABLE withdrawals ADD CONSTRAINT withdrawals_status_known
    CHECK (status IN ('awaiting_approval', 'pending', 'processing', 'confirmed', 'cancelled', 'rejected'));
-- Why the approval policy held it (`amount at or above 1000 EUR`, `first withdrawal`, `user flagged`).
ALTER TABLE withdrawals ADD COLUMN review_reason TEXT;
-- Set when the reconciler finds no record at CoinsPaid of a withdrawal it had accepted.
ALTER TABLE withdrawals ADD COLUMN missing_since TIMESTAMPTZ;
CREATE INDEX withdrawals_awaiting_idx ON withdrawals (id) WHERE status = 'awaiting_approval';
-- The merchant-wide daily cap sums a currency across users.
CREATE INDEX withdrawals_currency_created_idx ON withdrawals (currency, created_at);

-- Users whose every withdrawal needs an operator's approval; set by the website or an operator.
CREATE TABLE user_review_flags (
    user_id     TEXT        NOT NULL,
    reason      TEXT        NOT NULL,
    set_by      TEXT        NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT user_review_flags_pkey PRIMARY KEY (user_id)
);

-- Submissions paused for every currency (`scope` = '*') or for one currency code. Stored here,
-- not in memory, so a pause holds across restarts and for every replica.
CREATE TABLE submission_pauses (
    scope      TEXT        NOT NULL,
    reason     TEXT        NOT NULL,
    paused_by  TEXT        NOT NULL,
    paused_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT submission_pauses_pkey PRIMARY KEY (scope)
);

-- Every operator action and every approval decision: who, when, what, why, before and after.
CREATE TABLE audit_log (
    id             UUID        NOT NULL,
    at             TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- An operator's name from PAYOUTD_ADMIN_TOKENS, `website` or `policy`.
    actor          TEXT        NOT NULL,
    action         TEXT        NOT NULL,
    withdrawal_id  UUID,
    reason         TEXT,
    before         JSONB,
    after          JSONB,
    CONSTRAINT audit_log_pkey PRIMARY KEY (id),
    CONSTRAINT audit_log_withdrawal_fkey FOREIGN KEY (withdrawal_id) REFERENCES withdrawals (id)
);
CREATE INDEX audit_log_withdrawal_idx ON audit_log (withdrawal_id, id);

-- Append-only: the database itself refuses to change or delete a row.
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only' USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_log_no_update_or_delete BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
