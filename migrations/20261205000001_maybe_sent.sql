-- "CoinsPaid may have it" is a durable fact: once set, nothing clears it.

-- The earliest moment a withdrawal whose outcome is unknown may be sent again, after a look-up
-- that finds no record of it: no request of ours can still be on its way to, or being worked
-- on at, CoinsPaid by then (the CoinsPaid timeout plus a margin after the last such request,
-- or after the moment a crashed attempt was found). A look-up before it could race a slow create.
ALTER TABLE withdrawals ADD COLUMN resend_after TIMESTAMPTZ;

-- The flag is one-way in the database too, whatever code or person writes the row.
CREATE FUNCTION withdrawals_outcome_unknown_is_one_way() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'withdrawals.outcome_unknown cannot be cleared (withdrawal %)', OLD.id
        USING ERRCODE = 'check_violation';
END;
$$;
CREATE TRIGGER withdrawals_outcome_unknown_one_way
    BEFORE UPDATE OF outcome_unknown ON withdrawals
    FOR EACH ROW WHEN (OLD.outcome_unknown AND NOT NEW.outcome_unknown)
    EXECUTE FUNCTION withdrawals_outcome_unknown_is_one_way();

-- Evidence the earlier rule read from attempt counts, made durable before that rule goes: a
-- job that has made a call without a definitive answer (a retried attempt, a crash mid-call
-- adopted by the worker) means the payout may exist. The quiet period is the defaults' (a 15 s
-- CoinsPaid timeout plus the 30 s margin).
UPDATE withdrawals w SET outcome_unknown = true, resend_after = now() + interval '45 seconds'
FROM submission_jobs j
WHERE j.withdrawal_id = w.id AND w.status = 'pending' AND j.attempts >= 1 AND NOT w.outcome_unknown;
