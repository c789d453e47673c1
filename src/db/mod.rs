//! Database start-up: create the database if missing, connect, migrate. Safe when several
//! replicas start at once (a lost CREATE DATABASE race is fine; sqlx migrations take an
//! advisory lock).

pub mod batch;
pub mod failover;
pub mod retention;

use std::str::FromStr;
use std::time::{Duration, Instant};

use serde::Deserialize;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool};

use crate::coinspaid::signing::SecretString;

/// `[database]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// May carry a password, hence secret.
    pub url: SecretString,
    pub max_connections: u32,
    pub acquire_timeout_secs: u64,
    /// At start, how long to wait for a writable primary (unreachable, or read-only during a
    /// failover) before giving up; 0: do not wait.
    pub startup_wait_secs: u64,
}

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
    #[error("no writable primary within {waited_secs} s (database.startup_wait_secs): {last}")]
    NoPrimary { waited_secs: u64, last: String },
}

/// Connects to the configured database, creating it first if needed, and applies migrations.
/// While the database is unreachable or read-only (a standby, or a primary being demoted
/// during a failover) it waits for a writable primary, up to `database.startup_wait_secs`.
pub async fn connect_and_migrate(settings: &DatabaseSettings) -> Result<PgPool, DbSetupError> {
    let options = PgConnectOptions::from_str(settings.url.expose())
        .map_err(DbSetupError::Url)?
        .log_statements(tracing::log::LevelFilter::Debug)
        .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_secs(1));
    let deadline = Instant::now() + Duration::from_secs(settings.startup_wait_secs);
    let mut warned_at: Option<Instant> = None;
    loop {
        match try_connect_and_migrate(settings, &options).await {
            Ok(pool) => return Ok(pool),
            Err(Attempt::Fatal(err)) => return Err(err),
            Err(Attempt::NotYet(reason)) => {
                if Instant::now() >= deadline {
                    return Err(DbSetupError::NoPrimary {
                        waited_secs: settings.startup_wait_secs,
                        last: reason,
                    });
                }
                if warned_at.is_none_or(|at| at.elapsed() >= Duration::from_secs(5)) {
                    tracing::warn!(%reason, "waiting for a writable PostgreSQL primary before migrating");
                    warned_at = Some(Instant::now());
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

enum Attempt {
    /// Unreachable or read-only for now: wait and try again.
    NotYet(String),
    Fatal(DbSetupError),
}

fn classify(err: sqlx::Error, fatal: fn(sqlx::Error) -> DbSetupError) -> Attempt {
    if crate::db::failover::is_unavailable(&err) {
        Attempt::NotYet(err.to_string())
    } else {
        Attempt::Fatal(fatal(err))
    }
}

async fn try_connect_and_migrate(
    settings: &DatabaseSettings,
    options: &PgConnectOptions,
) -> Result<PgPool, Attempt> {
    ensure_database(options).await.map_err(|e| match e {
        DbSetupError::Connect(e) => classify(e, DbSetupError::Connect),
        DbSetupError::Create(e) => classify(e, DbSetupError::Create),
        other => Attempt::Fatal(other),
    })?;
    let pool = PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(Duration::from_secs(settings.acquire_timeout_secs))
        // No ping before each acquire: sqlx already pings every connection as it is released,
        // so an idle one is known good; a ping on acquire would be one more round trip on every
        // request (see BENCHMARKS.md). A connection killed while idle (PostgreSQL restarted)
        // fails its next query, which is answered 503 and the connection dropped.
        .test_before_acquire(false)
        // A connection to a primary that was demoted stays open and answers every write
        // with 25006; once one did, every connection opened before is closed instead of
        // handed out (an atomic load, no round trip).
        .before_acquire(|_conn, meta| {
            Box::pin(async move { Ok(!crate::db::failover::opened_before_read_only(meta.age)) })
        })
        .connect_with(options.clone())
        .await
        .map_err(|e| classify(e, DbSetupError::Connect))?;
    // Migrating takes an advisory lock and writes: on a read-only node both fail, and an
    // error from the middle of a migration reads worse than saying what is wrong up front.
    match writable(&pool).await {
        Ok(true) => {}
        Ok(false) => {
            pool.close().await;
            return Err(Attempt::NotYet(
                "the database is read-only (a standby, or a primary being demoted)".into(),
            ));
        }
        Err(e) => return Err(classify(e, DbSetupError::Connect)),
    }
    match MIGRATOR.run(&pool).await {
        Ok(()) => Ok(pool),
        Err(sqlx::migrate::MigrateError::Execute(e))
        | Err(sqlx::migrate::MigrateError::ExecuteMigration(e, _))
            if crate::db::failover::is_unavailable(&e) =>
        {
            pool.close().await;
            Err(Attempt::NotYet(e.to_string()))
        }
        Err(e) => Err(Attempt::Fatal(e.into())),
    }
}

/// Whether the server behind `pool` accepts writes: not in recovery (a standby), and not
/// read-only by setting (`default_transaction_read_only`, as a demoted or fenced node has).
pub async fn writable(pool: &PgPool) -> Result<bool, sqlx::Error> {
    let read_only = sqlx::query_scalar!(
        r#"SELECT pg_is_in_recovery() OR current_setting('transaction_read_only') = 'on'
               AS "read_only!""#
    )
    .fetch_one(pool)
    .await?;
    if read_only {
        crate::db::failover::note_read_only();
    }
    Ok(!read_only)
}

async fn ensure_database(options: &PgConnectOptions) -> Result<(), DbSetupError> {
    let name = options.get_database().unwrap_or("postgres").to_owned();
    let admin = options.clone().database("postgres");
    let mut conn = sqlx::PgConnection::connect_with(&admin)
        .await
        .map_err(DbSetupError::Connect)?;
    let exists = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS "exists!""#,
        name
    )
    .fetch_one(&mut conn)
    .await
    .map_err(DbSetupError::Connect)?;
    if !exists {
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        // Built at run time: a database name is an identifier, which no parameter can carry.
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

/// Readiness: a writable primary answers and every migration this binary knows is applied.
/// A read-only node (a standby, or a primary demoted in a failover) is not ready: every
/// write would fail there.
pub async fn readiness(pool: &PgPool) -> Readiness {
    let latest = MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
    let answer = sqlx::query!(
        r#"SELECT (SELECT max(version) FROM _sqlx_migrations WHERE success) AS applied,
                  pg_is_in_recovery() OR current_setting('transaction_read_only') = 'on'
                      AS "read_only!""#
    )
    .fetch_one(pool)
    .await
    .map(|row| (row.applied, row.read_only));
    match answer {
        Ok((_, true)) => {
            crate::db::failover::note_read_only();
            Readiness::ReadOnly
        }
        Ok((applied, false)) if applied.unwrap_or(0) >= latest => {
            crate::db::failover::recovered();
            Readiness::Ready
        }
        Ok(_) => Readiness::Migrating,
        Err(_) => Readiness::Unavailable,
    }
}

/// What `/readyz` reports for the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    /// Reachable, but read-only: no writable primary.
    ReadOnly,
    /// Writable, but this binary's migrations are not all applied.
    Migrating,
    Unavailable,
}

impl Readiness {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ready => "ok",
            Self::ReadOnly => "read_only",
            Self::Migrating => "migrations_pending",
            Self::Unavailable => "unavailable",
        }
    }
}

/// Readiness as a yes or no.
pub async fn is_ready(pool: &PgPool) -> bool {
    readiness(pool).await == Readiness::Ready
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

/// A Rust enum stored as `TEXT`, decoded through its `TryFrom<String>`, so the compile-checked
/// macros can name it in a column's type override (`status AS "status: WithdrawalStatus"`).
macro_rules! text_column {
    ($ty:ty) => {
        impl sqlx::Type<sqlx::Postgres> for $ty {
            fn type_info() -> sqlx::postgres::PgTypeInfo {
                <String as sqlx::Type<sqlx::Postgres>>::type_info()
            }

            fn compatible(ty: &sqlx::postgres::PgTypeInfo) -> bool {
                <String as sqlx::Type<sqlx::Postgres>>::compatible(ty)
            }
        }

        impl<'r> sqlx::Decode<'r, sqlx::Postgres> for $ty {
            fn decode(
                value: sqlx::postgres::PgValueRef<'r>,
            ) -> Result<Self, sqlx::error::BoxDynError> {
                let text = <String as sqlx::Decode<'r, sqlx::Postgres>>::decode(value)?;
                Ok(<$ty>::try_from(text)?)
            }
        }
    };
}
pub(crate) use text_column;
