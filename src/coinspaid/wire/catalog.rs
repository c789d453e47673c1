//! Currencies, pairs and exchange estimates.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::lenient::{lenient_decimal, lenient_decimal_opt, lenient_i64_opt, lenient_list};

/// One entry of `POST /v2/currencies/list`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CurrencyListEntry {
    #[serde(default)]
    pub id: Option<i64>,
    /// `crypto` or `fiat`.
    #[serde(rename = "type")]
    pub kind: String,
    pub currency: String,
    /// The smallest **deposit** ("Returns a list of available currencies, minimum deposit
    /// amounts, and deposit and withdrawal fees"): never a withdrawal minimum.
    #[serde(
        default,
        deserialize_with = "lenient_decimal_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub minimum_amount: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision: Option<u32>,
}

/// `data` of `POST /v2/currencies/rates` (current docs) and `POST /v2/currencies/pairs`
/// (older docs), which answer the same shape. Entries that do not decode are skipped.
#[derive(Debug, Clone, Deserialize)]
#[serde(transparent)]
pub struct PairList(#[serde(deserialize_with = "lenient_list")] pub Vec<CurrencyPair>);

/// One exchangeable pair. Either block may be missing in some answer: such an entry names no
/// pair and is ignored by the reader. `rate_from`/`rate_to` are reference rates ("should not be
/// used for exchanges in live environments"), kept only for completeness.
#[derive(Debug, Clone, Deserialize)]
pub struct CurrencyPair {
    #[serde(default)]
    pub currency_from: Option<PairSide>,
    #[serde(default)]
    pub currency_to: Option<PairSide>,
    #[serde(default, deserialize_with = "lenient_decimal_opt")]
    pub rate_from: Option<Decimal>,
    #[serde(default, deserialize_with = "lenient_decimal_opt")]
    pub rate_to: Option<Decimal>,
}

/// `currency_from` or `currency_to` of a pair.
#[derive(Debug, Clone, Deserialize)]
pub struct PairSide {
    pub currency: String,
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// On `currency_from`: the smallest amount of it the pair converts.
    #[serde(default, deserialize_with = "lenient_decimal_opt")]
    pub min_amount: Option<Decimal>,
    /// On `currency_from`: the smallest deposit converted on arrival (not a withdrawal rule).
    #[serde(default, deserialize_with = "lenient_decimal_opt")]
    pub min_amount_deposit_with_exchange: Option<Decimal>,
}

/// `POST /v2/exchange/calculate` request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExchangeCalculateRequest {
    pub sender_currency: String,
    pub receiver_currency: String,
    pub sender_amount: String,
}

/// `data` of `POST /v2/exchange/calculate`: an estimate. It is fixed for `fix_period` seconds
/// (from `ts_fixed` to `ts_release`) only for `/v2/exchange/fixed`; a withdrawal with
/// `convert_to` converts at the rate of the moment it is processed.
#[derive(Debug, Clone, Deserialize)]
pub struct ExchangeEstimate {
    #[serde(default)]
    pub sender_currency: Option<String>,
    #[serde(default, deserialize_with = "lenient_decimal_opt")]
    pub sender_amount: Option<Decimal>,
    #[serde(default)]
    pub receiver_currency: Option<String>,
    #[serde(deserialize_with = "lenient_decimal")]
    pub receiver_amount: Decimal,
    #[serde(default)]
    pub fee_currency: Option<String>,
    #[serde(default, deserialize_with = "lenient_decimal_opt")]
    pub fee_amount: Option<Decimal>,
    /// Units of `receiver_currency` for one unit of `sender_currency`.
    #[serde(default, deserialize_with = "lenient_decimal_opt")]
    pub price: Option<Decimal>,
    /// Unix seconds: when the price was fixed, and when it is released.
    #[serde(default, deserialize_with = "lenient_i64_opt")]
    pub ts_fixed: Option<i64>,
    #[serde(default, deserialize_with = "lenient_i64_opt")]
    pub ts_release: Option<i64>,
    /// Seconds the price is held for `/v2/exchange/fixed` (60 in every example).
    #[serde(default, deserialize_with = "lenient_i64_opt")]
    pub fix_period: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::super::Envelope;
    use super::*;

    fn data<T: serde::de::DeserializeOwned>(body: &str) -> T {
        serde_json::from_str::<Envelope<T>>(body).unwrap().data
    }

    #[test]
    fn reads_the_documented_currency_lists() {
        // docs.cryptoprocessing.com/api-reference/endpoints/currencies-list, verbatim.
        let current: Vec<CurrencyListEntry> = data(
            r#"{
"data": [
{
"id": 1,
"type": "crypto",
"currency": "BTC",
"minimum_amount": "0.00020000",
"deposit_fee_percent": "0.000700",
"withdrawal_fee_percent": "0.010000",
"precision": 8
},
{
"id": 5,
"type": "crypto",
"currency": "ETH",
"minimum_amount": "0.00500000",
"deposit_fee_percent": "0.010000",
"withdrawal_fee_percent": "0.000000",
"precision": 8
},
{
"id": 87,
"type": "crypto",
"currency": "USDC",
"minimum_amount": "5.00000000",
"deposit_fee_percent": "0.010000",
"withdrawal_fee_percent": "0.000000",
"precision": 8
}
]
}"#,
        );
        assert_eq!(current.len(), 3);
        assert_eq!(current[2].currency, "USDC");
        assert_eq!(current[1].minimum_amount.unwrap().to_string(), "0.00500000");
        // github.com/coinspaid/docs api-documentation/api-reference.md, "Get list of supported
        // currencies", verbatim.
        let older: Vec<CurrencyListEntry> = data(include_str!(
            "../../../tests/fixtures/coinspaid/currencies_list_gh.json"
        ));
        assert_eq!(
            (older[0].currency.as_str(), older[0].precision),
            ("BTC", Some(8))
        );
    }

    #[test]
    fn reads_the_documented_pair_lists() {
        // docs.cryptoprocessing.com/api-reference/endpoints/currencies-rates, verbatim.
        let current: PairList = data(
            r#"{
"data": [
{
"currency_from": {
"currency": "BTC",
"type": "crypto",
"min_amount": "0.00010000",
"min_amount_deposit_with_exchange": "0.00020000"
},
"currency_to": {
"currency": "EUR",
"type": "fiat"
},
"rate_from": "1",
"rate_to": "58077.41037702"
}
]
}"#,
        );
        let from = current.0[0].currency_from.as_ref().unwrap();
        assert_eq!(
            (from.currency.as_str(), from.min_amount.unwrap().to_string()),
            ("BTC", "0.00010000".to_owned())
        );
        // docs.cryptoprocessing.com/api-reference/currencies/list-of-currency-rates (an earlier
        // version of the page, with `description` fields inside the blocks), verbatim.
        let described: PairList = data(
            r#"{
"data": [
{
"currency_from": {
"currency": "BTC",
"type": "crypto",
"min_amount": "0.00010000",
"description": "Filter by currency ISO that exchanges from.",
"min_amount_deposit_with_exchange": "0.00010000"
},
"currency_to": {
"currency": "EUR",
"type": "fiat",
"description": "Filter by currency ISO that can be converted to."
},
"rate_from": "1",
"rate_to": "20693.84879354"
}
]
}"#,
        );
        assert_eq!(described.0[0].currency_to.as_ref().unwrap().currency, "EUR");
        // github.com/coinspaid/docs api-documentation/api-reference.md, "Get list of currencies
        // rates" and "Get list of exchangeable currency pairs", verbatim.
        let rates: PairList = data(include_str!(
            "../../../tests/fixtures/coinspaid/currencies_rates_gh.json"
        ));
        assert_eq!(rates.0.len(), 1);
        let pairs: PairList = data(include_str!(
            "../../../tests/fixtures/coinspaid/currencies_pairs_gh.json"
        ));
        assert_eq!(pairs.0.len(), 4);
        let eur_btc = pairs.0[1].currency_from.as_ref().unwrap();
        assert_eq!(
            (
                eur_btc.currency.as_str(),
                eur_btc.min_amount.unwrap().to_string(),
                eur_btc.min_amount_deposit_with_exchange
            ),
            ("EUR", "25.00000000".to_owned(), None)
        );
    }

    #[test]
    fn a_pair_list_is_read_tolerantly() {
        let list: PairList = data(
            r#"{"data":[
                {"currency_from":{"currency":"EUR","min_amount":25},"currency_to":{"currency":"BTC"},"rate_to":0.00001,"extra":true},
                {"currency_from":{"currency":"USD","min_amount":"not a number"},"currency_to":{"currency":"BTC"}},
                {"currency_to":{"currency":"ETH"}},
                "garbage"
            ]}"#,
        );
        assert_eq!(list.0.len(), 2, "the undecodable entries are skipped");
        assert_eq!(
            list.0[0]
                .currency_from
                .as_ref()
                .unwrap()
                .min_amount
                .unwrap()
                .to_string(),
            "25"
        );
        assert!(list.0[1].currency_from.is_none());
    }

    #[test]
    fn reads_the_documented_exchange_estimates() {
        // docs.cryptoprocessing.com/api-reference/endpoints/exchange-calculate, verbatim.
        let current: ExchangeEstimate = data(
            r#"{
"data": {
"sender_currency": "BTC",
"sender_amount": "0.02000000",
"receiver_currency": "EUR",
"receiver_amount": "1546.28528889",
"fee_currency": "BTC",
"fee_amount": "0.00100000",
"price": "77314.26444450",
"ts_fixed": 1775172819,
"ts_release": 1775172879,
"fix_period": 60
}
}"#,
        );
        // `price` is receiver units for one sender unit: 0.02 BTC x price = the EUR received.
        assert_eq!(
            (current.sender_amount.unwrap() * current.price.unwrap()).round_dp(8),
            current.receiver_amount
        );
        assert_eq!(
            (current.ts_fixed, current.ts_release, current.fix_period),
            (Some(1775172819), Some(1775172879), Some(60))
        );
        // docs.cryptoprocessing.com/api-reference/exchange/calculate-the-exchange-rate (an
        // earlier version), verbatim: EUR to BTC, the fee in CPD.
        let earlier: ExchangeEstimate = data(
            r#"{
"data": {
"sender_currency": "EUR",
"sender_amount": "25.00000000",
"receiver_currency": "BTC",
"receiver_amount": "0.00123001",
"fee_currency": "CPD",
"fee_amount": "0.17266485",
"price": "0.00004920",
"ts_fixed": 1665008630,
"ts_release": 1665008690,
"fix_period": 60
}
}"#,
        );
        assert_eq!(earlier.price.unwrap().to_string(), "0.00004920");
        // github.com/coinspaid/docs api-documentation/api-reference.md, "Calculate exchange
        // rates", verbatim: `sender_amount` a bare number.
        let older: ExchangeEstimate = data(include_str!(
            "../../../tests/fixtures/coinspaid/exchange_calculate_gh.json"
        ));
        assert_eq!(older.sender_amount.unwrap().to_string(), "1");
        assert_eq!(older.price, Some(older.receiver_amount));
        assert_eq!(older.fix_period, Some(60));
    }

    #[test]
    fn an_estimate_without_the_optional_fields_or_with_string_times_is_read() {
        let e: ExchangeEstimate =
            data(r#"{"data":{"receiver_amount":0.5,"ts_fixed":"1564293159","fix_period":null}}"#);
        assert_eq!(e.receiver_amount.to_string(), "0.5");
        assert_eq!(
            (e.ts_fixed, e.ts_release, e.fix_period),
            (Some(1564293159), None, None)
        );
    }
}
