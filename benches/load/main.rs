//! payoutd's benchmark: `cargo bench --bench load`.
//!
//! Drives the real release `payoutd` binary over HTTP on loopback, against a fresh database on
//! the local PostgreSQL, with the CoinsPaid simulator running in this process, and measures in
//! the same run the physical limit: pgbench running the least SQL each operation must do, with
//! the same number of clients, and beside it the same rows a create (and a whole lifecycle)
//! writes, unbatched (`create_full.sql`, `lifecycle_full.sql`). See BENCHMARKS.md for what
//! each row means.
//!
//! Settings (environment): `BENCH_CLIENTS` (default `16,64`), `BENCH_SECS` per measured point
//! (default 15), `BENCH_USERS` (default 1000), `BENCH_GROWTH` (existing withdrawals for the
//! growth table, default `10000,1000000`; empty skips it), `BENCH_PG_URL` (default
//! `postgres://postgres@127.0.0.1:5432`), `BENCH_DB` (default `payoutd_bench`, dropped and
//! recreated), `BENCH_REPLICAS` (default 1: payoutd processes on the one database, load
//! spread round-robin), `BENCH_PAYOUTD_BIN` (another payoutd binary, to measure an earlier
//! build in the same conditions), `BENCH_BATCHING=off` (group commit off: one transaction per
//! request), `BENCH_CONFIG` (more TOML for the service's configuration,
//! e.g. `[batching]` settings, or `[worker]\nfirst_attempt_wait_ms = 0` to answer creates once
//! held). Results go to stdout and `target/bench/results.md`; the service's log to
//! `target/bench/payoutd.log`.

mod cpu;
mod growth;
mod load;
mod pgbench;
mod report;
mod stack;

use std::process::ExitCode;
use std::time::Duration;

use payoutd::simulator::SubmitBehavior;

use report::Report;
use stack::Stack;

pub struct BenchSettings {
    pub clients: Vec<usize>,
    pub secs: u64,
    pub users: usize,
    pub growth: Vec<u64>,
    pub pg_url: String,
    pub db: String,
    /// payoutd processes on the one database, load spread round-robin (`BENCH_REPLICAS`).
    pub replicas: usize,
}

impl BenchSettings {
    fn from_env() -> Result<Self, String> {
        let var =
            |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
        let list = |name: &str, default: &str| -> Result<Vec<u64>, String> {
            var(name, default)
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| {
                    s.parse()
                        .map_err(|_| format!("{name}: {s:?} is not a number"))
                })
                .collect()
        };
        let number = |name: &str, default: &str| -> Result<u64, String> {
            var(name, default)
                .parse()
                .map_err(|_| format!("{name} must be a number"))
        };
        let settings = Self {
            clients: list("BENCH_CLIENTS", "16,64")?
                .into_iter()
                .map(|c| c as usize)
                .collect(),
            secs: number("BENCH_SECS", "15")?,
            users: number("BENCH_USERS", "1000")? as usize,
            growth: list("BENCH_GROWTH", "10000,1000000")?,
            pg_url: var("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432"),
            db: var("BENCH_DB", "payoutd_bench"),
            replicas: number("BENCH_REPLICAS", "1")?.max(1) as usize,
        };
        if settings.clients.is_empty() || settings.clients.contains(&0) || settings.secs == 0 {
            return Err("BENCH_CLIENTS and BENCH_SECS must be positive".into());
        }
        Ok(settings)
    }
}

fn main() -> ExitCode {
    // `cargo bench` passes `--bench`; this harness takes no arguments of its own.
    let settings = match BenchSettings::from_env() {
        Ok(s) => s,
        Err(err) => {
            eprintln!("payoutd bench: {err}");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(run(&settings)) {
        Ok(report) => {
            let text = report.markdown(&settings);
            println!("\n{text}");
            let path = stack::output_dir().join("results.md");
            if let Err(err) = std::fs::write(&path, &text) {
                eprintln!("could not write {}: {err}", path.display());
            }
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("payoutd bench failed: {err}");
            ExitCode::FAILURE
        }
    }
}

type BenchResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

async fn run(settings: &BenchSettings) -> BenchResult<Report> {
    let secs = Duration::from_secs(settings.secs);
    let stack = Stack::start(settings).await?;
    let mut report = Report::default();
    stack.seed_users(settings.users).await?;

    // Creates: simulator accepts silently, so every withdrawal stops in "processing" and the
    // settlement phase has its targets.
    stack
        .simulator
        .set_default_behavior(SubmitBehavior::accept_silently());
    for &clients in &settings.clients {
        eprintln!("== create, {clients} clients: pgbench limit");
        let limit = stack
            .pgbench("create.sql", clients, secs, settings.users)
            .await?;
        eprintln!("== create, {clients} clients: payoutd");
        let measured = load::creates(&stack, clients, secs, settings.users).await?;
        // Answered is not yet submitted (worker.first_attempt_wait_ms = 0 answers when held):
        // the next point starts only once CoinsPaid has every withdrawal of this one.
        let drain = stack.wait_for_no_pending(Duration::from_secs(120)).await?;
        eprintln!(
            "  all submitted {:.2} s after the load stopped: {:.0} submitted/s",
            drain.as_secs_f64(),
            measured.per_sec_with(drain)
        );
        report.create.push((clients, limit, measured));
        report.create_drain.push(drain);
        eprintln!("== create, {clients} clients: pgbench, every row of a create, unbatched");
        report.create_full.push(
            stack
                .pgbench("create_full.sql", clients, secs, settings.users)
                .await?,
        );
    }

    // Settlement: signed "confirmed" callbacks for those withdrawals, sent by this process.
    let mut targets = stack.processing_callbacks().await?;
    for (point, &clients) in settings.clients.iter().enumerate() {
        eprintln!("== settle, {clients} clients: pgbench limit");
        stack.prepare_settle_targets(settings.secs).await?;
        let limit = stack
            .pgbench("settle.sql", clients, secs, settings.users)
            .await?;
        eprintln!("== settle, {clients} clients: payoutd");
        // An equal share of what is left for each remaining point.
        let points_left = settings.clients.len() - point;
        let mut share = targets.split_off(targets.len() - targets.len() / points_left);
        let measured = load::callbacks(&stack, &mut share, clients, secs).await?;
        targets.append(&mut share);
        report.settle.push((clients, limit, measured));
    }

    // The whole lifecycle: create, submit, the simulator's confirmed callback, the debit.
    stack
        .simulator
        .set_default_behavior(SubmitBehavior::confirm());
    for &clients in &settings.clients {
        eprintln!("== lifecycle, {clients} clients");
        let lifecycle = load::lifecycle(&stack, clients, secs, settings.users).await?;
        eprintln!("== lifecycle, {clients} clients: pgbench, every row of a lifecycle, unbatched");
        let full = stack
            .pgbench("lifecycle_full.sql", clients, secs, settings.users)
            .await?;
        report.lifecycle.push((clients, lifecycle, full));
    }
    report.peak_rss_kib = stack.peak_rss_kib();

    // Creates alone again, as in the first table.
    stack
        .simulator
        .set_default_behavior(SubmitBehavior::accept_silently());
    for &rows in &settings.growth {
        eprintln!("== growth: {rows} existing withdrawals");
        report
            .growth
            .push(growth::measure(&stack, rows, settings.users).await?);
    }
    report.peak_rss_kib = report.peak_rss_kib.max(stack.peak_rss_kib());
    stack.stop().await;
    Ok(report)
}
