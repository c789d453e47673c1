//! The conversions CoinsPaid offers (pairs) and the smallest amount each takes. A withdrawal
//! with `convert_to` pays in one currency and delivers another only along a pair.

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use super::currency::{Currency, CurrencyInfo, CurrencyKind};

/// Where the pair rules in force came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PairSource {
    /// No usable list from CoinsPaid (endpoint absent, failing or empty): the built-in rule.
    Builtin,
    /// `POST /v2/currencies/rates` (CoinsPaid's current docs).
    Rates,
    /// `POST /v2/currencies/pairs` (the older docs), because `rates` answered 404.
    Pairs,
}

impl PairSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Builtin => "builtin",
            Self::Rates => "coinspaid_rates",
            Self::Pairs => "coinspaid_pairs",
        }
    }
}

/// One conversion: `from` pays, `to` is delivered; `min_amount` is in `from`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    pub from: Currency,
    pub to: Currency,
    pub min_amount: Decimal,
}

/// Which conversions a withdrawal may ask for.
#[derive(Debug, Clone)]
pub struct PairRules {
    source: PairSource,
    /// Empty for [`PairSource::Builtin`].
    listed: BTreeMap<(Currency, Currency), Decimal>,
}

impl PairRules {
    /// Without a list: any currency converts to any other crypto, with no pair minimum (the
    /// currency's own withdrawal minimum still applies). CoinsPaid refuses what it does not
    /// offer, and that refusal releases the hold.
    pub fn builtin() -> Self {
        Self {
            source: PairSource::Builtin,
            listed: BTreeMap::new(),
        }
    }

    /// CoinsPaid's list. `None` when it holds no pair: an empty list would refuse every
    /// conversion, so the caller keeps the built-in rule instead. A pair listed twice keeps
    /// the larger minimum.
    pub fn listed(source: PairSource, pairs: impl IntoIterator<Item = Pair>) -> Option<Self> {
        let mut listed = BTreeMap::new();
        for pair in pairs {
            let minimum = listed.entry((pair.from, pair.to)).or_insert(Decimal::ZERO);
            *minimum = pair.min_amount.max(*minimum);
        }
        (!listed.is_empty()).then_some(Self { source, listed })
    }

    pub fn source(&self) -> PairSource {
        self.source
    }

    /// The listed pairs, in code order; none for the built-in rule.
    pub fn pairs(&self) -> impl Iterator<Item = Pair> + '_ {
        self.listed.iter().map(|((from, to), min)| Pair {
            from: from.clone(),
            to: to.clone(),
            min_amount: *min,
        })
    }

    /// Whether a withdrawal paying in `paying` may deliver `receiving`, and if so the smallest
    /// amount (in `paying`) the pair takes. What is delivered goes to an address, so it is
    /// always a crypto, and never the paying currency itself (that is a plain withdrawal).
    pub fn minimum(&self, paying: &CurrencyInfo, receiving: &CurrencyInfo) -> Option<Decimal> {
        if receiving.kind != CurrencyKind::Crypto || receiving.currency == paying.currency {
            return None;
        }
        match self.source {
            PairSource::Builtin => Some(Decimal::ZERO),
            PairSource::Rates | PairSource::Pairs => self
                .listed
                .get(&(paying.currency.clone(), receiving.currency.clone()))
                .copied(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::CurrencyCatalog;

    fn info(code: &str) -> CurrencyInfo {
        CurrencyCatalog::builtin()
            .get(&Currency::parse(code).unwrap())
            .unwrap()
            .clone()
    }

    fn pair(from: &str, to: &str, min: &str) -> Pair {
        Pair {
            from: Currency::parse(from).unwrap(),
            to: Currency::parse(to).unwrap(),
            min_amount: min.parse().unwrap(),
        }
    }

    #[test]
    fn the_builtin_rule_converts_to_any_other_crypto() {
        let rules = PairRules::builtin();
        assert_eq!(
            rules.minimum(&info("EUR"), &info("BTC")),
            Some(Decimal::ZERO)
        );
        assert_eq!(rules.minimum(&info("EUR"), &info("USD")), None);
        assert_eq!(rules.minimum(&info("BTC"), &info("BTC")), None);
    }

    #[test]
    fn a_listed_rule_allows_only_listed_pairs_in_their_direction() {
        let rules = PairRules::listed(
            PairSource::Rates,
            [
                pair("EUR", "BTC", "25"),
                pair("EUR", "BTC", "20"),
                pair("BTC", "EUR", "0.003"),
            ],
        )
        .unwrap();
        assert_eq!(
            rules.minimum(&info("EUR"), &info("BTC")),
            Some("25".parse().unwrap())
        );
        assert_eq!(rules.minimum(&info("EUR"), &info("ETH")), None);
        assert_eq!(rules.minimum(&info("USD"), &info("BTC")), None);
        // Listed, but a withdrawal cannot deliver fiat to an address.
        assert_eq!(rules.minimum(&info("BTC"), &info("EUR")), None);
        assert_eq!(rules.pairs().count(), 2);
    }

    #[test]
    fn an_empty_list_is_no_list() {
        assert!(PairRules::listed(PairSource::Pairs, []).is_none());
    }
}
