//! The currencies payoutd accepts: loaded from CoinsPaid's `/v2/currencies/list`, cached,
//! refreshed in the background, and used by every validation. Until the first successful
//! load (or if CoinsPaid is unreachable at start) the built-in list serves.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use crate::coinspaid::wire::CurrencyListEntry;
use crate::coinspaid::{CoinsPaidClient, ProviderError};
use crate::domain::currency::{CurrencyCatalog, CurrencyInfo, CurrencyKind};
use crate::domain::Currency;

/// Memo currencies: CoinsPaid's list does not say which need a destination tag, and sending
/// one of these without a tag can lose the funds.
const TAG_REQUIRED: &[&str] = &["XRP", "XLM", "EOS", "BNB", "TON", "ATOM", "HBAR", "ALGO"];

/// Where the catalogue in force came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Builtin,
    CoinsPaid,
}

struct Loaded {
    catalog: Arc<CurrencyCatalog>,
    source: Source,
    refreshed_at: Option<DateTime<Utc>>,
}

pub struct Currencies {
    loaded: RwLock<Loaded>,
    client: CoinsPaidClient,
}

/// Builds a catalogue from CoinsPaid's list; entries with an unusable code are skipped.
pub fn catalog_from(entries: &[CurrencyListEntry]) -> CurrencyCatalog {
    let builtin = CurrencyCatalog::builtin();
    CurrencyCatalog::new(entries.iter().filter_map(|e| {
        let currency = Currency::parse(&e.currency)?;
        let known = builtin.get(&currency);
        Some(CurrencyInfo {
            kind: if e.kind.eq_ignore_ascii_case("fiat") {
                CurrencyKind::Fiat
            } else {
                CurrencyKind::Crypto
            },
            precision: e
                .precision
                .or(known.map(|k| k.precision))
                .unwrap_or(8)
                .min(crate::domain::money::MAX_SCALE),
            minimum_withdrawal: e
                .minimum_amount
                .or(known.map(|k| k.minimum_withdrawal))
                .unwrap_or(Decimal::ZERO),
            tag_required: TAG_REQUIRED.contains(&currency.as_str()),
            currency,
        })
    }))
}

impl Currencies {
    pub fn new(client: CoinsPaidClient) -> Self {
        Self {
            loaded: RwLock::new(Loaded {
                catalog: Arc::new(CurrencyCatalog::builtin()),
                source: Source::Builtin,
                refreshed_at: None,
            }),
            client,
        }
    }

    /// The catalogue in force; cheap (an `Arc` clone).
    pub fn catalog(&self) -> Arc<CurrencyCatalog> {
        self.loaded
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .catalog
            .clone()
    }

    pub fn source(&self) -> (Source, Option<DateTime<Utc>>) {
        let loaded = self.loaded.read().unwrap_or_else(|p| p.into_inner());
        (loaded.source, loaded.refreshed_at)
    }

    /// Loads the list from CoinsPaid and puts it in force; returns how many currencies it has.
    /// An empty list is refused rather than put in force (it would refuse every withdrawal).
    pub async fn refresh(&self) -> Result<usize, ProviderError> {
        let entries = self.client.currencies_list().await?;
        let catalog = catalog_from(&entries);
        let count = catalog.all().count();
        if count == 0 {
            return Err(ProviderError::Decode(
                "CoinsPaid listed no usable currency".into(),
            ));
        }
        *self.loaded.write().unwrap_or_else(|p| p.into_inner()) = Loaded {
            catalog: Arc::new(catalog),
            source: Source::CoinsPaid,
            refreshed_at: Some(Utc::now()),
        };
        Ok(count)
    }

    /// Refreshes every `every` until `shutdown`; a failed refresh keeps the last good list.
    pub async fn run(
        self: Arc<Self>,
        every: Duration,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        crate::background::every("currency refresh", every, shutdown, || async {
            if let Err(err) = self.refresh().await {
                tracing::warn!(error = %err, "currency list not refreshed; keeping the last one");
            }
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_provider_list_becomes_the_catalogue() {
        let entries: Vec<CurrencyListEntry> = serde_json::from_str(
            r#"[{"id":1,"type":"crypto","currency":"BTC","minimum_amount":"0.0005","precision":8},
                {"id":2,"type":"fiat","currency":"EUR","minimum_amount":"5","precision":2},
                {"id":3,"type":"crypto","currency":"XRP","minimum_amount":"20","precision":6},
                {"id":4,"type":"crypto","currency":"bad code","precision":8}]"#,
        )
        .unwrap();
        let c = catalog_from(&entries);
        assert_eq!(c.all().count(), 3);
        let btc = c.get(&Currency::parse("BTC").unwrap()).unwrap();
        assert_eq!(btc.minimum_withdrawal.to_string(), "0.0005");
        assert_eq!(
            c.get(&Currency::parse("EUR").unwrap()).unwrap().kind,
            CurrencyKind::Fiat
        );
        assert!(
            c.get(&Currency::parse("XRP").unwrap())
                .unwrap()
                .tag_required
        );
    }
}
