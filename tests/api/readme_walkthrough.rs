//! The README's quick start, run verbatim against the real `payoutd` binary in development
//! mode (embedded simulator, dev token), so the documented commands cannot rot.

use std::process::Stdio;

use crate::helpers::{free_port, payoutd_command, stop_gracefully, wait_ready, DropDatabase};
use tokio::process::{Child, Command};

/// The shell block between the walkthrough markers.
fn walkthrough_script() -> String {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme
        .find("<!-- walkthrough:start -->")
        .expect("start marker");
    let end = readme.find("<!-- walkthrough:end -->").expect("end marker");
    let block = &readme[start..end];
    let body_start = block.find("```sh\n").expect("sh block") + "```sh\n".len();
    let body_end = block[body_start..].find("```").expect("block end") + body_start;
    block[body_start..body_end].to_owned()
}

async fn start_payoutd(port: u16, sim_port: u16, database: &str) -> Child {
    payoutd_command(port, database)
        .env(
            "PAYOUTD_SIMULATOR_LISTEN_ADDR",
            format!("127.0.0.1:{sim_port}"),
        )
        .env("PAYOUTD_SIMULATOR_CALLBACK_DELAY_MS", "1000")
        // Logs go to stdout; at this volume the pipe buffer holds them until the test reads.
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("payoutd starts")
}

#[tokio::test]
async fn readme_walkthrough_works_against_the_real_binary() {
    let (port, sim_port) = (free_port(), free_port());
    let database = format!("payoutd_test_{}", uuid::Uuid::now_v7().simple());
    let _drop_database = DropDatabase::new(&database);
    let mut child = start_payoutd(port, sim_port, &database).await;
    let base = format!("http://127.0.0.1:{port}");
    let ready = wait_ready(&base).await;
    assert_eq!(ready["provider"], "simulator");
    assert!(ready["warning"].as_str().unwrap().contains("simulator"));

    let output = Command::new("bash")
        .arg("-euo")
        .arg("pipefail")
        .arg("-c")
        .arg(walkthrough_script())
        .env("PAYOUTD", &base)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "walkthrough failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<&str> = stdout.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 5, "{stdout}");
    assert!(lines[0].contains(r#""available":"250.00""#), "{}", lines[0]);
    assert!(
        lines[1].contains(r#""status":"processing""#),
        "{}",
        lines[1]
    );
    assert!(
        lines[2].contains(r#""available":"150.00","held":"100.00","total":"250.00""#),
        "{}",
        lines[2]
    );
    assert!(lines[3].contains(r#""status":"confirmed""#), "{}", lines[3]);
    assert!(
        lines[4].contains(r#""available":"150.00","held":"0.00","total":"150.00""#),
        "{}",
        lines[4]
    );

    // SIGTERM: stop accepting, finish in-flight work, exit 0.
    let (status, logs) = stop_gracefully(&mut child).await;
    let status = status.expect("payoutd exits after SIGTERM");
    assert!(
        status.success(),
        "payoutd exit status after SIGTERM: {status}"
    );
    assert!(
        logs.contains("DEVELOPMENT MODE"),
        "the start-up warning is loud: {logs}"
    );
    assert!(logs.contains("payoutd stopped cleanly"), "{logs}");
}
