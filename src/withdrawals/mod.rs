//! A withdrawal's life, one module per stage:
//! - [`create`]: validate, hold and store (one statement path for one create or a batch);
//! - [`submit`]: send to CoinsPaid under a lease from the queue, look up unknown outcomes,
//!   reconcile what CoinsPaid went quiet about;
//! - [`settle`]: apply what CoinsPaid reports (callbacks, look-ups) or an operator decides,
//!   through the state machine, and write the settlement (one statement path for one or many).
//!
//! [`store`] reads the `withdrawals` table; [`travel_rule`] keeps MiCA data apart from it.
//! Each public service function states its transaction boundary and idempotency guarantee.

pub mod create;
pub mod queue;
pub mod settle;
pub mod store;
pub mod submit;
pub mod travel_rule;

pub use store::Withdrawal;
