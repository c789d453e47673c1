//! Withdrawal use cases: request (hold + store; batched in `group`), submit (to CoinsPaid),
//! settle (callbacks, look-ups, decisions; written by `settle` alone or batched in
//! `settle_batch`), reconcile (look-ups at CoinsPaid).
//! Each public service function states its transaction boundary and idempotency guarantee.

pub mod approval;
pub mod callbacks;
pub mod first_attempt;
pub mod group;
pub mod limits;
pub mod matching;
pub mod reconcile;
pub mod request;
pub mod settle;
pub mod settle_batch;
pub mod store;
pub mod submit;
pub mod transition;
pub mod travel_rule;

pub use store::Withdrawal;
