-- Every row of a withdrawal's whole life, one transaction per step as without batching: the
-- hold, CoinsPaid's acceptance (as in create_full.sql), then its "confirmed" callback (stored
-- as received, the withdrawal confirmed, the held amount debited with its ledger entry, the
-- website's notification). The cost of the lifecycle's work done one request at a time, to set
-- beside the full lifecycle row. Variables: :users (bench-1 .. bench-N).
\set uid random(1, :users)
\set r random(1, 9223372036854775807)
\set pid random(1, 2000000000)
BEGIN;
INSERT INTO idempotency_keys (key, request_hash, withdrawal_id)
VALUES ('pgbf-' || :client_id::text || '.' || :r::text, '\x00'::bytea,
        md5('f' || :client_id::text || '.' || :r::text)::uuid);
UPDATE balances SET available = available - 10, held = held + 10, updated_at = now()
 WHERE user_id = 'bench-' || :uid::text AND currency = 'EUR' AND available >= 10;
INSERT INTO withdrawals (id, foreign_id, user_id, amount, currency, convert_to, address, end_user_reference)
VALUES (md5('f' || :client_id::text || '.' || :r::text)::uuid, 'pgbf-' || :client_id::text || '.' || :r::text,
        'bench-' || :uid::text, 10, 'EUR', 'BTC', 'bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq',
        'bench-' || :uid::text);
INSERT INTO ledger_entries (id, user_id, currency, kind, amount, withdrawal_id)
VALUES (gen_random_uuid(), 'bench-' || :uid::text, 'EUR', 'hold', 10,
        md5('f' || :client_id::text || '.' || :r::text)::uuid);
INSERT INTO submission_jobs (withdrawal_id, lease_id, attempts, run_at)
VALUES (md5('f' || :client_id::text || '.' || :r::text)::uuid, gen_random_uuid(), 1,
        now() + interval '120 seconds');
END;
BEGIN;
UPDATE withdrawals SET status = 'processing', provider_id = :pid,
       provider_status = 'processing', updated_at = now()
 WHERE id = md5('f' || :client_id::text || '.' || :r::text)::uuid AND status = 'pending';
DELETE FROM submission_jobs WHERE withdrawal_id = md5('f' || :client_id::text || '.' || :r::text)::uuid;
INSERT INTO notification_outbox (id, withdrawal_id, payload)
VALUES (gen_random_uuid(), md5('f' || :client_id::text || '.' || :r::text)::uuid,
        jsonb_build_object('id', gen_random_uuid(), 'type', 'withdrawal.status_changed',
            'created_at', '2026-11-25T00:00:00.000Z',
            'data', jsonb_build_object('withdrawal_id', md5('f' || :client_id::text || '.' || :r::text)::uuid,
                'foreign_id', 'pgbf-' || :client_id::text || '.' || :r::text,
                'user_id', 'bench-' || :uid::text, 'status', 'processing',
                'previous_status', 'pending', 'provider_status', 'processing',
                'amount', '10', 'currency', 'EUR', 'convert_to', 'BTC', 'error', null)));
END;
BEGIN;
SELECT id FROM withdrawals WHERE foreign_id = 'pgbf-' || :client_id::text || '.' || :r::text FOR UPDATE;
INSERT INTO callbacks (id, verified, raw_body, foreign_id, provider_status, outcome)
VALUES (gen_random_uuid(), true, convert_to(repeat('x', 900), 'UTF8'),
        'pgbf-' || :client_id::text || '.' || :r::text, 'confirmed', 'applied');
UPDATE withdrawals SET status = 'confirmed', provider_status = 'confirmed', updated_at = now()
 WHERE id = md5('f' || :client_id::text || '.' || :r::text)::uuid;
UPDATE balances SET held = held - 10, updated_at = now()
 WHERE user_id = 'bench-' || :uid::text AND currency = 'EUR' AND held >= 10;
INSERT INTO ledger_entries (id, user_id, currency, kind, amount, withdrawal_id)
VALUES (gen_random_uuid(), 'bench-' || :uid::text, 'EUR', 'debit', 10,
        md5('f' || :client_id::text || '.' || :r::text)::uuid);
INSERT INTO notification_outbox (id, withdrawal_id, payload)
VALUES (gen_random_uuid(), md5('f' || :client_id::text || '.' || :r::text)::uuid,
        jsonb_build_object('id', gen_random_uuid(), 'type', 'withdrawal.status_changed',
            'created_at', '2026-11-25T00:00:00.000Z',
            'data', jsonb_build_object('withdrawal_id', md5('f' || :client_id::text || '.' || :r::text)::uuid,
                'foreign_id', 'pgbf-' || :client_id::text || '.' || :r::text,
                'user_id', 'bench-' || :uid::text, 'status', 'confirmed',
                'previous_status', 'processing', 'provider_status', 'confirmed',
                'amount', '10', 'currency', 'EUR', 'convert_to', 'BTC', 'error', null)));
END;
