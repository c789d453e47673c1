-- MiCA travel-rule data (sender and receiver of a withdrawal): personal data, so kept apart
-- from `withdrawals`, whose rows feed views, listings, notifications and logs. Written in the
-- create statement, read by every submission attempt, deleted by the purge loop once the
-- withdrawal has been terminal for `travel_rule.retention_days`.
CREATE TABLE withdrawal_travel_rules (
    withdrawal_id  UUID        NOT NULL,
    -- CoinsPaid's fields exactly as sent: sender_type, sender_data, receiver_type, receiver_data.
    data           JSONB       NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT withdrawal_travel_rules_pkey PRIMARY KEY (withdrawal_id),
    CONSTRAINT withdrawal_travel_rules_withdrawal_fkey
        FOREIGN KEY (withdrawal_id) REFERENCES withdrawals (id)
);
