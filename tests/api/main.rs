//! The integration tests: one binary, so a change in `src` relinks one test executable rather
//! than one per file. Each module is one area; run one with `cargo test --test api callbacks::`.
//!
//! Every test runs in this one process, on `RUST_TEST_THREADS` threads: each builds its own
//! application, database and simulator (see `helpers`). The metrics recorder is the process's
//! own, shared by every application here; a test that needs exact counts runs in a process of
//! its own (`helpers::in_own_process`).

mod helpers;

mod abuse;
mod anomalies;
mod api;
mod callbacks;
mod cli;
mod conformance;
mod console;
mod console_browser;
mod crash_recovery;
mod currencies_and_quotes;
mod database_failover;
mod db_restart;
mod deploy;
mod docs_offline;
mod edge;
mod events;
mod fewer_commits;
mod first_attempt;
mod fuzz;
mod group_commit;
mod group_commit_fallback;
mod harness;
mod limits;
mod logs;
mod money_guards;
mod notifications;
mod observability;
mod openapi;
mod operators;
mod patroni_failover;
mod provider_faults;
mod readme_walkthrough;
mod reconcile;
mod release_on_proof;
mod replicas;
mod retention;
mod secret_rotation;
mod settle_batch;
mod simulator;
mod soak;
mod timeouts;
mod traces;
mod travel_rule;
mod usecases;
mod withdrawal_flow;
