//! Currency codes and the catalogue of currencies payoutd can pay out.

use std::collections::HashMap;
use std::fmt;

use rust_decimal::Decimal;
use serde::Serialize;

/// An uppercase provider currency code (`EUR`, `BTC`, `USDTT`), made only by parsing.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Currency(String);

impl Currency {
    /// Accepts 2 to 12 characters of `A-Z0-9`. Lowercase is refused rather than folded so
    /// that what is stored is exactly what the merchant sent.
    pub fn parse(code: &str) -> Option<Self> {
        let ok = (2..=12).contains(&code.len())
            && code
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        ok.then(|| Self(code.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CurrencyKind {
    Crypto,
    Fiat,
}

/// What payoutd knows about one currency.
#[derive(Debug, Clone, Serialize)]
pub struct CurrencyInfo {
    pub currency: Currency,
    pub kind: CurrencyKind,
    /// Decimals an amount in this currency may carry.
    pub precision: u32,
    /// The smallest withdrawal, in this currency, when it is the currency that pays.
    #[serde(with = "super::money::decimal_string")]
    pub minimum_withdrawal: Decimal,
    /// Memo currencies (XRP) lose funds without a destination tag.
    pub tag_required: bool,
}

/// The currencies payoutd accepts, keyed by code.
#[derive(Debug, Clone)]
pub struct CurrencyCatalog {
    by_code: HashMap<Currency, CurrencyInfo>,
}

impl CurrencyCatalog {
    pub fn new(entries: impl IntoIterator<Item = CurrencyInfo>) -> Self {
        Self {
            by_code: entries
                .into_iter()
                .map(|info| (info.currency.clone(), info))
                .collect(),
        }
    }

    /// The currencies CoinsPaid lists for a typical merchant, with their precision and our
    /// minimums. Used until (and unless) a fresher list is loaded from the provider.
    pub fn builtin() -> Self {
        let entry = |code: &str, kind, precision, minimum: &str, tag_required| CurrencyInfo {
            currency: Currency::parse(code).expect("builtin codes are valid"),
            kind,
            precision,
            minimum_withdrawal: minimum.parse().expect("builtin minimums are valid"),
            tag_required,
        };
        use CurrencyKind::{Crypto, Fiat};
        Self::new([
            entry("EUR", Fiat, 2, "1.00", false),
            entry("USD", Fiat, 2, "1.00", false),
            entry("BTC", Crypto, 8, "0.0001", false),
            entry("ETH", Crypto, 8, "0.001", false),
            entry("LTC", Crypto, 8, "0.01", false),
            entry("USDTT", Crypto, 6, "1", false),
            entry("XRP", Crypto, 6, "1", true),
        ])
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
    fn codes_are_uppercase_alphanumeric() {
        assert!(Currency::parse("EUR").is_some());
        assert!(Currency::parse("USDTT").is_some());
        assert!(Currency::parse("eur").is_none());
        assert!(Currency::parse("E").is_none());
        assert!(Currency::parse("EU R").is_none());
        assert!(Currency::parse("ABCDEFGHIJKLM").is_none());
    }

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
