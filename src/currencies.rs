//! The currencies and conversions payoutd accepts: loaded from CoinsPaid's
//! `/v2/currencies/list` and its pair list (`/v2/currencies/rates`, or `/v2/currencies/pairs`
//! where rates answers 404), cached, refreshed in the background, and used by every
//! validation. Until the first successful load the built-in list serves; without a usable
//! pair list the built-in pair rule does, so a missing list never refuses every withdrawal.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use crate::coinspaid::wire::{CurrencyListEntry, PairList};
use crate::coinspaid::{CoinsPaidClient, ProviderError};
use crate::domain::money::MAX_SCALE;
use crate::domain::{Currency, Pair, PairRules, PairSource};
use crate::domain::{CurrencyCatalog, CurrencyInfo, CurrencyKind};

/// Memo currencies: CoinsPaid's list does not say which need a destination tag, and sending
/// one of these without a tag can lose the funds.
const TAG_REQUIRED: &[&str] = &["XRP", "XLM", "EOS", "BNB", "TON", "ATOM", "HBAR", "ALGO"];

/// Where the currency list in force came from.
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
    /// `[withdrawal_minimums]`: wins over the documented defaults.
    minimums: HashMap<Currency, Decimal>,
}

/// The configured minimum, else the documented default we know, else none.
fn withdrawal_minimum(
    currency: &Currency,
    known: Option<&CurrencyInfo>,
    minimums: &HashMap<Currency, Decimal>,
) -> Decimal {
    minimums
        .get(currency)
        .copied()
        .or(known.map(|k| k.minimum_withdrawal))
        .unwrap_or(Decimal::ZERO)
}

/// Builds a catalogue from CoinsPaid's list; entries with an unusable code are skipped.
/// `minimum_amount` is CoinsPaid's *deposit* minimum: it is kept as such, and withdrawal
/// minimums come from `minimums` and the built-in (documented) ones.
pub fn catalog_from(
    entries: &[CurrencyListEntry],
    minimums: &HashMap<Currency, Decimal>,
) -> CurrencyCatalog {
    let builtin = CurrencyCatalog::builtin();
    CurrencyCatalog::new(entries.iter().filter_map(|e| {
        let currency = Currency::parse(&e.currency)?;
        let known = builtin.get(&currency);
        let listed = e
            .precision
            .or(known.map(|k| k.precision))
            .unwrap_or(8);
        // Clamped rather than dropped: the clamp only refuses amounts with more decimals than
        // 18 (invalid_amount, never rounded), while dropping would refuse the whole currency.
        if listed > MAX_SCALE {
            tracing::warn!(
                currency = %currency,
                listed,
                used = MAX_SCALE,
                "CoinsPaid lists more decimals than an exact amount can carry beside its integer digits; clamped"
            );
        }
        Some(CurrencyInfo {
            kind: if e.kind.eq_ignore_ascii_case("fiat") {
                CurrencyKind::Fiat
            } else {
                CurrencyKind::Crypto
            },
            precision: listed.min(MAX_SCALE),
            minimum_withdrawal: withdrawal_minimum(&currency, known, minimums),
            minimum_deposit: e
                .minimum_amount
                .or(known.and_then(|k| k.minimum_deposit)),
            tag_required: TAG_REQUIRED.contains(&currency.as_str()),
            currency,
        })
    }))
}

/// The built-in list with the configured minimums.
fn builtin_catalog(minimums: &HashMap<Currency, Decimal>) -> CurrencyCatalog {
    let builtin = CurrencyCatalog::builtin();
    CurrencyCatalog::new(builtin.all().map(|c| CurrencyInfo {
        minimum_withdrawal: withdrawal_minimum(&c.currency, Some(c), minimums),
        ..c.clone()
    }))
}

/// The pairs of CoinsPaid's list, or `None` when it names none we can use. An entry without
/// both blocks or with an unusable code names no pair; a missing `min_amount` is no minimum.
pub fn pairs_from(list: &PairList, source: PairSource) -> Option<PairRules> {
    PairRules::listed(
        source,
        list.0.iter().filter_map(|entry| {
            let from = entry.currency_from.as_ref()?;
            let to = entry.currency_to.as_ref()?;
            Some(Pair {
                from: Currency::parse(&from.currency)?,
                to: Currency::parse(&to.currency)?,
                min_amount: from.min_amount.unwrap_or_default().max(Decimal::ZERO),
            })
        }),
    )
}

/// Why no pair list came back.
enum NoPairs {
    /// Both endpoints answered 404: this CoinsPaid offers no pair list.
    Absent,
    /// An answer with no usable pair.
    Empty(PairSource),
    /// No usable answer this time (transport, 5xx, undecodable...).
    Failed(ProviderError),
}

impl Currencies {
    pub fn new(client: CoinsPaidClient, minimums: HashMap<Currency, Decimal>) -> Self {
        Self {
            loaded: RwLock::new(Loaded {
                catalog: Arc::new(builtin_catalog(&minimums)),
                source: Source::Builtin,
                refreshed_at: None,
            }),
            client,
            minimums,
        }
    }

    /// The catalogue in force, pairs included; cheap (an `Arc` clone).
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

    /// `/v2/currencies/rates`, or `/v2/currencies/pairs` when rates answers 404.
    async fn fetch_pairs(&self) -> Result<PairRules, NoPairs> {
        let absent = |e: &ProviderError| matches!(e, ProviderError::Http { status: 404, .. });
        let (list, source) = match self.client.currencies_rates().await {
            Ok(list) => (list, PairSource::Rates),
            Err(e) if absent(&e) => match self.client.currencies_pairs().await {
                Ok(list) => (list, PairSource::Pairs),
                Err(e) if absent(&e) => return Err(NoPairs::Absent),
                Err(e) => return Err(NoPairs::Failed(e)),
            },
            Err(e) => return Err(NoPairs::Failed(e)),
        };
        pairs_from(&list, source).ok_or(NoPairs::Empty(source))
    }

    /// The pair rules to put in force now, logging any fallback.
    async fn load_pairs(&self) -> PairRules {
        let builtin = "conversions follow the built-in rule (any listed currency to another crypto, no pair minimum)";
        match self.fetch_pairs().await {
            Ok(rules) => {
                tracing::info!(
                    pairs = rules.pairs().count(),
                    pairs_source = rules.source().as_str(),
                    "pair list loaded from CoinsPaid"
                );
                rules
            }
            Err(NoPairs::Absent) => {
                tracing::warn!(
                    pairs_source = "builtin",
                    "CoinsPaid answers neither /v2/currencies/rates nor /v2/currencies/pairs (404): {builtin}"
                );
                PairRules::builtin()
            }
            Err(NoPairs::Empty(source)) => {
                tracing::warn!(
                    pairs_source = "builtin",
                    endpoint = source.as_str(),
                    "CoinsPaid's pair list names no usable pair: {builtin}"
                );
                PairRules::builtin()
            }
            Err(NoPairs::Failed(err)) => {
                let last = self.catalog().pairs().clone();
                tracing::warn!(
                    error = %err,
                    pairs_source = last.source().as_str(),
                    "pair list not loaded; keeping the pair rules in force"
                );
                last
            }
        }
    }

    /// Loads the currency list and the pair list from CoinsPaid and puts them in force;
    /// returns how many currencies there are. An empty currency list is refused rather than
    /// put in force (it would refuse every withdrawal); a missing pair list falls back as
    /// [`Self::load_pairs`] says.
    pub async fn refresh(&self) -> Result<usize, ProviderError> {
        let entries = self.client.currencies_list().await?;
        let catalog = catalog_from(&entries, &self.minimums);
        let count = catalog.all().count();
        if count == 0 {
            return Err(ProviderError::Decode(
                "CoinsPaid listed no usable currency".into(),
            ));
        }
        let pairs = self.load_pairs().await;
        *self.loaded.write().unwrap_or_else(|p| p.into_inner()) = Loaded {
            catalog: Arc::new(catalog.with_pairs(pairs)),
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

    fn code(c: &str) -> Currency {
        Currency::parse(c).unwrap()
    }

    #[test]
    fn the_provider_list_becomes_the_catalogue_with_withdrawal_minimums_not_deposit_ones() {
        let entries: Vec<CurrencyListEntry> = serde_json::from_str(
            r#"[{"id":1,"type":"crypto","currency":"BTC","minimum_amount":"0.0005","precision":8},
                {"id":2,"type":"fiat","currency":"EUR","minimum_amount":"5","precision":2},
                {"id":3,"type":"crypto","currency":"XRP","minimum_amount":"20","precision":6},
                {"id":4,"type":"crypto","currency":"NEWT","minimum_amount":"3","precision":30},
                {"id":5,"type":"crypto","currency":"bad code","precision":8}]"#,
        )
        .unwrap();
        let configured = HashMap::from([(code("XRP"), "25".parse().unwrap())]);
        let c = catalog_from(&entries, &configured);
        assert_eq!(c.all().count(), 4);
        let btc = c.get(&code("BTC")).unwrap();
        assert_eq!(
            (
                btc.minimum_withdrawal.to_string(),
                btc.minimum_deposit.unwrap().to_string()
            ),
            ("0.0002".to_owned(), "0.0005".to_owned()),
            "the documented withdrawal minimum, the listed deposit minimum"
        );
        assert_eq!(c.get(&code("EUR")).unwrap().kind, CurrencyKind::Fiat);
        let xrp = c.get(&code("XRP")).unwrap();
        assert!(xrp.tag_required);
        assert_eq!(xrp.minimum_withdrawal.to_string(), "25", "configured");
        let newt = c.get(&code("NEWT")).unwrap();
        assert_eq!(
            (newt.precision, newt.minimum_withdrawal),
            (MAX_SCALE, Decimal::ZERO),
            "clamped; no minimum known"
        );
    }

    #[test]
    fn configured_minimums_apply_to_the_builtin_list_too() {
        let c = builtin_catalog(&HashMap::from([(code("BTC"), "0.001".parse().unwrap())]));
        assert_eq!(
            c.get(&code("BTC")).unwrap().minimum_withdrawal.to_string(),
            "0.001"
        );
        assert_eq!(
            c.get(&code("ETH")).unwrap().minimum_withdrawal.to_string(),
            "0.01"
        );
    }

    #[test]
    fn a_pair_list_becomes_pair_rules() {
        let list: PairList = serde_json::from_str(
            r#"[{"currency_from":{"currency":"EUR","min_amount":"25.00000000"},"currency_to":{"currency":"BTC"}},
                {"currency_from":{"currency":"USD"},"currency_to":{"currency":"ETH"}},
                {"currency_from":{"currency":"eur"},"currency_to":{"currency":"BTC"}},
                {"currency_to":{"currency":"BTC"}}]"#,
        )
        .unwrap();
        let rules = pairs_from(&list, PairSource::Pairs).unwrap();
        let pairs: Vec<Pair> = rules.pairs().collect();
        assert_eq!(pairs.len(), 2);
        assert_eq!(pairs[0].min_amount.to_string(), "25.00000000");
        assert_eq!(pairs[1].min_amount, Decimal::ZERO);
        assert!(pairs_from(&PairList(Vec::new()), PairSource::Rates).is_none());
    }
}
