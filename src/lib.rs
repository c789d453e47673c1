//! payoutd: a merchant-side CoinsPaid withdrawal service.
//!
//! The crate is a library so that `main.rs` stays thin and tests build exactly the
//! application that runs in production (see [`app::Application`]).

pub mod api;
pub mod app;
pub mod background;
pub mod cli;
pub mod coinspaid;
pub mod config;
pub mod currencies;
pub mod db;
pub mod domain;
pub mod error;
pub mod faults;
pub mod ledger;
pub mod notify;
pub mod operators;
pub mod server;
pub mod simulator;
pub mod standard_webhooks;
pub mod strict_json;
pub mod telemetry;
pub mod usecases;
pub mod withdrawals;
