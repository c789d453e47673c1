//! Currency codes and the catalogue of currencies payoutd can pay out.

use std::collections::HashMap;
use std::fmt;

use rust_decimal::Decimal;
use serde::Serialize;

use super::pair::PairRules;

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
    /// The smallest withdrawal, in this currency, when it is the currency that pays: the
    /// configured `[withdrawal_minimums]`, else CoinsPaid's documented default, else zero.
    #[serde(with = "super::money::decimal_string")]
    pub minimum_withdrawal: Decimal,
    /// CoinsPaid's `minimum_amount` from `/v2/currencies/list`: the smallest *deposit*. Shown
    /// for information, never used to judge a withdrawal.
    #[serde(serialize_with = "super::money::decimal_string_opt::serialize")]
    pub minimum_deposit: Option<Decimal>,
    /// Memo currencies (XRP) lose funds without a destination tag.
    pub tag_required: bool,
}

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
