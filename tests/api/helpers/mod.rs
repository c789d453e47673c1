//! Test harness: each test gets its own database, the real application on a free loopback
//! port, and the CoinsPaid simulator on another, wired to each other over real HTTP.

pub mod pg_cluster;
pub mod webhooks;

use std::time::Duration;

use payoutd::app::Application;
use payoutd::coinspaid::signing::SecretString;
use payoutd::coinspaid::{Credentials, Signer};
use payoutd::config::{Environment, Settings};
use payoutd::simulator::{Simulator, SimulatorControl, SimulatorSettings, SubmitBehavior};
use payoutd::withdrawals::submit::Submitter;
use reqwest::{Response, StatusCode};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use sqlx::PgPool;

pub const TOKEN: &str = "test-token-0123456789";
pub const KEY: &str = "merchant-public-key";
pub const SECRET: &str = "merchant-secret-for-tests";
/// The simulator's own key pair (`payoutd simulator` prints it): with it, and only with it, a
/// separately run payoutd arms its crash points and development conveniences.
pub const SIM_KEY: &str = payoutd::simulator::cli::DEFAULT_KEY;
pub const SIM_SECRET: &str = payoutd::simulator::cli::DEFAULT_SECRET;
pub const BTC_ADDRESS: &str = "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq";

pub fn base_database_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

pub struct TestApp {
    pub address: String,
    pub pool: PgPool,
    pub http: reqwest::Client,
    pub sim: SimulatorControl,
    pub signer: Signer,
    pub submitter: Submitter,
    pub reconciler: payoutd::withdrawals::submit::reconcile::Reconciler,
    pub currencies: std::sync::Arc<payoutd::currencies::Currencies>,
    pub notifier: payoutd::notify::Notifier,
    /// The rate limits in force (their key count is the memory they hold).
    pub guard: std::sync::Arc<payoutd::api::abuse::Guard>,
    /// The use cases the handlers call, to call without HTTP.
    pub usecases: payoutd::usecases::UseCases,
    _simulator: std::sync::Arc<Simulator>,
    _shutdown: tokio::sync::oneshot::Sender<()>,
    /// Last, so the app is told to stop before its database goes.
    _database: std::sync::Arc<DropDatabase>,
}

/// Drops a test's database when the test is done with it, so a passing `cargo test` leaves
/// nothing behind. A failing test (dropped while panicking) keeps it for a look; `.ci/run`
/// drops those.
pub struct DropDatabase {
    name: String,
    /// The server it lives on, without a database name.
    server: String,
}

impl DropDatabase {
    pub fn new(name: &str) -> Self {
        Self::on(&base_database_url(), name)
    }

    pub fn on(server: &str, name: &str) -> Self {
        Self {
            name: name.to_owned(),
            server: server.to_owned(),
        }
    }
}

impl Drop for DropDatabase {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("keeping database {} of the failed test", self.name);
            return;
        }
        // Drop runs inside the test's runtime, which cannot be blocked on: a thread with its
        // own runtime does the work. FORCE ends the connections the stopping app still holds.
        let (name, server) = (self.name.clone(), self.server.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                use sqlx::Connection;
                let mut conn = sqlx::PgConnection::connect(&format!("{server}/postgres")).await?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .execute(&mut conn)
                    .await?;
                conn.close().await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop test database {}: {dropped:?}", self.name);
        }
    }
}

/// Settings every test starts from: fresh database, simulator as provider, worker off
/// (tests drive the queue with `drain`), short timeouts.
pub fn test_settings(database: &str, simulator_url: &str) -> Settings {
    let mut s = Settings {
        env: Environment::Development,
        ..Settings::defaults()
    };
    s.server.listen_addr = "127.0.0.1:0".parse().unwrap();
    s.server.api_tokens = vec![SecretString::new(TOKEN)];
    s.database.url = SecretString::new(format!("{}/{database}", base_database_url()));
    s.database.max_connections = 20;
    s.coinspaid.api_url = Some(simulator_url.parse().unwrap());
    s.coinspaid.api_key = KEY.into();
    s.coinspaid.api_secret = SecretString::new(SECRET);
    s.coinspaid.timeout_secs = 2;
    s.worker.enabled = false;
    s.worker.lease_secs = 10;
    s.worker.backoff_base_ms = 1;
    s.worker.backoff_max_secs = 1;
    // A resend after an unknown outcome still waits out coinspaid.timeout_secs.
    s.worker.resend_margin_secs = 0;
    // Tests drive the reconciler by hand and want every open withdrawal considered.
    s.reconciler.enabled = false;
    s.reconciler.min_age_secs = 0;
    s.reconciler.recheck_secs = 0;
    s.notify.enabled = false;
    // Tests read the database gauges right after changing the database.
    s.metrics.db_gauges_interval_secs = 0;
    // Concurrency tests post hundreds of requests at once from one address; the abuse tests
    // turns the limits on.
    s.abuse.callback_per_second = 0;
    s.abuse.api_per_second = 0;
    s
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(tweak: impl Fn(&mut Settings)) -> TestApp {
    spawn_cluster(1, tweak).await.remove(0)
}

/// `replicas` instances of the application on one database and one simulator, like several
/// payoutd processes behind a load balancer. The simulator calls back the first replica.
pub async fn spawn_cluster(replicas: usize, tweak: impl Fn(&mut Settings)) -> Vec<TestApp> {
    spawn_cluster_on(&base_database_url(), replicas, tweak).await
}

/// [`spawn_cluster`] on the PostgreSQL server at `server` (a URL without a database name),
/// e.g. a test's own [`pg_cluster::PgCluster`].
pub async fn spawn_cluster_on(
    server: &str,
    replicas: usize,
    tweak: impl Fn(&mut Settings),
) -> Vec<TestApp> {
    let credentials = Credentials {
        key: KEY.into(),
        secret: SecretString::new(SECRET),
    };
    let sim_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let simulator = std::sync::Arc::new(
        Simulator::spawn(
            SimulatorSettings {
                credentials: credentials.clone(),
                callback_url: None,
                callback_delay: Duration::ZERO,
            },
            sim_listener,
        )
        .await
        .unwrap(),
    );
    let sim = simulator.control();
    sim.set_default_behavior(SubmitBehavior::accept_silently());
    // Shown with a failing test's output: PAYOUTD_SIMULATOR_SEED=<seed> replays its draws.
    eprintln!("simulator seed {}", sim.seed());

    let database = format!("payoutd_test_{}", uuid::Uuid::now_v7().simple());
    let guard = std::sync::Arc::new(DropDatabase::on(server, &database));
    let mut apps = Vec::with_capacity(replicas);
    for _ in 0..replicas {
        let mut settings = test_settings(&database, &simulator.base_url());
        settings.database.url = SecretString::new(format!("{server}/{database}"));
        tweak(&mut settings);
        let app = Application::build(settings).await.expect("app builds");
        let address = format!("http://127.0.0.1:{}", app.port());
        let pool = app.workers().pool.clone();
        let submitter = app.workers().submitter.clone();
        let reconciler = app.workers().reconciler.clone();
        let currencies = app.workers().currencies.clone();
        let notifier = app.workers().notifier.clone();
        let limits = app.state().access.guard.clone();
        let usecases = app.state().usecases.clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(app.run_until(async move {
            let _ = rx.await;
        }));
        apps.push(TestApp {
            address,
            pool,
            http: reqwest::Client::new(),
            sim: sim.clone(),
            signer: Signer::new(credentials.clone()),
            submitter,
            reconciler,
            currencies,
            notifier,
            guard: limits,
            usecases,
            _simulator: simulator.clone(),
            _shutdown: tx,
            _database: guard.clone(),
        });
    }
    sim.set_callback_url(Some(format!("{}/v1/callbacks/coinspaid", apps[0].address)));
    apps
}

/// Batching with one runner: while it commits a batch, everything else queues for the next
/// one, so batches of many form under concurrency.
pub fn one_batch_runner(s: &mut Settings) {
    s.batching.runners = 1;
    s.batching.max_batch = 64;
}

/// A withdrawal's `id`, as the API returned it.
pub fn id_of(w: &Value) -> String {
    w["id"].as_str().unwrap().to_owned()
}

/// A withdrawal's `foreign_id`, as the API returned it.
pub fn fid_of(w: &Value) -> String {
    w["foreign_id"].as_str().unwrap().to_owned()
}

pub fn dec(text: &str) -> Decimal {
    text.parse().unwrap()
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn credit(
        &self,
        user: &str,
        currency: &str,
        amount: &str,
        reference: &str,
    ) -> Response {
        self.http
            .post(self.url(&format!("/v1/users/{user}/credits")))
            .bearer_auth(TOKEN)
            .json(&json!({"currency": currency, "amount": amount, "reference": reference}))
            .send()
            .await
            .unwrap()
    }

    /// Credits and asserts it was created.
    pub async fn fund(&self, user: &str, currency: &str, amount: &str) {
        let r = self
            .credit(
                user,
                currency,
                amount,
                &format!("fund-{}", uuid::Uuid::now_v7()),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
    }

    pub async fn withdraw(&self, key: &str, body: &Value) -> Response {
        self.http
            .post(self.url("/v1/withdrawals"))
            .bearer_auth(TOKEN)
            .header("Idempotency-Key", key)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// Creates a withdrawal that must be accepted (201); returns its JSON.
    pub async fn withdraw_ok(&self, body: &Value) -> Value {
        let r = self.withdraw(&uuid::Uuid::now_v7().to_string(), body).await;
        assert_eq!(r.status(), StatusCode::CREATED, "{:?}", r.text().await);
        r.json().await.unwrap()
    }

    pub async fn get_json(&self, path: &str) -> (StatusCode, Value) {
        let r = self
            .http
            .get(self.url(path))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// `POST` without a body, as the website.
    pub async fn post_empty(&self, path: &str) -> (StatusCode, Value) {
        let r = self
            .http
            .post(self.url(path))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Funds u1 with `amount` EUR and withdraws all of it; CoinsPaid accepts it.
    pub async fn processing_withdrawal(&self, amount: &str) -> Value {
        self.fund("u1", "EUR", amount).await;
        let w = self.withdraw_ok(&eur_to_btc("u1", amount)).await;
        assert_eq!(w["status"], "processing");
        w
    }

    /// (requests, batches, batches failed as a whole) of one batcher (`create`, `accepted`),
    /// from `/metrics`. Process-wide: other tests in the same process add to them (see
    /// [`in_own_process`]).
    pub async fn batch_counts(&self, batch: &str) -> (f64, f64, f64) {
        let text = self.metrics_text().await;
        let value = |name: &str| {
            text.lines()
                .find(|l| l.starts_with(&format!("{name}{{batch=\"{batch}\"}}")))
                .and_then(|l| l.rsplit(' ').next())
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        (
            value("payoutd_batched_requests_total"),
            value("payoutd_batches_total"),
            value("payoutd_batch_failures_total"),
        )
    }

    /// The Prometheus text of `/metrics`. The recorder is the process's, shared by every app
    /// in this test binary: a scrape sets the database gauges from its own app's database and
    /// renders them, so scrapes take turns, or one app's values would show in another's text.
    pub async fn metrics_text(&self) -> String {
        static SCRAPES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
        let _turn = SCRAPES.lock().await;
        self.http
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub async fn withdrawal(&self, id: &str) -> Value {
        let (status, body) = self.get_json(&format!("/v1/withdrawals/{id}")).await;
        assert_eq!(status, StatusCode::OK);
        body
    }

    /// (available, held) of one currency, as the API reports them.
    pub async fn balance(&self, user: &str, currency: &str) -> (String, String) {
        let (_, body) = self.get_json(&format!("/v1/users/{user}/balances")).await;
        body["balances"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["currency"] == currency)
            .map(|b| {
                (
                    b["available"].as_str().unwrap().to_owned(),
                    b["held"].as_str().unwrap().to_owned(),
                )
            })
            .unwrap_or_else(|| ("0".into(), "0".into()))
    }

    /// Posts a callback body signed with the merchant's secret, as CoinsPaid would.
    pub async fn post_callback(&self, body: &[u8]) -> StatusCode {
        let signature = self.signer.sign(body);
        self.post_callback_raw(body, Some(KEY), Some(&signature))
            .await
    }

    pub async fn post_callback_raw(
        &self,
        body: &[u8],
        key: Option<&str>,
        signature: Option<&str>,
    ) -> StatusCode {
        let mut request = self
            .http
            .post(self.url("/v1/callbacks/coinspaid"))
            .header("content-type", "application/json")
            .body(body.to_vec());
        if let Some(k) = key {
            request = request.header("X-Processing-Key", k);
        }
        if let Some(s) = signature {
            request = request.header("X-Processing-Signature", s);
        }
        request.send().await.unwrap().status()
    }

    /// Runs the submission queue until nothing is due, waiting out short backoffs.
    pub async fn drain(&self) -> usize {
        let mut total = 0;
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_millis(30)).await;
            total += self.submitter.drain_once().await.unwrap();
        }
        total
    }

    /// Runs the submission queue like [`Self::drain`], then keeps running it while a job falls
    /// due within a few seconds (a resend waiting out its quiet period, a short backoff), for at
    /// most `limit`. Returns the attempts run.
    pub async fn drain_waiting(&self, limit: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + limit;
        let mut total = self.drain().await;
        while tokio::time::Instant::now() < deadline {
            let next: Option<f64> = sqlx::query_scalar(
                "SELECT EXTRACT(EPOCH FROM min(run_at) - now())::float8 FROM submission_jobs
                 WHERE NOT parked",
            )
            .fetch_one(&self.pool)
            .await
            .unwrap();
            match next {
                Some(wait) if wait <= 3.0 => {
                    tokio::time::sleep(Duration::from_secs_f64(wait.max(0.0) + 0.02)).await;
                    total += self.submitter.drain_once().await.unwrap();
                }
                _ => break,
            }
        }
        total
    }

    pub async fn ledger_kinds(&self, withdrawal_id: &str) -> Vec<String> {
        sqlx::query_scalar(
            "SELECT kind FROM ledger_entries WHERE withdrawal_id = $1::uuid ORDER BY id",
        )
        .bind(withdrawal_id)
        .fetch_all(&self.pool)
        .await
        .unwrap()
    }

    /// A documented callback for a withdrawal CoinsPaid accepted (`w` as the API returned it),
    /// naming CoinsPaid's id and the withdrawal's amount.
    pub fn callback_for(&self, w: &Value, status: &str) -> Vec<u8> {
        callback_body_for_amount(
            w["foreign_id"].as_str().unwrap(),
            status,
            // A refused withdrawal has no CoinsPaid id: any id will do.
            w["provider_id"].as_i64().unwrap_or(9),
            w["amount"].as_str().unwrap(),
        )
    }

    pub async fn assert_invariants(&self) {
        assert_invariants(&self.pool).await;
    }
}

/// The money invariants, checked from the rows themselves:
/// for every user and currency the entries sum to the balance; held equals the open
/// withdrawals; no balance is negative; each withdrawal's entries match its status.
pub async fn assert_invariants(pool: &PgPool) {
    let mismatches: Vec<(String, String, Decimal, Decimal, Decimal, Decimal)> = sqlx::query_as(
            "WITH sums AS (
                 SELECT user_id, currency,
                     COALESCE(SUM(CASE kind WHEN 'credit' THEN amount WHEN 'hold' THEN -amount WHEN 'release' THEN amount ELSE 0 END), 0) AS available,
                     COALESCE(SUM(CASE kind WHEN 'hold' THEN amount WHEN 'release' THEN -amount WHEN 'debit' THEN -amount ELSE 0 END), 0) AS held
                 FROM ledger_entries GROUP BY user_id, currency)
             SELECT b.user_id, b.currency, b.available, b.held, COALESCE(s.available, 0), COALESCE(s.held, 0)
             FROM balances b FULL JOIN sums s USING (user_id, currency)
             WHERE b.available IS DISTINCT FROM s.available OR b.held IS DISTINCT FROM s.held",
        )
        .fetch_all(pool)
        .await
        .unwrap();
    assert!(
        mismatches.is_empty(),
        "ledger sums differ from balances: {mismatches:?}"
    );

    let held_vs_open: Vec<(String, String, Decimal, Option<Decimal>)> = sqlx::query_as(
        "SELECT b.user_id, b.currency, b.held, o.open
             FROM balances b LEFT JOIN (
                 SELECT user_id, currency, SUM(amount) AS open FROM withdrawals
                 WHERE status IN ('awaiting_approval', 'pending', 'processing') GROUP BY user_id, currency) o
             USING (user_id, currency)
             WHERE b.held <> COALESCE(o.open, 0)",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert!(
        held_vs_open.is_empty(),
        "held differs from open withdrawals: {held_vs_open:?}"
    );

    let negative: i64 =
        sqlx::query_scalar("SELECT count(*) FROM balances WHERE available < 0 OR held < 0")
            .fetch_one(pool)
            .await
            .unwrap();
    assert_eq!(negative, 0, "negative balances");

    let wrong_entries: Vec<(String, String, Vec<String>)> = sqlx::query_as(
            "SELECT w.id::text, w.status, COALESCE(array_agg(e.kind ORDER BY e.id) FILTER (WHERE e.kind IS NOT NULL), '{}')
             FROM withdrawals w LEFT JOIN ledger_entries e ON e.withdrawal_id = w.id
             GROUP BY w.id, w.status
             HAVING NOT (
                 (w.status IN ('awaiting_approval', 'pending', 'processing') AND array_agg(e.kind ORDER BY e.id) = ARRAY['hold'])
              OR (w.status = 'confirmed' AND array_agg(e.kind ORDER BY e.id) = ARRAY['hold', 'debit'])
              OR (w.status IN ('cancelled', 'rejected') AND array_agg(e.kind ORDER BY e.id) = ARRAY['hold', 'release']))",
        )
        .fetch_all(pool)
        .await
        .unwrap();
    assert!(
        wrong_entries.is_empty(),
        "withdrawal entries do not match status: {wrong_entries:?}"
    );
}

/// A plain EUR -> BTC withdrawal body.
pub fn eur_to_btc(user: &str, amount: &str) -> Value {
    json!({
        "user_id": user,
        "amount": amount,
        "currency": "EUR",
        "convert_to": "BTC",
        "address": BTC_ADDRESS,
        "tag": null,
        "end_user_reference": user,
    })
}

/// A withdrawal callback in CoinsPaid's documented shape (the older docs' exchange example,
/// every block present), for the 100.00 EUR -> BTC withdrawal of [`eur_to_btc`].
/// `provider_id` must be CoinsPaid's id of that withdrawal once it is known (a callback with
/// another id is an anomaly): see [`TestApp::callback_for`].
pub fn callback_body(foreign_id: &str, status: &str, provider_id: i64) -> Vec<u8> {
    callback_body_for_amount(foreign_id, status, provider_id, "100.00")
}

pub fn callback_body_for_amount(
    foreign_id: &str,
    status: &str,
    provider_id: i64,
    amount: &str,
) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "id": provider_id,
        "foreign_id": foreign_id,
        "end_user_reference": "u1",
        "type": "withdrawal_exchange",
        "crypto_address": {"id": 1, "currency": "EUR", "convert_to": "BTC", "address": BTC_ADDRESS, "tag": null},
        "currency_sent": {"currency": "EUR", "amount": amount},
        "currency_received": {"currency": "BTC", "amount": "0.00160000"},
        "transactions": [{"id": 1, "currency": "BTC", "transaction_type": "blockchain", "type": "withdrawal",
            "address": BTC_ADDRESS, "tag": null, "amount": "0.0016", "txid": "bb04aa", "confirmations": 3}],
        "fees": [{"type": "mining", "currency": "BTC", "amount": "0.00007402"}],
        "error": "",
        "status": status,
    }))
    .unwrap()
}

/// Runs `n` tasks at once on the multi-threaded runtime and collects their results.
pub async fn concurrently<T, F, Fut>(n: usize, make: F) -> Vec<T>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let mut set = tokio::task::JoinSet::new();
    for i in 0..n {
        set.spawn(make(i));
    }
    let mut out = Vec::with_capacity(n);
    while let Some(result) = set.join_next().await {
        out.push(result.expect("task panicked"));
    }
    out
}

/// Whether the calling test's body runs in this process. A test that asserts exact values of
/// the process-wide metrics (no other app may add to them meanwhile) calls this first: in the
/// shared test process it runs this test binary again with only that test, in a process of
/// its own, and returns false once that run passed; in that process it returns true.
/// `module` is the caller's `module_path!()`, `test` its function's name.
pub async fn in_own_process(module: &str, test: &str) -> bool {
    const OWN_PROCESS: &str = "PAYOUTD_TEST_OWN_PROCESS";
    // libtest names a test by its path without the crate's name.
    let (_, module) = module
        .split_once("::")
        .expect("a test module of this binary");
    let name = format!("{module}::{test}");
    if std::env::var(OWN_PROCESS).is_ok_and(|running| running == name) {
        return true;
    }
    let output = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args([name.as_str(), "--exact", "--nocapture"])
        .env(OWN_PROCESS, &name)
        .output()
        .await
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    print!("{text}");
    assert!(
        output.status.success(),
        "{name} failed in its own process:\n{text}"
    );
    assert!(
        text.contains("test result: ok. 1 passed"),
        "{name} did not run in its own process:\n{text}"
    );
    false
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `/readyz` until it answers 200 (15 s at most); returns its body.
pub async fn wait_ready(base: &str) -> Value {
    let client = reqwest::Client::new();
    for _ in 0..150 {
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await {
            if r.status().is_success() {
                return r.json().await.unwrap();
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("payoutd at {base} did not become ready");
}

/// The real `payoutd` binary, run from the repository root with a clean environment for
/// everything payoutd reads; callers add what the scenario needs.
pub fn payoutd_command(port: u16, database: &str) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_payoutd"));
    command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("PAYOUTD_ENV", "development")
        .env(
            "DATABASE_URL",
            format!("{}/{database}", base_database_url()),
        )
        .env("PAYOUTD_LISTEN_ADDR", format!("127.0.0.1:{port}"))
        .kill_on_drop(true);
    for var in [
        "COINSPAID_API_URL",
        "COINSPAID_API_KEY",
        "COINSPAID_API_SECRET",
        "COINSPAID_API_KEY_PREVIOUS",
        "COINSPAID_API_SECRET_PREVIOUS",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_SERVICE_NAME",
        "PAYOUTD_API_TOKENS",
        "PAYOUTD_CONFIG_DIR",
        "PAYOUTD_CRASH_AT",
        "PAYOUTD_LOG_FORMAT",
        "PAYOUTD_NOTIFY_URL",
        "PAYOUTD_NOTIFY_SECRET",
        "PAYOUTD_WORKER_ENABLED",
        "RUST_LOG",
    ] {
        command.env_remove(var);
    }
    command
}

/// A config directory with short leases and backoff, so a killed process's submission is
/// retried within seconds.
pub fn fast_retry_config_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("payoutd-test-config-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("development.toml"),
        "[coinspaid]\ntimeout_secs = 1\n[worker]\nlease_secs = 2\npoll_interval_ms = 50\nbackoff_base_ms = 10\nbackoff_max_secs = 1\nresend_margin_secs = 0\n",
    )
    .unwrap();
    dir
}

/// Starts the real binary against the simulator at `simulator_url`, with the website token
/// [`TOKEN`] and the operator `alice` ([`ADMIN_TOKEN`]), and waits until ready.
pub async fn start_service(
    port: u16,
    database: &str,
    config_dir: &std::path::Path,
    simulator_url: &str,
    crash_at: Option<&str>,
) -> tokio::process::Child {
    let mut command = payoutd_command(port, database);
    command
        .env("PAYOUTD_CONFIG_DIR", config_dir)
        .env("PAYOUTD_API_TOKENS", TOKEN)
        .env("PAYOUTD_ADMIN_TOKENS", format!("alice:{ADMIN_TOKEN}"))
        .env("COINSPAID_API_URL", simulator_url)
        .env("COINSPAID_API_KEY", SIM_KEY)
        .env("COINSPAID_API_SECRET", SIM_SECRET)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    if let Some(point) = crash_at {
        command.env("PAYOUTD_CRASH_AT", point);
    }
    let child = command.spawn().unwrap();
    wait_ready(&format!("http://127.0.0.1:{port}")).await;
    child
}

/// A simulator in this process for a separately run payoutd ([`start_service`]), signing with
/// the simulator's own key pair, accepting silently.
pub async fn start_simulator() -> Simulator {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim = Simulator::spawn(
        SimulatorSettings {
            credentials: Credentials {
                key: SIM_KEY.into(),
                secret: SecretString::new(SIM_SECRET),
            },
            callback_url: None,
            callback_delay: Duration::ZERO,
        },
        listener,
    )
    .await
    .unwrap();
    sim.control()
        .set_default_behavior(SubmitBehavior::accept_silently());
    eprintln!("simulator seed {}", sim.control().seed());
    sim
}

/// Sends SIGTERM and waits (20 s at most) for the exit; returns the exit status and everything
/// the process wrote to its piped stdout and stderr.
pub async fn stop_gracefully(
    child: &mut tokio::process::Child,
) -> (Option<std::process::ExitStatus>, String) {
    use tokio::io::AsyncReadExt;
    let pid = child.id().expect("still running").to_string();
    let killed = tokio::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .ok()
        .map(|s| s.unwrap());
    let mut output = String::new();
    if let Some(mut out) = child.stdout.take() {
        out.read_to_string(&mut output).await.unwrap();
    }
    if let Some(mut err) = child.stderr.take() {
        err.read_to_string(&mut output).await.unwrap();
    }
    (status, output)
}

/// The operator token `spawn_operators_app` configures, for the operator named `alice`.
pub const ADMIN_TOKEN: &str = "alice-operator-token-0123";

/// Configures the operator `alice` (tests of the operator interface).
pub fn with_operator(s: &mut Settings) {
    s.admin.tokens = vec![SecretString::new(format!("alice:{ADMIN_TOKEN}"))];
}

impl TestApp {
    /// `POST` to the operator API as alice; (status, body).
    pub async fn admin_post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        let r = self
            .http
            .post(self.url(path))
            .bearer_auth(ADMIN_TOKEN)
            .json(body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// `GET` from the operator API as alice.
    pub async fn admin_get(&self, path: &str) -> (StatusCode, Value) {
        let r = self
            .http
            .get(self.url(path))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }
}

/// Asserts that `written`, the notification written for `row` (changed from `previous`), is
/// the documented `withdrawal.status_changed` event of that row (docs/CONTRACT-ADDITIONS.md):
/// its own event id, the change's time to the millisecond, and the row's fields.
pub fn assert_status_changed_payload(
    written: &Value,
    row: &payoutd::withdrawals::Withdrawal,
    previous: payoutd::domain::WithdrawalStatus,
) {
    let id: uuid::Uuid = written["id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("an event id: {written}"));
    let documented = json!({
        "id": id,
        "type": "withdrawal.status_changed",
        "created_at": row.updated_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "data": {
            "withdrawal_id": row.id,
            "foreign_id": row.foreign_id,
            "user_id": row.user_id,
            "status": row.status,
            "previous_status": previous,
            "provider_status": row.provider_status,
            "amount": row.amount.to_string(),
            "currency": row.currency,
            "convert_to": row.convert_to,
            "error": row.error,
        }
    });
    assert_eq!(written, &documented);
}

impl TestApp {
    /// A withdrawal of `user`'s that CoinsPaid refused (`rejected`, released), then a signed
    /// `confirmed` callback for it: an anomaly on a finished withdrawal; no money moved.
    pub async fn rejected_then_confirmed(&self, user: &str) -> Value {
        self.fund(user, "EUR", "100.00").await;
        self.sim.push_behavior(SubmitBehavior::Refuse {
            status: 400,
            field: Some("address".into()),
            message: "Invalid address".into(),
        });
        let w = self.withdraw_ok(&eur_to_btc(user, "100.00")).await;
        assert_eq!(w["status"], "rejected", "{w}");
        assert_eq!(
            self.post_callback(&self.callback_for(&w, "confirmed"))
                .await,
            StatusCode::OK
        );
        let after = self.withdrawal(&id_of(&w)).await;
        assert_eq!(after["status"], "rejected");
        assert!(after["anomaly"].is_string(), "{after}");
        after
    }
}

/// Prometheus's `promtool` (Debian's `prometheus` package, which `.ci/run` installs), or `None`
/// outside CI when it is not on `PATH`, and the caller skips; under CI a missing one fails.
pub fn promtool() -> Option<std::path::PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("promtool"))
            .find(|p| p.is_file())
    });
    match found {
        Some(path) => Some(path),
        None if std::env::var_os("CI").is_some() => {
            panic!("CI is set but promtool is missing: .ci/run installs it (apt-get install prometheus)")
        }
        None => {
            eprintln!(
                "SKIPPED: promtool not on PATH (apt-get install prometheus); CI fails instead"
            );
            None
        }
    }
}

/// Runs `promtool args...` from the repository root, with `stdin` as its input; fails the
/// test with promtool's output unless it succeeds.
pub fn run_promtool(promtool: &std::path::Path, args: &[&str], stdin: &str) {
    use std::io::Write;
    let mut child = std::process::Command::new(promtool)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "promtool {} failed:\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
