//! Cost as data grows: create and list latency with N withdrawals already stored.

use std::time::Duration;

use crate::load::{self, Measured};
use crate::stack::Stack;
use crate::BenchResult;

/// The load points of the growth table run at this many clients, for this long.
const CLIENTS: usize = 16;
const SECS: u64 = 10;

pub struct Growth {
    pub rows: u64,
    pub create: Measured,
    pub list_by_user: Measured,
    pub list_by_user_deep: Measured,
    pub list_by_status: Measured,
}

/// Empties the withdrawal tables, stores `rows` confirmed withdrawals (with their hold and
/// debit entries) spread over the last 90 days and over `users`, then measures.
pub async fn measure(stack: &Stack, rows: u64, users: usize) -> BenchResult<Growth> {
    stack.wait_for_no_pending(Duration::from_secs(60)).await?;
    let started = std::time::Instant::now();
    sqlx::query(
        "TRUNCATE withdrawals, ledger_entries, idempotency_keys, callbacks, submission_jobs,
                  notification_outbox, bench_settle_targets",
    )
    .execute(&stack.pool)
    .await?;
    // Ids are UUIDv7-shaped (time first), as payoutd's own are, so keyset order is time order.
    sqlx::query(
        "WITH made AS (
             SELECT n, now() - (random() * interval '90 days') AS at,
                    'bench-' || (n % $2 + 1) AS user_id
             FROM generate_series(1, $1) AS n),
         shaped AS (
             SELECT (lpad(to_hex((extract(epoch FROM at) * 1000)::bigint), 12, '0')
                     || '7' || substr(md5(n::text), 1, 3) || '8' || substr(md5(n::text), 4, 15))::uuid AS id,
                    n, at, user_id FROM made),
         stored AS (
             INSERT INTO withdrawals (id, foreign_id, user_id, amount, currency, convert_to, address,
                                      end_user_reference, status, provider_id, provider_status,
                                      created_at, updated_at)
             SELECT id, 'seed-' || n, user_id, 10, 'EUR', 'BTC',
                    'bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq', user_id, 'confirmed', n,
                    'confirmed', at, at + interval '10 minutes'
             FROM shaped
             RETURNING id, user_id, created_at)
         INSERT INTO ledger_entries (id, user_id, currency, kind, amount, withdrawal_id, created_at)
         SELECT gen_random_uuid(), user_id, 'EUR', kind, 10, id, created_at
         FROM stored, (VALUES ('hold'), ('debit')) AS kinds(kind)",
    )
    .bind(rows as i64)
    .bind(users as i64)
    .execute(&stack.pool)
    .await?;
    sqlx::query("VACUUM ANALYZE").execute(&stack.pool).await?;
    eprintln!("  stored {rows} withdrawals in {:?}", started.elapsed());

    let secs = Duration::from_secs(SECS);
    eprintln!("  create");
    let create = load::creates(stack, CLIENTS, secs, users).await?;
    eprintln!("  list by user, first page");
    let list_by_user = load::gets(stack, CLIENTS, secs, users, |user| {
        format!("/v1/withdrawals?user_id=bench-{user}&limit=50")
    })
    .await?;
    // A cursor from the middle of the history: a page deep into a user's withdrawals.
    let (cursor,): (uuid::Uuid,) =
        sqlx::query_as("SELECT id FROM withdrawals ORDER BY id DESC OFFSET $1 LIMIT 1")
            .bind((rows / 2) as i64)
            .fetch_one(&stack.pool)
            .await?;
    eprintln!("  list by user, a page from the middle of its history");
    let list_by_user_deep = load::gets(stack, CLIENTS, secs, users, move |user| {
        format!("/v1/withdrawals?user_id=bench-{user}&limit=50&cursor={cursor}")
    })
    .await?;
    eprintln!("  list by status");
    let list_by_status = load::gets(stack, CLIENTS, secs, users, |_| {
        "/v1/withdrawals?status=confirmed&limit=50".into()
    })
    .await?;
    Ok(Growth {
        rows,
        create,
        list_by_user,
        list_by_user_deep,
        list_by_status,
    })
}
