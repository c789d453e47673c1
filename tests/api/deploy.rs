//! What an operator deploys: the minimum Rust version the dependency graph really needs, the
//! Dockerfile and compose file's promises, and the `migrate` and `healthcheck` subcommands of
//! the real binary. (.ci/docker-build-check replays the Dockerfile's build stage.)

use std::process::Stdio;

use crate::helpers::*;

/// `1.89` and `1.89.0` compare equal.
fn version(text: &str) -> Vec<u32> {
    let mut parts: Vec<u32> = text.split('.').map(|p| p.parse().unwrap_or(0)).collect();
    parts.resize(3, 0);
    parts
}

fn repo_file(name: &str) -> String {
    std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(name)).unwrap()
}

#[test]
fn rust_version_and_docker_base_cover_the_dependency_graph() {
    let output = std::process::Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--locked"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let resolved: std::collections::HashSet<&str> = metadata["resolve"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap())
        .collect();
    let mut needed = (vec![0], String::new());
    let mut claimed = None;
    for package in metadata["packages"].as_array().unwrap() {
        let Some(rv) = package["rust_version"].as_str() else {
            continue;
        };
        if package["name"] == "payoutd" {
            claimed = Some(version(rv));
        } else if resolved.contains(package["id"].as_str().unwrap()) && version(rv) > needed.0 {
            needed = (
                version(rv),
                format!(
                    "{} {}",
                    package["name"].as_str().unwrap(),
                    package["version"].as_str().unwrap()
                ),
            );
        }
    }
    let claimed = claimed.expect("Cargo.toml states a rust-version");
    assert!(
        claimed >= needed.0,
        "Cargo.toml claims rust-version {claimed:?}, but {} needs {:?}",
        needed.1,
        needed.0
    );
    let dockerfile = repo_file("Dockerfile");
    let base = dockerfile
        .lines()
        .find_map(|l| l.strip_prefix("FROM rust:"))
        .expect("the build stage is FROM rust:<version>");
    let base = version(base.split('-').next().unwrap());
    assert!(
        base >= needed.0,
        "the Dockerfile builds with Rust {base:?}, but {} needs {:?}",
        needed.1,
        needed.0
    );
}

#[test]
fn the_image_runs_as_a_numeric_user_with_a_healthcheck_and_compose_publishes_on_loopback() {
    let dockerfile = repo_file("Dockerfile");
    let user = dockerfile
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("a USER");
    assert!(
        user.split(':')
            .all(|id| id.trim().parse::<u32>().is_ok_and(|id| id > 0)),
        "USER {user} must be numeric and not root (runAsNonRoot)"
    );
    assert!(dockerfile.contains(r#"CMD ["/usr/local/bin/payoutd", "healthcheck"]"#));
    let compose = repo_file("compose.yaml");
    let mut in_ports = false;
    let mut published = 0;
    for line in compose.lines() {
        let trimmed = line.trim();
        if trimmed == "ports:" {
            in_ports = true;
            continue;
        }
        if in_ports && trimmed.starts_with('-') {
            published += 1;
            assert!(
                trimmed
                    .trim_start_matches(['-', ' ', '"'])
                    .starts_with("127.0.0.1:"),
                "compose publishes {trimmed} beyond loopback"
            );
        } else {
            in_ports = false;
        }
    }
    assert!(published >= 1);
    assert!(compose.contains(r#"test: ["CMD", "/usr/local/bin/payoutd", "healthcheck"]"#));
}

#[tokio::test]
async fn migrate_applies_every_migration_and_healthcheck_reports_readiness() {
    let database = format!("payoutd_test_{}", uuid::Uuid::now_v7().simple());
    let _drop_database = DropDatabase::new(&database);
    let port = free_port();
    let status = payoutd_command(port, &database)
        .arg("migrate")
        .stdout(Stdio::null())
        .status()
        .await
        .unwrap();
    assert!(status.success());
    let pool = sqlx::PgPool::connect(&format!("{}/{database}", base_database_url()))
        .await
        .unwrap();
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(applied as usize, payoutd::db::MIGRATOR.iter().count());
    pool.close().await;

    let healthcheck = || {
        let mut command = payoutd_command(port, &database);
        command.arg("healthcheck").stderr(Stdio::null());
        command
    };
    assert!(
        !healthcheck().status().await.unwrap().success(),
        "nothing listens yet"
    );
    let mut server = payoutd_command(port, &database)
        .env(
            "PAYOUTD_SIMULATOR_LISTEN_ADDR",
            format!("127.0.0.1:{}", free_port()),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_ready(&format!("http://127.0.0.1:{port}")).await;
    assert!(healthcheck().status().await.unwrap().success());
    server.kill().await.unwrap();
}
