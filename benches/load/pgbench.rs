//! The limit: pgbench running `bench/pgbench/*.sql` against the same database, same clients.

use std::path::PathBuf;
use std::time::Duration;

use tokio::process::Command;

use crate::BenchResult;

pub struct Limit {
    pub tps: f64,
    pub latency_avg_ms: f64,
}

/// Runs `script` with `clients` connections for `duration` in prepared mode (as sqlx runs
/// payoutd's statements) and reads pgbench's own summary.
pub async fn run(
    db_url: &str,
    script: &str,
    clients: usize,
    duration: Duration,
    users: usize,
) -> BenchResult<Limit> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("bench/pgbench")
        .join(script);
    let output = Command::new("pgbench")
        .args(["--no-vacuum", "--protocol=prepared"])
        .arg(format!("--client={clients}"))
        .arg(format!("--jobs={}", clients.min(2)))
        .arg(format!("--time={}", duration.as_secs()))
        .arg(format!("--define=users={users}"))
        .arg(format!("--file={}", path.display()))
        .arg(db_url)
        .output()
        .await
        .map_err(|e| format!("cannot run pgbench (is postgresql-client installed?): {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "pgbench {script} failed: {}\n{stdout}",
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    let limit = parse(&stdout).ok_or_else(|| format!("unexpected pgbench output:\n{stdout}"))?;
    eprintln!(
        "  pgbench: {:.0} tps, average latency {:.2} ms",
        limit.tps, limit.latency_avg_ms
    );
    Ok(limit)
}

fn parse(summary: &str) -> Option<Limit> {
    let value_after = |prefix: &str| {
        summary
            .lines()
            .find_map(|line| line.trim().strip_prefix(prefix))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|number| number.parse::<f64>().ok())
    };
    Some(Limit {
        tps: value_after("tps = ")?,
        latency_avg_ms: value_after("latency average = ")?,
    })
}
