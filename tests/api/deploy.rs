//! What an operator deploys: the minimum Rust version the dependency graph really needs, the
//! Dockerfile and compose file's promises, the `migrate` and `healthcheck` subcommands of
//! the real binary (.ci/docker-build-check replays the Dockerfile's build stage), and the
//! monitoring in deploy/: alert rules that load and pass their unit tests, a runbook entry per
//! alert, and alert and dashboard queries that name only series payoutd exports.

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

const ALERTS: &str = "deploy/prometheus/payoutd-alerts.yml";
const ALERT_TESTS: &str = "deploy/prometheus/payoutd-alerts.test.yml";
const DASHBOARD: &str = "deploy/grafana/payoutd-money-path.json";

#[test]
fn the_alert_rules_load_in_prometheus_and_pass_their_unit_tests() {
    let Some(promtool) = promtool() else { return };
    run_promtool(&promtool, &["check", "rules", ALERTS], "");
    run_promtool(&promtool, &["test", "rules", ALERT_TESTS], "");
}

/// Every `- alert: Name` of the rules file, in order.
fn alert_names(rules: &str) -> Vec<&str> {
    rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
        .collect()
}

#[test]
fn every_alert_has_a_runbook_entry_an_absolute_configurable_link_and_both_test_cases() {
    let rules = repo_file(ALERTS);
    let runbook = repo_file("docs/RUNBOOK.md");
    let tests = repo_file(ALERT_TESTS);
    let alerts = alert_names(&rules);
    assert!(alerts.len() >= 16, "{alerts:?}");
    let links: Vec<&str> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("runbook_url: "))
        .collect();
    assert_eq!(links.len(), alerts.len(), "one runbook_url per alert");
    let default = links[0]
        .split('"')
        .nth(1)
        .expect("a default runbook in quotes");
    assert!(default.starts_with("https://"), "{default}");
    for (alert, link) in alerts.iter().zip(&links) {
        let anchor = alert.to_lowercase();
        assert_eq!(
            *link,
            format!("'{{{{ or $externalLabels.payoutd_runbook_url \"{default}\" }}}}#{anchor}'"),
            "{alert}: one base URL, the external label's or the default"
        );
        assert!(
            runbook.lines().any(|l| l == format!("## {alert}")),
            "docs/RUNBOOK.md has no entry for {alert}"
        );
        // Each alert is evaluated at least once expecting nothing and once expecting an alert.
        let mut quiet = false;
        let mut firing = false;
        let lines: Vec<&str> = tests.lines().map(str::trim).collect();
        for (i, line) in lines.iter().enumerate() {
            if *line == format!("alertname: {alert}") {
                match lines.get(i + 1) {
                    Some(&"exp_alerts: []") => quiet = true,
                    Some(&"exp_alerts:") => firing = true,
                    other => panic!("{alert}: alertname followed by {other:?}"),
                }
            }
        }
        assert!(quiet, "{ALERT_TESTS} never shows {alert} not firing");
        assert!(firing, "{ALERT_TESTS} never shows {alert} firing");
    }
}

/// A label matcher of a PromQL selector: (label, operator, value).
type Matcher = (String, String, String);
/// A series name and its label matchers.
type Selector = (String, Vec<Matcher>);

/// Every `payoutd_*` selector in a PromQL expression.
fn selectors(expr: &str) -> Vec<Selector> {
    let mut found = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("payoutd_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let name = &tail[..end];
        let mut matchers = Vec::new();
        if let Some(inner) = tail[end..].strip_prefix('{') {
            let inner = &inner[..inner.find('}').expect("a closed selector")];
            for matcher in inner.split(", ").flat_map(|m| m.split(',')) {
                let matcher = matcher.trim();
                let op_at = matcher.find(['=', '!']).expect("an operator");
                let op_end = matcher[op_at..]
                    .find('"')
                    .map(|i| op_at + i)
                    .expect("a quoted value");
                matchers.push((
                    matcher[..op_at].to_owned(),
                    matcher[op_at..op_end].to_owned(),
                    matcher[op_end..].trim_matches('"').to_owned(),
                ));
            }
        }
        found.push((name.to_owned(), matchers));
        rest = &tail[end..];
    }
    found
}

/// The catalogue's entry for a series name, a histogram's `_bucket`/`_sum`/`_count` included.
fn catalogued(name: &str) -> &'static payoutd::telemetry::catalog::Metric {
    ["", "_bucket", "_sum", "_count"]
        .iter()
        .filter_map(|suffix| name.strip_suffix(suffix))
        .find_map(payoutd::telemetry::catalog::find)
        .unwrap_or_else(|| panic!("{name} is not in telemetry::catalog::CATALOGUE"))
}

/// Checks each selector's series and label values against the catalogue; returns them.
fn checked_selectors(expr: &str) -> Vec<Selector> {
    let found = selectors(expr);
    for (name, matchers) in &found {
        let metric = catalogued(name);
        for (label, op, value) in matchers {
            if ["job", "instance", "le"].contains(&label.as_str()) {
                continue;
            }
            let (_, values) = metric
                .labels
                .iter()
                .find(|(l, _)| l == label)
                .unwrap_or_else(|| panic!("{name} has no label {label}: {expr}"));
            if values.is_empty() || op.starts_with('!') {
                continue;
            }
            for alternative in value.split('|') {
                assert!(
                    values.contains(&alternative),
                    "{name}{{{label}=\"{alternative}\"}} is never recorded: {expr}"
                );
            }
        }
    }
    found
}

#[test]
fn the_alerts_query_only_series_and_label_values_payoutd_exports() {
    let rules = repo_file(ALERTS);
    let mut exprs = Vec::new();
    let mut lines = rules.lines().peekable();
    while let Some(line) = lines.next() {
        let Some(expr) = line.trim().strip_prefix("expr: ") else {
            continue;
        };
        let mut expr = expr.to_owned();
        if expr == "|" {
            expr.clear();
            while let Some(next) = lines.next_if(|l| l.starts_with("          ")) {
                expr.push_str(next.trim());
                expr.push(' ');
            }
        }
        exprs.push(expr);
    }
    assert_eq!(exprs.len(), alert_names(&rules).len());
    let mut series = 0;
    for expr in &exprs {
        series += checked_selectors(expr).len();
    }
    assert!(series >= exprs.len() - 1, "only PayoutdDown reads `up`");
}

#[test]
fn the_dashboard_shows_http_traffic_and_every_query_follows_the_job_and_instance_variables() {
    let dashboard: serde_json::Value = serde_json::from_str(&repo_file(DASHBOARD)).unwrap();
    let variables: Vec<&str> = dashboard["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    for variable in ["datasource", "job", "instance"] {
        assert!(variables.contains(&variable), "{variables:?}");
    }
    let panels = dashboard["panels"].as_array().unwrap();
    let mut ids = std::collections::BTreeSet::new();
    let mut exprs = Vec::new();
    for panel in panels {
        assert!(
            ids.insert(panel["id"].as_u64().unwrap()),
            "panel ids repeat"
        );
        let title = panel["title"].as_str().unwrap();
        assert_eq!(panel["datasource"]["uid"], "${datasource}", "{title}");
        let targets = panel["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{title}");
        for target in targets {
            let expr = target["expr"].as_str().unwrap();
            let found = checked_selectors(expr);
            assert!(!found.is_empty(), "{title}: {expr}");
            for (name, matchers) in found {
                for (variable, pattern) in [("job", "$job"), ("instance", "$instance")] {
                    assert!(
                        matchers
                            .iter()
                            .any(|(l, op, v)| l == variable && op == "=~" && v == pattern),
                        "{title}: {name} is not filtered by {variable}=~\"{pattern}\": {expr}"
                    );
                }
            }
            exprs.push((title, expr));
        }
    }
    let shows = |what: &str, needle: &str| {
        assert!(
            exprs
                .iter()
                .any(|(_, e)| e.contains(needle) && e.contains("route) (")),
            "no panel shows {what} by route"
        );
    };
    shows("the HTTP request rate", "rate(payoutd_http_requests_total{");
    shows("the HTTP 5xx ratio", "status=~\"5..\"");
    shows(
        "HTTP p50 latency",
        "histogram_quantile(0.5, sum by (le, route) (rate(payoutd_http_request_duration_seconds_bucket",
    );
    shows(
        "HTTP p99 latency",
        "histogram_quantile(0.99, sum by (le, route) (rate(payoutd_http_request_duration_seconds_bucket",
    );
}
