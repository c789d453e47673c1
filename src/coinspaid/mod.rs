//! Everything that speaks CoinsPaid's wire format: signing, wire types, the HTTP client and
//! callback verification. Wire types stay here; the rest of the crate sees domain types.

pub mod callback;
pub mod client;
pub mod signing;
pub mod wire;

pub use client::{CoinsPaidClient, LookupError, ProviderError, SubmitOutcome};
pub use signing::{Credentials, SecretUsed, Signer};

/// Header carrying the merchant's public API key, both directions.
pub const KEY_HEADER: &str = "X-Processing-Key";
/// Header carrying lowercase hex HMAC-SHA512 of the exact body bytes, both directions.
pub const SIGNATURE_HEADER: &str = "X-Processing-Signature";
