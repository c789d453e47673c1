//! The simulator's pair list: what `/v2/currencies/rates` and `/v2/currencies/pairs` answer
//! and `/v2/exchange/calculate` quotes. Scriptable, so a test can remove a pair, raise a pair
//! minimum, or make the endpoints absent or failing.

use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::rates;
use crate::domain::{CurrencyCatalog, CurrencyKind};

/// One exchangeable pair: `from` pays, `to` is delivered; `min_amount` is in `from`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimPair {
    pub from: String,
    pub to: String,
    pub min_amount: Decimal,
}

impl SimPair {
    pub fn new(from: &str, to: &str, min_amount: Decimal) -> Self {
        Self {
            from: from.to_owned(),
            to: to.to_owned(),
            min_amount,
        }
    }
}

/// Which of CoinsPaid's two pair endpoints the simulator answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PairEndpoints {
    /// Both `/v2/currencies/rates` (current docs) and `/v2/currencies/pairs` (older docs).
    #[default]
    Both,
    /// Only `/v2/currencies/pairs`; rates answers 404 (a CoinsPaid from before rates).
    PairsOnly,
    /// Neither: both answer 404.
    Neither,
    /// Both answer 503.
    Failing,
}

/// Every fiat of `catalog` to every crypto and back, with the paying currency's withdrawal
/// minimum as the pair minimum (crypto to crypto is not listed, as in CoinsPaid's examples).
pub fn default_pairs(catalog: &CurrencyCatalog) -> Vec<SimPair> {
    let mut all: Vec<_> = catalog.all().collect();
    all.sort_by(|a, b| a.currency.cmp(&b.currency));
    let mut pairs = Vec::new();
    for from in &all {
        for to in &all {
            if from.kind != to.kind {
                pairs.push(SimPair::new(
                    from.currency.as_str(),
                    to.currency.as_str(),
                    from.minimum_withdrawal,
                ));
            }
        }
    }
    pairs
}

/// The documented `data` of `/v2/currencies/rates` and `/v2/currencies/pairs`, filtered by
/// the optional `currency_from` / `currency_to` of the request.
pub fn listing(
    pairs: &[SimPair],
    catalog: &CurrencyCatalog,
    from: Option<&str>,
    to: Option<&str>,
) -> Value {
    let kind = |code: &str| {
        crate::domain::Currency::parse(code)
            .and_then(|c| catalog.get(&c).map(|i| i.kind))
            .map(|k| {
                if k == CurrencyKind::Fiat {
                    "fiat"
                } else {
                    "crypto"
                }
            })
    };
    let data: Vec<Value> = pairs
        .iter()
        .filter(|p| from.is_none_or(|f| f == p.from) && to.is_none_or(|t| t == p.to))
        .map(|p| {
            let mut currency_from = json!({
                "currency": p.from,
                "type": kind(&p.from),
                "min_amount": p.min_amount.to_string(),
            });
            if let Some(deposit) = crate::domain::Currency::parse(&p.from)
                .and_then(|c| catalog.get(&c).and_then(|i| i.minimum_deposit))
            {
                currency_from["min_amount_deposit_with_exchange"] = json!(deposit.to_string());
            }
            json!({
                "currency_from": currency_from,
                "currency_to": {"currency": p.to, "type": kind(&p.to)},
                "rate_from": "1",
                "rate_to": rates::rate(&p.from, &p.to).map(|r| r.round_dp(8).to_string()),
            })
        })
        .collect();
    json!({ "data": data })
}
