//! CoinsPaid's callbacks: verified over their raw bytes, then applied.

use crate::coinspaid::Signer;
use crate::error::Error;
use crate::withdrawals::settle::batch::Settlements;
use crate::withdrawals::settle::callbacks::{self, CallbackOutcome};

#[derive(Clone)]
pub struct Callbacks {
    settlements: Settlements,
    /// The merchant's CoinsPaid key and secret (and the pair being replaced).
    signer: Signer,
}

impl Callbacks {
    pub fn new(settlements: Settlements, signer: Signer) -> Self {
        Self {
            settlements,
            signer,
        }
    }

    /// Checks `key` and the HMAC `signature` over `body` before reading it, then applies what
    /// it says (see `withdrawals::settle::callbacks::receive`: idempotent, a duplicate changes nothing).
    pub async fn receive(
        &self,
        key: Option<&str>,
        signature: Option<&str>,
        body: &[u8],
    ) -> Result<CallbackOutcome, Error> {
        callbacks::receive(&self.settlements, &self.signer, key, signature, body).await
    }
}
