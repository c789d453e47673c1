//! The service through a PostgreSQL outage and failover, on clusters of the test's own
//! (`helpers::pg_cluster`): a request that cannot be served is a 503 with `Retry-After`,
//! never a 500; `/readyz` is 503 while no writable primary answers; connections to a demoted
//! node are replaced; everything resumes without restarting payoutd.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::helpers::pg_cluster::PgCluster;
use crate::helpers::*;
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

/// A TCP front for PostgreSQL, like HAProxy: forwards to the node it routes to, and with no
/// node accepts each connection and closes it at once (what HAProxy does while no server
/// passes its check).
struct Switch {
    port: u16,
    target: Arc<Mutex<Option<u16>>>,
    open: Arc<Mutex<Vec<AbortHandle>>>,
}

impl Switch {
    async fn to(port: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let switch = Self {
            port: listener.local_addr().unwrap().port(),
            target: Arc::new(Mutex::new(Some(port))),
            open: Arc::default(),
        };
        let (target, open) = (switch.target.clone(), switch.open.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                let Some(port) = *target.lock().unwrap() else {
                    // As HAProxy: the client's first bytes (sqlx's SSLRequest) are taken,
                    // then the connection closes without an answer.
                    tokio::spawn(async move {
                        let mut first = [0u8; 8];
                        let _ = tokio::io::AsyncReadExt::read(&mut client, &mut first).await;
                    });
                    continue;
                };
                let task = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(("127.0.0.1", port)).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                open.lock().unwrap().push(task.abort_handle());
            }
        });
        switch
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}", self.port)
    }

    /// New connections go to `port`, or with `None` are accepted and closed.
    fn route(&self, port: Option<u16>) {
        *self.target.lock().unwrap() = port;
    }

    /// Cuts every forwarded connection, as a node's death does.
    fn cut(&self) {
        for task in self.open.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}

async fn cluster(settings: &[&str]) -> Option<PgCluster> {
    let cluster = PgCluster::init(settings).await;
    if cluster.is_none() {
        assert!(
            std::env::var("CI").is_err(),
            "CI must have PostgreSQL's server binaries (/usr/lib/postgresql/*/bin)"
        );
        eprintln!("SKIPPED: no PostgreSQL server binaries for a cluster of the test's own");
    }
    cluster
}

fn short_waits(s: &mut payoutd::config::Settings) {
    s.database.acquire_timeout_secs = 1;
    s.server.request_timeout_secs = 10;
}

async fn credit(app: &TestApp, reference: &str) -> (u16, Option<String>, Value) {
    let r = app.credit("u2", "EUR", "1.00", reference).await;
    let retry_after = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let status = r.status().as_u16();
    (status, retry_after, r.json().await.unwrap_or(Value::Null))
}

async fn readyz(app: &TestApp) -> (u16, Value) {
    let r = app.http.get(app.url("/readyz")).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// Repeats `reference`'s credit (idempotent on it) until it is stored: at most 15 s.
async fn credit_until_stored(app: &TestApp, reference: &str) {
    for _ in 0..150 {
        let (status, _, body) = credit(app, reference).await;
        assert_ne!(status, 500, "{reference}: {body}");
        if status == 201 || status == 200 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{reference} was not stored after the database came back");
}

fn assert_unavailable(what: &str, (status, retry_after, body): &(u16, Option<String>, Value)) {
    assert_eq!(body["code"], "unavailable", "{what}: {body}");
    assert_eq!(*status, 503, "{what}: {body}");
    assert!(retry_after.is_some(), "{what}: a 503 says when to retry");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stopped_database_is_503_with_retry_after_and_service_resumes_by_itself() {
    let Some(pg) = cluster(&[]).await else { return };
    let app = spawn_cluster_on(&pg.url(), 1, |s| {
        short_waits(s);
        // The background tasks run through the outage too, and must resume by themselves.
        s.worker.enabled = true;
        s.worker.poll_interval_ms = 50;
        s.reconciler.enabled = true;
        s.reconciler.interval_secs = 1;
    })
    .await
    .remove(0);
    app.fund("u1", "EUR", "100.00").await;
    assert_eq!(readyz(&app).await.0, 200);

    pg.stop().await;
    assert_unavailable("credit", &credit(&app, "outage-1").await);
    let (status, body) = readyz(&app).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["database"], "unavailable");

    pg.start().await;
    credit_until_stored(&app, "outage-1").await;
    // Withdrawals too: the submission worker sends what was created after the outage.
    let created = app.withdraw_ok(&eur_to_btc("u1", "10.00")).await;
    let mut sent = false;
    for _ in 0..100 {
        if app.withdrawal(&id_of(&created)).await["status"] != "pending" {
            sent = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(sent, "the worker did not resume after the outage");
    assert_eq!(readyz(&app).await.0, 200);
    app.assert_invariants().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_proxy_that_accepts_and_closes_is_503_not_500() {
    let Some(pg) = cluster(&[]).await else { return };
    let switch = Switch::to(pg.port).await;
    let app = spawn_cluster_on(&switch.url(), 1, short_waits)
        .await
        .remove(0);
    app.fund("u1", "EUR", "100.00").await;

    // The primary is gone and no other passes the proxy's check yet.
    switch.route(None);
    switch.cut();
    for n in 0..20 {
        assert_unavailable("credit", &credit(&app, &format!("gap-{n}")).await);
    }
    assert_eq!(readyz(&app).await.0, 503);

    switch.route(Some(pg.port));
    for n in 0..20 {
        credit_until_stored(&app, &format!("gap-{n}")).await;
    }
    assert_eq!(readyz(&app).await.0, 200);
    app.assert_invariants().await;
}

/// Waits until `standby` has replayed everything `primary` wrote.
async fn caught_up(primary: &PgCluster, standby: &PgCluster) {
    let lsn = |url: String, sql: &'static str| async move {
        let pool = sqlx::PgPool::connect(&format!("{url}/postgres"))
            .await
            .unwrap();
        let lsn: String = sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap();
        pool.close().await;
        lsn
    };
    let target = lsn(primary.url(), "SELECT pg_current_wal_lsn()::text").await;
    for _ in 0..100 {
        let replayed: bool = {
            let pool = sqlx::PgPool::connect(&format!("{}/postgres", standby.url()))
                .await
                .unwrap();
            let ok = sqlx::query_scalar("SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn")
                .bind(&target)
                .fetch_one(&pool)
                .await
                .unwrap();
            pool.close().await;
            ok
        };
        if replayed {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the standby did not catch up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_demoted_primary_is_503_and_its_pooled_connections_are_replaced() {
    let Some(old) = cluster(&[]).await else {
        return;
    };
    let switch = Switch::to(old.port).await;
    let app = Arc::new(
        spawn_cluster_on(&switch.url(), 1, short_waits)
            .await
            .remove(0),
    );
    app.fund("u1", "EUR", "100.00").await;
    // Several pooled connections, all to the node about to be demoted.
    concurrently(8, |n| {
        let app = app.clone();
        async move { credit_until_stored(&app, &format!("before-{n}")).await }
    })
    .await;
    let new = PgCluster::standby_of(&old).await;

    // The old primary turns read-only; its sessions stay open (nothing cuts them).
    old.execute("ALTER SYSTEM SET default_transaction_read_only = on")
        .await;
    old.execute("SELECT pg_reload_conf()").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    for n in 0..3 {
        assert_unavailable(
            "credit on a read-only node",
            &credit(&app, &format!("read-only-{n}")).await,
        );
    }
    let (status, body) = readyz(&app).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["database"], "read_only");

    // Failover: the standby is promoted and the proxy routes new connections to it.
    caught_up(&old, &new).await;
    new.promote().await;
    switch.route(Some(new.port));
    let mut statuses = Vec::new();
    for n in 0..30 {
        let (status, _, body) = credit(&app, &format!("after-{n}")).await;
        assert_ne!(status, 500, "after-{n}: {body}");
        statuses.push(status);
    }
    assert!(
        statuses[10..].iter().all(|s| *s == 201),
        "connections to the demoted node were kept: {statuses:?}"
    );
    for n in 0..3 {
        credit_until_stored(&app, &format!("read-only-{n}")).await;
    }
    assert_eq!(readyz(&app).await.0, 200);
    app.assert_invariants().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn start_up_waits_for_a_writable_primary_instead_of_failing() {
    let Some(primary) = cluster(&[]).await else {
        return;
    };
    let standby = PgCluster::standby_of(&primary).await;
    primary.stop().await;
    // Only a standby answers: creating the database and migrating must wait, not fail.
    let url = standby.url();
    let starting = tokio::spawn(async move {
        spawn_cluster_on(&url, 1, |s| s.database.startup_wait_secs = 30)
            .await
            .remove(0)
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !starting.is_finished(),
        "start-up did not wait for a primary"
    );
    standby.promote().await;
    let app = tokio::time::timeout(Duration::from_secs(20), starting)
        .await
        .expect("start-up went on once a primary was there")
        .expect("the app built");
    app.fund("u1", "EUR", "10.00").await;
    assert_eq!(readyz(&app).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_outage_is_logged_once_as_a_warning_not_an_error_every_round() {
    let Some(pg) = cluster(&[]).await else { return };
    let sim = start_simulator().await;
    let config = ScratchConfig::new(
        "[database]\nacquire_timeout_secs = 1\n\
         [worker]\nenabled = true\npoll_interval_ms = 50\n\
         [reconciler]\nenabled = true\ninterval_secs = 1\n",
    );
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let database = format!("payoutd_test_{}", uuid::Uuid::now_v7().simple());
    let mut child = payoutd_command(port, &database)
        .env("DATABASE_URL", format!("{}/{database}", pg.url()))
        .env("PAYOUTD_CONFIG_DIR", &config.0)
        .env("PAYOUTD_LOG_FORMAT", "json")
        .env("PAYOUTD_API_TOKENS", TOKEN)
        .env("PAYOUTD_ADMIN_TOKENS", format!("alice:{ADMIN_TOKEN}"))
        .env("COINSPAID_API_URL", sim.base_url())
        .env("COINSPAID_API_KEY", KEY)
        .env("COINSPAID_API_SECRET", SECRET)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = tokio::spawn(read_all(child.stdout.take().unwrap()));
    let stderr = tokio::spawn(read_all(child.stderr.take().unwrap()));
    wait_ready(&base).await;
    let http = reqwest::Client::new();
    let credit = |reference: String| {
        http.post(format!("{base}/v1/users/u1/credits"))
            .bearer_auth(TOKEN)
            .json(&serde_json::json!({"currency": "EUR", "amount": "1.00", "reference": reference}))
            .send()
    };
    assert_eq!(credit("before".into()).await.unwrap().status(), 201);

    // About six seconds away (each request waits the 1 s acquire timeout): a hundred worker
    // rounds, six reconciler rounds, six requests.
    pg.stop().await;
    for n in 0..6 {
        assert_eq!(credit(format!("away-{n}")).await.unwrap().status(), 503);
    }
    pg.start().await;
    let mut back = false;
    for _ in 0..100 {
        if credit("after".into()).await.unwrap().status() == 201 {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(back, "the service did not resume");
    // A worker and a reconciler round after the outage, to see it ended.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (_, _) = stop_gracefully(&mut child).await;
    let logs = stdout.await.unwrap() + &stderr.await.unwrap();

    let errors: Vec<&str> = logs.lines().filter(|l| l.contains("\"ERROR\"")).collect();
    assert!(
        errors.is_empty(),
        "an outage is not an ERROR at every round: {} lines, first {:?}",
        errors.len(),
        errors.first()
    );
    let warnings = logs
        .lines()
        .filter(|l| l.contains("\"WARN\"") && l.contains("database unavailable"))
        .count();
    assert!(
        (1..=2).contains(&warnings),
        "one warning per outage, not one per round: {warnings}"
    );
    assert!(logs.contains("database reachable again"));
    drop(pg);
}

/// A `PAYOUTD_CONFIG_DIR` with one `development.toml`, removed on drop.
struct ScratchConfig(std::path::PathBuf);

impl ScratchConfig {
    fn new(toml: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("payoutd-config-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("development.toml"), toml).unwrap();
        Self(dir)
    }
}

impl Drop for ScratchConfig {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn read_all(mut pipe: impl tokio::io::AsyncRead + Unpin) -> String {
    use tokio::io::AsyncReadExt;
    let mut text = String::new();
    pipe.read_to_string(&mut text).await.unwrap();
    text
}
