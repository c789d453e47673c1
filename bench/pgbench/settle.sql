-- The least SQL a "confirmed" callback must do, as one transaction: lock the withdrawal by
-- its foreign_id, store the callback as received, mark the withdrawal confirmed, take the
-- held amount off the balance and write the debit ledger entry. Targets are numbered
-- pending withdrawals in bench_settle_targets, each taken once through bench_settle_seq.
BEGIN;
SELECT w.id AS wid, w.user_id AS uid, w.amount AS amt, w.foreign_id AS fid
  FROM bench_settle_targets t JOIN withdrawals w ON w.id = t.id
 WHERE t.n = (SELECT nextval('bench_settle_seq'))
   FOR UPDATE OF w \gset
INSERT INTO callbacks (id, verified, raw_body, foreign_id, provider_status, outcome)
VALUES (gen_random_uuid(), true, convert_to(repeat('x', 900), 'UTF8'), :fid, 'confirmed', 'applied');
UPDATE withdrawals SET status = 'confirmed', provider_status = 'confirmed', updated_at = now()
 WHERE id = :wid;
UPDATE balances SET held = held - :amt, updated_at = now()
 WHERE user_id = :uid AND currency = 'EUR' AND held >= :amt;
INSERT INTO ledger_entries (id, user_id, currency, kind, amount, withdrawal_id)
VALUES (gen_random_uuid(), :uid, 'EUR', 'debit', :amt, :wid);
END;
