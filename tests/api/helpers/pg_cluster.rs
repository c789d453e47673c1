//! A PostgreSQL cluster of the test's own: `initdb` into a temporary directory, a free
//! loopback port, `pg_ctl start/stop`. Tests that stop, kill or reconfigure PostgreSQL use
//! one, never the machine's shared server (someone's own database on a laptop, every other
//! test's connections here).
//!
//! PostgreSQL refuses to run as root: when the test runs as root, every server command runs
//! as the `postgres` OS user (which Debian's server package creates), in a directory that
//! user owns.

use std::path::{Path, PathBuf};
use std::process::Output;

/// The newest installed server binaries, `/usr/lib/postgresql/<major>/bin` (Debian's layout).
pub fn postgres_bin_dir() -> Option<PathBuf> {
    let newest = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .max()?;
    let bin = PathBuf::from(format!("/usr/lib/postgresql/{newest}/bin"));
    bin.join("initdb").exists().then_some(bin)
}

/// Who runs the server: `None` for the current user, or the `postgres` user's (uid, gid)
/// when the test runs as root.
pub fn server_user() -> Option<(u32, u32)> {
    let me = std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m));
    if me.ok()? != 0 {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").expect("/etc/passwd readable");
    let line = passwd
        .lines()
        .find(|l| l.starts_with("postgres:"))
        .expect("running as root needs the `postgres` OS user (Debian's postgresql package) to run a throw-away cluster");
    let fields: Vec<&str> = line.split(':').collect();
    Some((fields[2].parse().unwrap(), fields[3].parse().unwrap()))
}

/// A command that runs as the server's user (see [`server_user`]).
pub fn as_server_user(program: impl AsRef<std::ffi::OsStr>) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(program);
    if let Some((uid, gid)) = server_user() {
        command.uid(uid).gid(gid);
    }
    command.env_remove("PGDATA").env_remove("PGPORT");
    command
}

/// A directory under the system's temporary directory, owned by the server's user, removed
/// on drop.
pub struct ScratchDir {
    pub path: PathBuf,
}

impl ScratchDir {
    pub fn new(prefix: &str) -> Self {
        let path = std::env::temp_dir().join(format!("{prefix}-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&path).unwrap();
        if let Some((uid, gid)) = server_user() {
            std::os::unix::fs::chown(&path, Some(uid), Some(gid)).unwrap();
        }
        Self { path }
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("keeping {} of the failed test", self.path.display());
            return;
        }
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// One throw-away cluster: trust authentication for `postgres` on 127.0.0.1:`port`, its
/// socket in its own directory. Stopped (immediately) and removed on drop.
pub struct PgCluster {
    pub port: u16,
    bin: PathBuf,
    data: PathBuf,
    log: PathBuf,
    // Last: removed after the server is stopped.
    _dir: ScratchDir,
}

impl PgCluster {
    /// `None` where no PostgreSQL server binaries are installed.
    pub async fn init(settings: &[&str]) -> Option<Self> {
        let bin = postgres_bin_dir()?;
        let dir = ScratchDir::new("payoutd-pg");
        let data = dir.path.join("data");
        let output = as_server_user(bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ])
            .output()
            .await
            .expect("initdb runs");
        assert_success("initdb", &output);
        let port = super::free_port();
        let mut conf = format!(
            "\nport = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
             max_connections = 100\nfsync = off\n",
            dir.path.display()
        );
        for setting in settings {
            conf.push_str(setting);
            conf.push('\n');
        }
        append(&data.join("postgresql.conf"), &conf);
        let cluster = Self {
            port,
            bin,
            log: dir.path.join("server.log"),
            data,
            _dir: dir,
        };
        cluster.start().await;
        Some(cluster)
    }

    /// A hot standby streaming from `primary` (`pg_basebackup -R`), started.
    pub async fn standby_of(primary: &PgCluster) -> Self {
        let dir = ScratchDir::new("payoutd-pg-standby");
        let data = dir.path.join("data");
        let output = as_server_user(primary.bin.join("pg_basebackup"))
            .arg("-D")
            .arg(&data)
            .args([
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-R",
                "-X",
                "stream",
                "-c",
                "fast",
            ])
            .arg("-p")
            .arg(primary.port.to_string())
            .output()
            .await
            .expect("pg_basebackup runs");
        assert_success("pg_basebackup", &output);
        let port = super::free_port();
        append(
            &data.join("postgresql.conf"),
            &format!(
                "\nport = {port}\nunix_socket_directories = '{}'\n",
                dir.path.display()
            ),
        );
        let cluster = Self {
            port,
            bin: primary.bin.clone(),
            log: dir.path.join("server.log"),
            data,
            _dir: dir,
        };
        cluster.start().await;
        cluster
    }

    /// Promotes a standby to primary and waits until it accepts writes.
    pub async fn promote(&self) {
        self.pg_ctl(&["promote", "-w"]).await;
    }

    /// Runs one statement as `postgres` in the `postgres` database.
    pub async fn execute(&self, sql: &str) {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&format!("{}/postgres", self.url()))
            .await
            .unwrap();
        sqlx::raw_sql(sql).execute(&mut conn).await.unwrap();
        conn.close().await.unwrap();
    }

    /// `postgres://postgres@127.0.0.1:<port>`, without a database name.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}", self.port)
    }

    /// Starts the server and waits until it accepts connections.
    pub async fn start(&self) {
        self.pg_ctl(&["start", "-w", "-t", "30"]).await;
    }

    /// Stops the server (fast: ends open sessions, which is what clients see in an outage).
    pub async fn stop(&self) {
        self.pg_ctl(&["stop", "-w", "-m", "fast"]).await;
    }

    async fn pg_ctl(&self, args: &[&str]) {
        let output = as_server_user(self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&self.data)
            .arg("-l")
            .arg(&self.log)
            .args(args)
            .output()
            .await
            .expect("pg_ctl runs");
        if !output.status.success() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            panic!(
                "pg_ctl {args:?} failed: {}\nserver log:\n{log}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let _ = std::process::Command::new(self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&self.data)
            .args(["stop", "-m", "immediate"])
            .uid_if_root()
            .output();
    }
}

trait UidIfRoot {
    fn uid_if_root(&mut self) -> &mut Self;
}

impl UidIfRoot for std::process::Command {
    fn uid_if_root(&mut self) -> &mut Self {
        use std::os::unix::process::CommandExt;
        if let Some((uid, gid)) = server_user() {
            self.uid(uid).gid(gid);
        }
        self
    }
}

pub fn assert_success(what: &str, output: &Output) {
    assert!(
        output.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    file.write_all(text.as_bytes()).unwrap();
}
