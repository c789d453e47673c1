//! Database start-up: create the database if missing, connect, migrate. Safe when several
//! replicas start at once (a lost CREATE DATABASE race is fine; sqlx migrations take an
//! advisory lock).

use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool};

use crate::config::DatabaseSettings;

pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

#[derive(Debug, thiserror::Error)]
pub enum DbSetupError {
    #[error("DATABASE_URL is not a valid PostgreSQL URL: {0}")]
    Url(sqlx::Error),
    #[error("cannot create the database: {0}")]
    Create(sqlx::Error),
    #[error("cannot connect: {0}")]
    Connect(sqlx::Error),
    #[error("migrations failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// Connects to the configured database, creating it first if needed, and applies migrations.
pub async fn connect_and_migrate(settings: &DatabaseSettings) -> Result<PgPool, DbSetupError> {
    let options = PgConnectOptions::from_str(settings.url.expose())
        .map_err(DbSetupError::Url)?
        .log_statements(tracing::log::LevelFilter::Debug)
        .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_secs(1));
    ensure_database(&options).await?;
    let pool = PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(Duration::from_secs(settings.acquire_timeout_secs))
        // No ping before each acquire: sqlx already pings every connection as it is released,
        // so an idle one is known good; the acquire ping was one more round trip on every
        // request (see BENCHMARKS.md). A connection killed while idle (PostgreSQL restarted)
        // fails its next query, which is answered 503 and the connection dropped.
        .test_before_acquire(false)
        .connect_with(options)
        .await
        .map_err(DbSetupError::Connect)?;
    MIGRATOR.run(&pool).await?;
    Ok(pool)
}

async fn ensure_database(options: &PgConnectOptions) -> Result<(), DbSetupError> {
    let name = options.get_database().unwrap_or("postgres").to_owned();
    let admin = options.clone().database("postgres");
    let mut conn = sqlx::PgConnection::connect_with(&admin)
        .await
        .map_err(DbSetupError::Connect)?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&name)
            .fetch_one(&mut conn)
            .await
            .map_err(DbSetupError::Connect)?;
    if !exists {
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        match sqlx::query(&format!("CREATE DATABASE {quoted}"))
            .execute(&mut conn)
            .await
        {
            Ok(_) => tracing::info!(database = %name, "created database"),
            // Another replica won the race: duplicate_database, or a unique violation on the catalog.
            Err(sqlx::Error::Database(e))
                if matches!(e.code().as_deref(), Some("42P04" | "23505")) => {}
            Err(e) => return Err(DbSetupError::Create(e)),
        }
    }
    let _ = conn.close().await;
    Ok(())
}

/// Readiness: the database answers and every migration this binary knows is applied.
pub async fn is_ready(pool: &PgPool) -> bool {
    let Some(latest) = MIGRATOR.iter().map(|m| m.version).max() else {
        return true;
    };
    let applied: Result<Option<i64>, _> =
        sqlx::query_scalar("SELECT max(version) FROM _sqlx_migrations WHERE success")
            .fetch_one(pool)
            .await;
    matches!(applied, Ok(Some(v)) if v >= latest)
}

/// Begins a batch transaction with settings for its statements (`unnest` over arrays), in
/// the same round trip as its `BEGIN`:
/// - their generic plan: PostgreSQL would otherwise plan them anew at every execution (each
///   array's length changes the custom plan's estimate, so it keeps preferring one), and
///   planning them cost more CPU than running them;
/// - no JIT: a generic plan's cost counts look-ups that its one-time filters skip, which put
///   the create batch's facts statement above `jit_above_cost`, and compiling it took ~25 ms
///   per batch for a statement that runs in well under one.
///
/// (BENCHMARKS.md, "What the batches cost PostgreSQL".) `SET LOCAL`: nothing outside the
/// transaction is affected.
pub async fn begin_batch_transaction(
    pool: &PgPool,
) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
    pool.begin_with("BEGIN; SET LOCAL plan_cache_mode = force_generic_plan; SET LOCAL jit = off")
        .await
}
