//! The simulator's fixed exchange rates and fees. Realistic magnitudes, deterministic values.

use rust_decimal::{Decimal, RoundingStrategy};

use crate::domain::CurrencyCatalog;

/// Price of one unit in EUR.
fn eur_price(currency: &str) -> Option<Decimal> {
    let text = match currency {
        "EUR" => "1",
        "USD" => "0.92",
        "BTC" => "60000",
        "ETH" => "3000",
        "LTC" => "80",
        "USDTT" => "0.92",
        "XRP" => "0.5",
        _ => return None,
    };
    text.parse().ok()
}

fn precision(currency: &str) -> u32 {
    CurrencyCatalog::builtin()
        .precision_of(currency)
        .unwrap_or(8)
}

/// Price of one `from` in `to`.
pub fn rate(from: &str, to: &str) -> Option<Decimal> {
    if from == to {
        // A plain withdrawal of any listed currency, priced or not.
        return Some(Decimal::ONE);
    }
    Some(eur_price(from)? / eur_price(to)?)
}

/// `amount` of `from` converted to `to`, rounded down to `to`'s precision.
pub fn convert(amount: Decimal, from: &str, to: &str) -> Option<Decimal> {
    let mut converted =
        (amount * rate(from, to)?).round_dp_with_strategy(precision(to), RoundingStrategy::ToZero);
    converted.rescale(precision(to));
    Some(converted)
}

/// The fee CoinsPaid would charge on `amount` of `currency` (0.5%), at its precision.
pub fn fee(amount: Decimal, currency: &str) -> Decimal {
    (amount * Decimal::new(5, 3))
        .round_dp_with_strategy(precision(currency), RoundingStrategy::AwayFromZero)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_with_receiver_precision() {
        let btc = convert("100.00".parse().unwrap(), "EUR", "BTC").unwrap();
        assert_eq!(btc.to_string(), "0.00166666");
        assert_eq!(
            convert("1".parse().unwrap(), "BTC", "EUR")
                .unwrap()
                .to_string(),
            "60000.00"
        );
        assert_eq!(convert("1".parse().unwrap(), "EUR", "DOGE"), None);
        assert_eq!(fee("100".parse().unwrap(), "EUR").to_string(), "0.50");
    }
}
