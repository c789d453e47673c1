//! What the benchmark runs against: a fresh database, the release `payoutd serve` as a child
//! process (so its RSS is its own), and the CoinsPaid simulator in this process.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use payoutd::coinspaid::signing::SecretString;
use payoutd::coinspaid::{Credentials, Signer};
use payoutd::simulator::{Simulator, SimulatorControl, SimulatorSettings};
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgConnection, PgPool};
use tokio::process::{Child, Command};

use crate::{BenchResult, BenchSettings};

pub const API_TOKEN: &str = "payoutd-bench-token-0123456789";
pub const KEY: &str = "bench-key";
const SECRET: &str = "bench-secret-not-a-real-one";

/// `target/bench`, created on first use.
pub fn output_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target.join("bench");
    std::fs::create_dir_all(&dir).expect("target/bench is writable");
    dir
}

/// A confirmed callback, body and signature ready to post.
pub struct SignedCallback {
    pub body: Vec<u8>,
    pub signature: String,
}

pub struct Stack {
    pub db_url: String,
    /// The benchmark's own connections, for setup and for reading results.
    pub pool: PgPool,
    pub http: reqwest::Client,
    pub base_url: String,
    /// Every replica's address (`base_url` is the first); load is spread round-robin.
    pub base_urls: Vec<String>,
    pub simulator: SimulatorControl,
    signer: Signer,
    _simulator: Simulator,
    service: Child,
    /// Replicas after the first, on the same database (`BENCH_REPLICAS`).
    more_services: Vec<Child>,
    peak_rss_kib: Arc<AtomicU64>,
}

impl Stack {
    pub async fn start(settings: &BenchSettings) -> BenchResult<Self> {
        let db_url = fresh_database(&settings.pg_url, &settings.db).await?;

        // The service's port is picked by binding and releasing it, so the simulator can be
        // told where to post callbacks before the service starts.
        let service_addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let base_url = format!("http://{service_addr}");
        let credentials = Credentials {
            key: KEY.into(),
            secret: SecretString::new(SECRET),
        };
        let simulator = Simulator::spawn(
            SimulatorSettings {
                credentials: credentials.clone(),
                callback_url: Some(format!("{base_url}/v1/callbacks/coinspaid")),
                callback_delay: Duration::ZERO,
            },
            tokio::net::TcpListener::bind("127.0.0.1:0").await?,
        )
        .await?;

        let service = spawn_service(&db_url, service_addr, &simulator, "payoutd.log")?;
        let mut base_urls = vec![base_url.clone()];
        let mut more_services = Vec::new();
        for replica in 2..=settings.replicas {
            let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
            more_services.push(spawn_service(
                &db_url,
                addr,
                &simulator,
                &format!("payoutd-{replica}.log"),
            )?);
            base_urls.push(format!("http://{addr}"));
        }
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(1024)
            .timeout(Duration::from_secs(30))
            .build()?;
        for url in &base_urls {
            wait_ready(&http, url).await?;
        }
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .connect(&db_url)
            .await?;

        let peak_rss_kib = Arc::new(AtomicU64::new(0));
        for pid in std::iter::once(&service)
            .chain(&more_services)
            .filter_map(Child::id)
        {
            let peak = peak_rss_kib.clone();
            tokio::spawn(async move {
                // VmHWM is the kernel's own high-water mark; sampling it keeps the last value
                // even after the process has exited.
                while let Some(kib) = rss_kib(pid) {
                    peak.fetch_max(kib, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            });
        }
        Ok(Self {
            db_url,
            pool,
            http,
            base_url,
            base_urls,
            simulator: simulator.control(),
            signer: Signer::new(credentials),
            _simulator: simulator,
            service,
            more_services,
            peak_rss_kib,
        })
    }

    /// Every replica's process id.
    pub fn service_pids(&self) -> Vec<u32> {
        std::iter::once(&self.service)
            .chain(&self.more_services)
            .filter_map(Child::id)
            .collect()
    }

    /// `path` on each replica in turn: the next request's URL.
    pub fn round_robin(&self, path: &str) -> impl Fn() -> String + Send + Sync + 'static {
        let urls: Vec<String> = self
            .base_urls
            .iter()
            .map(|b| format!("{b}{path}"))
            .collect();
        let next = std::sync::atomic::AtomicUsize::new(0);
        move || urls[next.fetch_add(1, Ordering::Relaxed) % urls.len()].clone()
    }

    /// Per batcher (`create`, `accepted`, ...): (requests, batches) so far, summed over the
    /// replicas, from their `/metrics`. Zeros for a build without group commit.
    pub async fn batch_counters(&self) -> std::collections::BTreeMap<String, (f64, f64)> {
        let mut counters = std::collections::BTreeMap::new();
        for base in &self.base_urls {
            let Ok(response) = self.http.get(format!("{base}/metrics")).send().await else {
                continue;
            };
            let text = response.text().await.unwrap_or_default();
            for line in text.lines() {
                for (metric, slot) in [
                    ("payoutd_batched_requests_total{batch=\"", 0),
                    ("payoutd_batches_total{batch=\"", 1),
                ] {
                    let Some(rest) = line.strip_prefix(metric) else {
                        continue;
                    };
                    let Some((name, value)) = rest.split_once("\"} ") else {
                        continue;
                    };
                    let value: f64 = value.trim().parse().unwrap_or(0.0);
                    let entry: &mut (f64, f64) = counters.entry(name.to_owned()).or_default();
                    if slot == 0 {
                        entry.0 += value;
                    } else {
                        entry.1 += value;
                    }
                }
            }
        }
        counters
    }

    pub fn peak_rss_kib(&self) -> u64 {
        self.peak_rss_kib.load(Ordering::Relaxed)
    }

    /// Credits every benchmark user with far more than the run can spend.
    pub async fn seed_users(&self, users: usize) -> BenchResult<()> {
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        let per_task = users.div_ceil(16);
        for chunk in 0..16 {
            let http = self.http.clone();
            let base = self.base_url.clone();
            tasks.spawn(async move {
                for user in (chunk * per_task + 1)..=((chunk + 1) * per_task).min(users) {
                    let response = http
                        .post(format!("{base}/v1/users/bench-{user}/credits"))
                        .bearer_auth(API_TOKEN)
                        .json(&serde_json::json!({
                            "currency": "EUR", "amount": "1000000000.00", "reference": "bench-seed"
                        }))
                        .send()
                        .await?;
                    if !response.status().is_success() {
                        return Err(format!("credit failed: {}", response.text().await?).into());
                    }
                }
                Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
            });
        }
        while let Some(done) = tasks.join_next().await {
            done??;
        }
        eprintln!("seeded {users} users in {:?}", started.elapsed());
        Ok(())
    }

    /// Waits until every withdrawal the service created has reached the simulator.
    pub async fn wait_for_no_pending(&self, timeout: Duration) -> BenchResult<Duration> {
        let started = Instant::now();
        let deadline = started + timeout;
        loop {
            let (jobs,): (i64,) = sqlx::query_as(
                "SELECT (SELECT count(*) FROM submission_jobs)
                      + (SELECT count(*) FROM withdrawals
                         WHERE status = 'pending' AND foreign_id LIKE 'pd-%')",
            )
            .fetch_one(&self.pool)
            .await?;
            if jobs == 0 {
                return Ok(started.elapsed());
            }
            if Instant::now() > deadline {
                return Err(format!("{jobs} submissions still queued after {timeout:?}").into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Runs a pgbench script (see `pgbench::run`), then retires what it left behind: its
    /// `pending` withdrawals and their submission jobs, whose leases would run out after
    /// `worker.lease_secs` and make payoutd take them over and submit them to the simulator in
    /// the middle of a later point. Cancelled and without jobs, they are history to every job
    /// of the service.
    pub async fn pgbench(
        &self,
        script: &str,
        clients: usize,
        duration: Duration,
        users: usize,
    ) -> BenchResult<crate::pgbench::Limit> {
        let limit = crate::pgbench::run(&self.db_url, script, clients, duration, users).await?;
        sqlx::query(
            "WITH jobs AS (
                 DELETE FROM submission_jobs j USING withdrawals w
                 WHERE j.withdrawal_id = w.id AND w.foreign_id NOT LIKE 'pd-%')
             UPDATE withdrawals SET status = 'cancelled'
             WHERE status = 'pending' AND foreign_id NOT LIKE 'pd-%'",
        )
        .execute(&self.pool)
        .await?;
        Ok(limit)
    }

    /// A signed "confirmed" callback for every withdrawal the service has in `processing`,
    /// exactly as the simulator would post it.
    pub async fn processing_callbacks(&self) -> BenchResult<Vec<SignedCallback>> {
        let foreign_ids: Vec<(String,)> = sqlx::query_as(
            // payoutd's own (pgbench's rows have other foreign_id prefixes).
            "SELECT foreign_id FROM withdrawals
             WHERE status = 'processing' AND foreign_id LIKE 'pd-%' ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(foreign_ids
            .into_iter()
            .filter_map(|(foreign_id,)| self.simulator.callback_body(&foreign_id, "confirmed"))
            .map(|body| SignedCallback {
                signature: self.signer.sign(&body),
                body,
            })
            .collect())
    }

    /// Fresh pending, held withdrawals numbered for `settle.sql`: more than the fastest run
    /// seen here could take in `secs`, so no pgbench client runs dry.
    pub async fn prepare_settle_targets(&self, secs: u64) -> BenchResult<()> {
        let count = 8_000 * secs as i64;
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS bench_settle_targets (n BIGINT PRIMARY KEY, id UUID NOT NULL)",
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query("CREATE SEQUENCE IF NOT EXISTS bench_settle_seq")
            .execute(&mut *tx)
            .await?;
        sqlx::query("TRUNCATE bench_settle_targets")
            .execute(&mut *tx)
            .await?;
        sqlx::query("ALTER SEQUENCE bench_settle_seq RESTART WITH 1")
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "WITH fresh AS (
                 INSERT INTO withdrawals (id, foreign_id, user_id, amount, currency, convert_to,
                                          address, end_user_reference)
                 SELECT gen_random_uuid(), 'pgs-' || gen_random_uuid(), 'bench-' || (n % $2 + 1),
                        10, 'EUR', 'BTC', 'bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq', 'bench'
                 FROM generate_series(1, $1) AS n
                 RETURNING id, user_id, amount),
             held AS (
                 INSERT INTO ledger_entries (id, user_id, currency, kind, amount, withdrawal_id)
                 SELECT gen_random_uuid(), user_id, 'EUR', 'hold', amount, id FROM fresh)
             INSERT INTO bench_settle_targets (n, id)
             SELECT row_number() OVER (), id FROM fresh",
        )
        .bind(count)
        .bind(self.users_count().await? as i64)
        .execute(&mut *tx)
        .await?;
        // The holds above, on the balances, so the settle script's held >= amount holds.
        sqlx::query(
            "UPDATE balances b SET held = b.held + h.total, available = b.available - h.total
             FROM (SELECT w.user_id, sum(w.amount) AS total
                   FROM bench_settle_targets t JOIN withdrawals w ON w.id = t.id
                   GROUP BY w.user_id) h
             WHERE b.user_id = h.user_id AND b.currency = 'EUR'",
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        sqlx::query("VACUUM ANALYZE withdrawals")
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn users_count(&self) -> BenchResult<i64> {
        let (users,): (i64,) =
            sqlx::query_as("SELECT count(*) FROM balances WHERE user_id LIKE 'bench-%'")
                .fetch_one(&self.pool)
                .await?;
        Ok(users.max(1))
    }

    /// SIGTERM, then a bounded wait: the service drains and stops on its own.
    pub async fn stop(mut self) {
        for mut more in std::mem::take(&mut self.more_services) {
            if let Some(pid) = more.id() {
                let _ = std::process::Command::new("kill")
                    .args(["-TERM", &pid.to_string()])
                    .status();
            }
            if tokio::time::timeout(Duration::from_secs(15), more.wait())
                .await
                .is_err()
            {
                let _ = more.kill().await;
            }
        }
        if let Some(pid) = self.service.id() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status()
                .await;
        }
        if tokio::time::timeout(Duration::from_secs(15), self.service.wait())
            .await
            .is_err()
        {
            let _ = self.service.kill().await;
        }
    }
}

async fn fresh_database(pg_url: &str, name: &str) -> BenchResult<String> {
    let mut admin = PgConnection::connect(&format!("{pg_url}/postgres")).await?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .execute(&mut admin)
        .await?;
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&mut admin)
        .await?;
    admin.close().await?;
    Ok(format!("{pg_url}/{name}"))
}

/// The binary's built-in defaults with the abuse rate limits off: the load comes from one
/// address and one token, so a per-address or per-token limit would measure the limiter, not
/// the service (the default callback limit, 500/s per address, is below what one instance
/// settles; see BENCHMARKS.md). Only the override is written, so a `BENCH_PAYOUTD_BIN` built
/// from an earlier commit starts with its own defaults, not keys it does not know.
fn bench_config_dir() -> BenchResult<PathBuf> {
    let dir = output_dir().join("config");
    std::fs::create_dir_all(&dir)?;
    match std::fs::remove_file(dir.join("default.toml")) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
        _ => {}
    }
    // BENCH_BATCHING=off: one transaction per request, the yardstick for what group commit saves.
    let batching = match std::env::var("BENCH_BATCHING").as_deref() {
        Ok("off") => "[batching]\nenabled = false\n",
        _ => "",
    };
    // BENCH_CONFIG: more TOML for the service, e.g. "[batching]\nrunners = 2".
    let extra = std::env::var("BENCH_CONFIG").unwrap_or_default();
    std::fs::write(
        dir.join("development.toml"),
        format!("[abuse]\ncallback_per_second = 0\napi_per_second = 0\n{batching}{extra}\n"),
    )?;
    Ok(dir)
}

/// One `payoutd serve` on `addr`: the release binary, or `BENCH_PAYOUTD_BIN` (to measure an
/// earlier build in the same conditions).
fn spawn_service(
    db_url: &str,
    addr: std::net::SocketAddr,
    simulator: &Simulator,
    log_name: &str,
) -> BenchResult<Child> {
    let log = std::fs::File::create(output_dir().join(log_name))?;
    let config_dir = bench_config_dir()?;
    let binary = std::env::var_os("BENCH_PAYOUTD_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_payoutd")));
    Ok(Command::new(binary)
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("PAYOUTD_CONFIG_DIR", config_dir)
        .env("PAYOUTD_ENV", "development")
        .env("PAYOUTD_LOG_FORMAT", "json")
        .env("DATABASE_URL", db_url)
        .env("PAYOUTD_LISTEN_ADDR", addr.to_string())
        .env("PAYOUTD_API_TOKENS", API_TOKEN)
        // Credentials other than the simulator's need operator tokens too.
        .env("PAYOUTD_ADMIN_TOKENS", "bench:bench-operator-token-0123")
        .env("COINSPAID_API_URL", simulator.base_url())
        .env("COINSPAID_API_KEY", KEY)
        .env("COINSPAID_API_SECRET", SECRET)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true)
        .spawn()?)
}

async fn wait_ready(http: &reqwest::Client, base_url: &str) -> BenchResult<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(response) = http.get(format!("{base_url}/readyz")).send().await {
            if response.status().is_success() {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            return Err(format!(
                "payoutd did not become ready; see {}",
                output_dir().join("payoutd.log").display()
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Resident set size of `pid` in KiB, from /proc.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}
