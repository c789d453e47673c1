//! Pure domain types: money, identifiers, addresses and the withdrawal state machine.
//! Nothing here does I/O, so every rule can be unit-tested without a server or database.

pub mod address;
pub mod catalog;
pub mod currency;
pub mod ids;
pub mod money;
pub mod pair;
pub mod travel_rule;
pub mod withdrawal;

pub use catalog::CurrencyCatalog;
pub use currency::{Currency, CurrencyInfo, CurrencyKind};
pub use ids::{ForeignId, IdempotencyKey, UserId};
pub use money::Amount;
pub use pair::{Pair, PairRules, PairSource};
pub use withdrawal::{Effect, ProviderEvent, Transition, WithdrawalStatus};
