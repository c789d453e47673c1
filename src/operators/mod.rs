//! Operators in control: the approval policy, the stuck-withdrawal queue and its actions, the
//! pause switch and the audit trail. The operator API (`/admin/v1`), the console (`/admin`)
//! and `payoutd admin` all call these functions: one implementation, three ways in.
//!
//! Every decision that moves a withdrawal goes through `withdrawals::settle::transition::decide`,
//! under the same row lock and ledger guards as a CoinsPaid callback.

pub mod actions;
pub mod audit;
pub mod cli;
pub mod pause;
pub mod policy;
pub mod settings;
pub mod stuck;

pub use actions::{ActionError, Operators};
