//! The command line, through the real binary: help for payoutd and each command, the
//! version, and usage errors that name what was wrong and exit 2. None of these needs
//! configuration or a database.

use std::process::Output;

async fn payoutd(args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_payoutd"))
        .args(args)
        // Whatever the environment holds, help and usage errors never read it.
        .env("PAYOUTD_CONFIG_DIR", "/nonexistent-payoutd-config")
        .env_remove("PAYOUTD_ADMIN_TOKEN")
        .output()
        .await
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test]
async fn help_lists_every_command_and_exits_zero() {
    for args in [&["--help"][..], &["-h"], &["help"]] {
        let out = payoutd(args).await;
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        let help = stdout(&out);
        for command in [
            "serve",
            "migrate",
            "healthcheck",
            "openapi",
            "simulator",
            "admin",
        ] {
            assert!(help.contains(command), "{args:?} lists {command}: {help}");
        }
        assert!(help.contains("OTEL_EXPORTER_OTLP_ENDPOINT"), "{help}");
    }
}

#[tokio::test]
async fn every_command_has_its_own_help() {
    for (args, mentions) in [
        (&["serve", "--help"][..], "SIGTERM"),
        (&["migrate", "--help"], "migration"),
        (&["healthcheck", "--help"], "/readyz"),
        (&["openapi", "--help"], "OpenAPI"),
        (&["simulator", "--help"], "PAYOUTD_SIMULATOR_LISTEN_ADDR"),
        (&["admin", "--help"], "PAYOUTD_ADMIN_TOKEN"),
        (&["admin", "approve", "--help"], "<ID>"),
        (&["admin", "resolve", "--help"], "--override"),
        (&["help", "admin", "pause"], "all|CUR"),
    ] {
        let out = payoutd(args).await;
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        let help = stdout(&out);
        assert!(help.contains("Usage: payoutd"), "{args:?}: {help}");
        assert!(
            help.contains(mentions),
            "{args:?} mentions {mentions}: {help}"
        );
    }
}

#[tokio::test]
async fn version_prints_the_crate_version() {
    let out = payoutd(&["--version"]).await;
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        stdout(&out).trim(),
        format!("payoutd {}", env!("CARGO_PKG_VERSION"))
    );
}

#[tokio::test]
async fn usage_errors_name_the_offending_argument_and_exit_2() {
    for (args, named) in [
        (&["--frobnicate"][..], "--frobnicate"),
        (&["serve", "--port", "8080"], "--port"),
        (&["migrate", "now"], "now"),
        (&["drop-table"], "drop-table"),
        (&["admin", "approve"], "<ID>"),
        (&["admin", "resolve", "abc", "maybe", "why"], "maybe"),
        (&["admin", "reject", "abc"], "<REASON>"),
    ] {
        let out = payoutd(args).await;
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        let error = stderr(&out);
        assert!(error.contains(named), "{args:?} names {named}: {error}");
        assert!(stdout(&out).is_empty(), "{args:?}");
    }
}

#[tokio::test]
async fn a_command_s_own_failure_keeps_its_exit_code() {
    // A configuration that cannot be read: 2, as for every command that loads one.
    let out = payoutd(&["serve"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("PAYOUTD_CONFIG_DIR"),
        "{}",
        stderr(&out)
    );
    // `payoutd admin` without an operator token: 2, before anything is sent.
    let out = payoutd(&["admin", "stuck"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("PAYOUTD_ADMIN_TOKEN"),
        "{}",
        stderr(&out)
    );
    // The OpenAPI document needs no configuration at all.
    let out = payoutd(&["openapi"]).await;
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("\"openapi\""));
}
