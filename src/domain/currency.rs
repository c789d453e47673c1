//! Currency codes and what payoutd knows about each currency.

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

impl TryFrom<String> for Currency {
    type Error = String;

    fn try_from(code: String) -> Result<Self, Self::Error> {
        Self::parse(&code).ok_or_else(|| format!("not a currency code: {code:?}"))
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
        assert!(Currency::try_from(String::from("eur")).is_err());
    }
}
