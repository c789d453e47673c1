//! The use cases: one method for each thing the website or an operator asks of payoutd. A
//! handler in `api/` parses the request into a use case's input, calls it once and renders
//! what it returns; a test calls the same method without HTTP. `app.rs` builds them.
//!
//! Each facade holds the services it needs and owns the order of the steps (validate, hold,
//! first attempt); the steps themselves live in `withdrawals/`, `ledger/` and `operators/`.

mod balances;
mod callbacks;
mod events;
mod limits;
mod operations;
mod quotes;
mod withdrawals;

use uuid::Uuid;

pub use balances::{Balances, Credit, CreditError, Credited};
pub use callbacks::Callbacks;
pub use events::{EventError, Events};
pub use limits::Limits;
pub use operations::{Detail, Operations};
pub use quotes::{Quote, QuoteError, QuoteSettings, QuoteSource, Quotes};
pub use withdrawals::{Requested, Withdrawals};

/// Every use case a handler may call, one facade per resource.
#[derive(Clone)]
pub struct UseCases {
    pub withdrawals: Withdrawals,
    pub balances: Balances,
    pub limits: Limits,
    pub quotes: Quotes,
    /// What operators do and read: actions, the stuck queue, pauses, review flags, audit.
    pub operations: Operations,
    pub callbacks: Callbacks,
    /// The events feed and deliveries on request.
    pub events: Events,
}

/// One page of a keyset-paginated listing.
#[derive(Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// The id the next page starts after; `None` on the last page.
    pub next: Option<Uuid>,
}

impl<T> Page<T> {
    /// `rows` were fetched with `limit + 1`: the extra row only says there is a next page.
    fn of(mut rows: Vec<T>, limit: i64, id_of: impl Fn(&T) -> Uuid) -> Self {
        let limit = usize::try_from(limit).unwrap_or(0);
        if rows.len() <= limit {
            return Self {
                items: rows,
                next: None,
            };
        }
        rows.truncate(limit);
        let next = rows.last().map(id_of);
        Self { items: rows, next }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_ends_where_the_extra_row_begins() {
        let ids: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
        let page = Page::of(ids.clone(), 2, |id| *id);
        assert_eq!((page.items, page.next), (ids[..2].to_vec(), Some(ids[1])));
        let last = Page::of(ids[..2].to_vec(), 2, |id| *id);
        assert_eq!((last.items.len(), last.next), (2, None));
    }
}
