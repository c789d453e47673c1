//! CoinsPaid's JSON shapes, exactly as they travel. Shared by the client, the callback
//! handler and the simulator, so both ends of every test speak the same format.
//!
//! Amounts travel as decimal strings. Incoming provider data is read leniently (a number
//! where a string was documented is still read), outgoing data strictly.

mod catalog;
mod lenient;
mod report;
mod withdrawal;

pub use catalog::*;
pub use report::*;
pub use withdrawal::*;

/// `{"data": ...}` envelope used by most successful answers.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Envelope<T> {
    pub data: T,
}
