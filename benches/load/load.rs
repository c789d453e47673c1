//! The load generator: many concurrent HTTP clients, each timing its own requests.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rand::Rng;
use tokio::task::JoinSet;

use crate::cpu::{CpuSample, CpuSplit};
use crate::stack::{SignedCallback, Stack, API_TOKEN};
use crate::BenchResult;

/// Latencies in microseconds, 1 µs to 60 s at three significant figures.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

/// What one load point measured.
pub struct Measured {
    pub ok: u64,
    pub errors: u64,
    pub elapsed: Duration,
    pub latency: Histogram<u64>,
    pub cpu: CpuSplit,
}

impl Measured {
    pub fn per_sec(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }

    /// Requests per second counted until the work they left behind was done `drain` after
    /// the load stopped (creates answered before CoinsPaid had them).
    pub fn per_sec_with(&self, drain: Duration) -> f64 {
        self.ok as f64 / (self.elapsed + drain).as_secs_f64()
    }

    /// A latency quantile in milliseconds.
    pub fn ms(&self, quantile: f64) -> f64 {
        self.latency.value_at_quantile(quantile) as f64 / 1000.0
    }

    pub fn max_ms(&self) -> f64 {
        self.latency.max() as f64 / 1000.0
    }
}

/// The whole lifecycle of withdrawals created during one load point, read from their rows.
pub struct Lifecycle {
    pub create: Measured,
    pub settled: u64,
    pub settled_per_sec: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// Builds a client's next request; `None` when there is no more work.
type NextRequest = Arc<dyn Fn() -> Option<reqwest::RequestBuilder> + Send + Sync>;

/// One client's loop: `next` request until the deadline; 2xx counts, anything else is an error.
async fn client_loop(deadline: Instant, next: NextRequest) -> (u64, u64, Histogram<u64>) {
    let mut latency = histogram();
    let (mut ok, mut errors) = (0u64, 0u64);
    while Instant::now() < deadline {
        let Some(request) = next() else { break };
        let started = Instant::now();
        let outcome = request.send().await;
        let took = started.elapsed();
        match outcome {
            Ok(response) if response.status().is_success() => {
                // Read the body: the request is done when the answer is, not at its headers.
                let _ = response.bytes().await;
                ok += 1;
                latency.saturating_record(started.elapsed().as_micros().max(1) as u64);
            }
            Ok(response) => {
                errors += 1;
                if errors <= 3 {
                    let status = response.status();
                    let body = response.text().await.unwrap_or_default();
                    eprintln!("  error after {took:?}: {status} {body}");
                }
            }
            Err(err) => {
                errors += 1;
                if errors <= 3 {
                    eprintln!("  error after {took:?}: {err}");
                }
            }
        }
    }
    (ok, errors, latency)
}

/// When a load point started, on the clock, in CPU time and in the services' batch counters.
struct Start {
    at: Instant,
    cpu: CpuSample,
    batches: std::collections::BTreeMap<String, (f64, f64)>,
}

impl Start {
    async fn now(stack: &Stack) -> Self {
        let batches = stack.batch_counters().await;
        Self {
            at: Instant::now(),
            cpu: CpuSample::now(&stack.service_pids()),
            batches,
        }
    }
}

/// "create 7.3, accepted 5.1": requests per batch of each batcher during the point.
fn batch_sizes(
    before: &std::collections::BTreeMap<String, (f64, f64)>,
    after: &std::collections::BTreeMap<String, (f64, f64)>,
) -> String {
    let sizes: Vec<String> = after
        .iter()
        .filter_map(|(name, (requests, batches))| {
            let (r0, b0) = before.get(name).copied().unwrap_or_default();
            let batches = batches - b0;
            (batches > 0.0).then(|| format!("{name} {:.1}", (requests - r0) / batches))
        })
        .collect();
    if sizes.is_empty() {
        "none".to_owned()
    } else {
        sizes.join(", ")
    }
}

async fn collect(
    stack: &Stack,
    mut tasks: JoinSet<(u64, u64, Histogram<u64>)>,
    start: Start,
) -> Measured {
    let (mut ok, mut errors, mut latency) = (0, 0, histogram());
    while let Some(done) = tasks.join_next().await {
        let (task_ok, task_errors, task_latency) = done.expect("client task");
        ok += task_ok;
        errors += task_errors;
        latency.add(task_latency).expect("same bounds");
    }
    let elapsed = start.at.elapsed();
    let cpu = CpuSample::now(&stack.service_pids()).split_since(&start.cpu, elapsed.as_secs_f64());
    let batches = batch_sizes(&start.batches, &stack.batch_counters().await);
    let measured = Measured {
        ok,
        errors,
        elapsed,
        latency,
        cpu,
    };
    eprintln!(
        "  {} ok, {} errors, {:.0}/s, p50 {:.2} ms, p99 {:.2} ms; CPU: payoutd {:.0}%, load+simulator {:.0}%, other {:.0}%; requests per batch: {batches}",
        measured.ok,
        measured.errors,
        measured.per_sec(),
        measured.ms(0.5),
        measured.ms(0.99),
        measured.cpu.service,
        measured.cpu.bench,
        measured.cpu.other
    );
    measured
}

/// `clients` concurrent clients sending `next` requests for `duration`, measured together.
async fn run_clients(
    stack: &Stack,
    clients: usize,
    duration: Duration,
    next: NextRequest,
) -> Measured {
    let start = Start::now(stack).await;
    let deadline = start.at + duration;
    let mut tasks = JoinSet::new();
    for _ in 0..clients {
        tasks.spawn(client_loop(deadline, next.clone()));
    }
    collect(stack, tasks, start).await
}

/// `clients` clients creating withdrawals (each with its own Idempotency-Key) for `duration`.
pub async fn creates(
    stack: &Stack,
    clients: usize,
    duration: Duration,
    users: usize,
) -> BenchResult<Measured> {
    let http = stack.http.clone();
    let url = stack.round_robin("/v1/withdrawals");
    let next: NextRequest = Arc::new(move || {
        let user = rand::rng().random_range(1..=users);
        let body = format!(
            r#"{{"user_id":"bench-{user}","amount":"10.00","currency":"EUR","convert_to":"BTC","address":"bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"}}"#
        );
        Some(
            http.post(url())
                .bearer_auth(API_TOKEN)
                .header("Idempotency-Key", uuid::Uuid::now_v7().to_string())
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body),
        )
    });
    Ok(run_clients(stack, clients, duration, next).await)
}

/// `clients` clients posting signed confirmed callbacks, each target once, for `duration` or
/// until the targets run out. The targets used are removed from `targets`.
pub async fn callbacks(
    stack: &Stack,
    targets: &mut Vec<SignedCallback>,
    clients: usize,
    duration: Duration,
) -> BenchResult<Measured> {
    let all = Arc::new(std::mem::take(targets));
    let taken = Arc::new(AtomicUsize::new(0));
    let http = stack.http.clone();
    let url = stack.round_robin("/v1/callbacks/coinspaid");
    let next: NextRequest = {
        let (all, taken) = (all.clone(), taken.clone());
        Arc::new(move || {
            let callback = all.get(taken.fetch_add(1, Ordering::Relaxed))?;
            Some(
                http.post(url())
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .header(payoutd::coinspaid::KEY_HEADER, crate::stack::KEY)
                    .header(payoutd::coinspaid::SIGNATURE_HEADER, &callback.signature)
                    .body(callback.body.clone()),
            )
        })
    };
    let measured = run_clients(stack, clients, duration, next).await;
    let used = taken.load(Ordering::Relaxed).min(all.len());
    // Every client task and with them the request builder have ended: this is the only
    // reference left.
    let mut all = Arc::try_unwrap(all).unwrap_or_else(|_| unreachable!("client tasks ended"));
    *targets = all.split_off(used);
    if targets.is_empty() {
        eprintln!("  (used all {used} processing withdrawals of this point's share)");
    }
    Ok(measured)
}

/// Creates for `duration` with the simulator confirming each one at once; then waits for every
/// one to be confirmed and reads create-to-debit times from the rows.
pub async fn lifecycle(
    stack: &Stack,
    clients: usize,
    duration: Duration,
    users: usize,
) -> BenchResult<Lifecycle> {
    let (since,): (chrono::DateTime<chrono::Utc>,) = sqlx::query_as("SELECT now()")
        .fetch_one(&stack.pool)
        .await?;
    let create = creates(stack, clients, duration, users).await?;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (open,): (i64,) = sqlx::query_as(
            "SELECT count(*) FROM withdrawals
             WHERE created_at >= $1 AND status IN ('pending', 'processing')",
        )
        .bind(since)
        .fetch_one(&stack.pool)
        .await?;
        if open == 0 {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!("{open} withdrawals still open 120 s after the load").into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (settled, span, p50, p90, p99, max): (i64, f64, f64, f64, f64, f64) = sqlx::query_as(
        "SELECT count(*),
                extract(epoch FROM max(updated_at) - $1)::float8,
                1000 * percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM updated_at - created_at))::float8,
                1000 * percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM updated_at - created_at))::float8,
                1000 * percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM updated_at - created_at))::float8,
                1000 * extract(epoch FROM max(updated_at - created_at))::float8
         FROM withdrawals WHERE created_at >= $1 AND status = 'confirmed'",
    )
    .bind(since)
    .fetch_one(&stack.pool)
    .await?;
    let lifecycle = Lifecycle {
        settled: settled as u64,
        settled_per_sec: settled as f64 / span.max(1e-9),
        p50_ms: p50,
        p90_ms: p90,
        p99_ms: p99,
        max_ms: max,
        create,
    };
    eprintln!(
        "  {} confirmed, {:.0}/s end to end, create-to-debit p50 {:.1} ms p99 {:.1} ms",
        lifecycle.settled, lifecycle.settled_per_sec, lifecycle.p50_ms, lifecycle.p99_ms
    );
    Ok(lifecycle)
}

/// `clients` clients sending GETs built by `path` (given a random user) for `duration`.
pub async fn gets(
    stack: &Stack,
    clients: usize,
    duration: Duration,
    users: usize,
    path: impl Fn(usize) -> String + Send + Sync + 'static,
) -> BenchResult<Measured> {
    let http = stack.http.clone();
    let base = stack.base_url.clone();
    let next: NextRequest = Arc::new(move || {
        let user = rand::rng().random_range(1..=users);
        Some(
            http.get(format!("{base}{}", path(user)))
                .bearer_auth(API_TOKEN),
        )
    });
    Ok(run_clients(stack, clients, duration, next).await)
}
