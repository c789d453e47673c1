//! The catalogue: the currencies payoutd can pay out and the conversions between them.

use std::collections::HashMap;

use super::currency::{Currency, CurrencyInfo, CurrencyKind};
use super::pair::PairRules;

/// The currencies payoutd accepts, keyed by code, and the conversions between them.
#[derive(Debug, Clone)]
pub struct CurrencyCatalog {
    by_code: HashMap<Currency, CurrencyInfo>,
    pairs: PairRules,
}

impl CurrencyCatalog {
    /// A catalogue with the built-in pair rule; see [`Self::with_pairs`].
    pub fn new(entries: impl IntoIterator<Item = CurrencyInfo>) -> Self {
        Self {
            by_code: entries
                .into_iter()
                .map(|info| (info.currency.clone(), info))
                .collect(),
            pairs: PairRules::builtin(),
        }
    }

    pub fn with_pairs(self, pairs: PairRules) -> Self {
        Self { pairs, ..self }
    }

    /// The currencies CoinsPaid lists for a typical merchant, with their precision and the
    /// default minimums CoinsPaid documents (deposit, withdrawal) on its "Confirmations and
    /// limits" page. Used until (and unless) a fresher list is loaded from the provider.
    ///
    /// - BTC 0.0001 / 0.0002: docs.cryptoprocessing.com/reference/confirmations-and-limits.
    /// - ETH 0.01 / 0.01, LTC 0.01 / 0.01, XRP 0.001 / 0.001, USDTT 1 / 1: the same page in the
    ///   older docs, github.com/coinspaid/docs `confirmations-and-limits.md` (the copies of the
    ///   current page we could read stop after BTC).
    /// - EUR, USD: CoinsPaid documents no fiat withdrawal minimum (a fiat balance always pays
    ///   through a conversion, and the pair's `min_amount` governs); 1.00 is payoutd's own floor.
    ///
    /// A merchant whose account has other limits sets `[withdrawal_minimums]`.
    pub fn builtin() -> Self {
        let entry = |code: &str, kind, precision, deposit: Option<&str>, withdrawal: &str, tag| {
            CurrencyInfo {
                currency: Currency::parse(code).expect("builtin codes are valid"),
                kind,
                precision,
                minimum_withdrawal: withdrawal.parse().expect("builtin minimums are valid"),
                minimum_deposit: deposit.map(|d| d.parse().expect("builtin minimums are valid")),
                tag_required: tag,
            }
        };
        use CurrencyKind::{Crypto, Fiat};
        Self::new([
            entry("EUR", Fiat, 2, None, "1.00", false),
            entry("USD", Fiat, 2, None, "1.00", false),
            entry("BTC", Crypto, 8, Some("0.0001"), "0.0002", false),
            entry("ETH", Crypto, 8, Some("0.01"), "0.01", false),
            entry("LTC", Crypto, 8, Some("0.01"), "0.01", false),
            entry("USDTT", Crypto, 6, Some("1"), "1", false),
            entry("XRP", Crypto, 6, Some("0.001"), "0.001", true),
        ])
    }

    /// Which conversions a withdrawal may ask for.
    pub fn pairs(&self) -> &PairRules {
        &self.pairs
    }

    pub fn get(&self, currency: &Currency) -> Option<&CurrencyInfo> {
        self.by_code.get(currency)
    }

    /// Precision for display; unknown codes (only possible for rows written before a currency
    /// was dropped from the catalogue) fall back to the stored scale.
    pub fn precision_of(&self, code: &str) -> Option<u32> {
        Currency::parse(code).and_then(|c| self.get(&c).map(|i| i.precision))
    }

    pub fn all(&self) -> impl Iterator<Item = &CurrencyInfo> {
        self.by_code.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_catalogue_knows_precision_and_tags() {
        let c = CurrencyCatalog::builtin();
        let xrp = c.get(&Currency::parse("XRP").unwrap()).unwrap();
        assert!(xrp.tag_required);
        assert_eq!(c.precision_of("EUR"), Some(2));
        assert_eq!(c.precision_of("BTC"), Some(8));
        assert_eq!(c.precision_of("DOGE"), None);
    }
}
