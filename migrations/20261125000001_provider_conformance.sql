-- Speaking CoinsPaid as documented: what operators must see, and what a later refusal may mean.

-- Why the last provider report was not applied (a report that does not match the withdrawal,
-- one that contradicts a terminal status, an undocumented status word, an unreadable body).
-- Shown on the withdrawal; no money moved because of it.
ALTER TABLE withdrawals ADD COLUMN anomaly TEXT;
-- Set once any submission attempt had no definitive answer (timeout, 5xx, redirect, garbage,
-- a crash mid-call): from then on the payout may exist at CoinsPaid, so a later refusal is
-- looked up, never taken as proof that nothing was sent.
ALTER TABLE withdrawals ADD COLUMN outcome_unknown BOOLEAN NOT NULL DEFAULT false;

-- Why a job is parked: `attempts_exhausted` may be resubmitted by the reconciler once
-- CoinsPaid has no record of it; `needs_operator` waits for a person
-- (a refusal after an unknown outcome that a look-up could not explain).
ALTER TABLE submission_jobs ADD COLUMN park_reason TEXT;
