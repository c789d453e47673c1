-- The least SQL a withdrawal create must do, as one transaction: hold the amount on the
-- balance row, store the withdrawal, write the hold ledger entry. payoutd's own create does
-- this plus the idempotency-key claim, the limits check and the submission job.
-- Variables: :users (how many seeded users, bench-1 .. bench-N).
\set uid random(1, :users)
\set r random(1, 9223372036854775807)
BEGIN;
UPDATE balances SET available = available - 10, held = held + 10, updated_at = now()
 WHERE user_id = 'bench-' || :uid::text AND currency = 'EUR' AND available >= 10;
INSERT INTO withdrawals (id, foreign_id, user_id, amount, currency, convert_to, address, end_user_reference)
VALUES (md5(:client_id::text || '.' || :r::text)::uuid, 'pgb-' || :client_id::text || '.' || :r::text,
        'bench-' || :uid::text, 10, 'EUR', 'BTC', 'bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq',
        'bench-' || :uid::text);
INSERT INTO ledger_entries (id, user_id, currency, kind, amount, withdrawal_id)
VALUES (gen_random_uuid(), 'bench-' || :uid::text, 'EUR', 'hold', 10,
        md5(:client_id::text || '.' || :r::text)::uuid);
END;
