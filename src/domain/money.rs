//! Money amounts: positive decimals parsed from strings, never floats.

use std::fmt;

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The most integer digits an amount may have. Keeps every amount far inside the range of
/// `rust_decimal` (28 significant digits) and of the `NUMERIC` columns, whatever the currency.
const MAX_INTEGER_DIGITS: usize = 15;
/// The most decimals any currency we know of uses (ETH-style tokens use 18).
pub const MAX_SCALE: u32 = 18;

/// Why a string is not an amount. The API turns every variant into `invalid_amount`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("an amount is a decimal string such as \"100.50\"")]
    Malformed,
    #[error("an amount must be greater than zero")]
    NotPositive,
    #[error("an amount may have at most {MAX_INTEGER_DIGITS} integer digits")]
    TooLarge,
    #[error("{currency} allows at most {allowed} decimals")]
    TooManyDecimals { currency: String, allowed: u32 },
}

/// A strictly positive decimal amount, made only by parsing.
///
/// Accepted form: ASCII digits, optionally a dot followed by at least one digit. No sign, no
/// exponent, no whitespace, no thousands separators: what a merchant sends is exactly what is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Amount(Decimal);

impl Amount {
    pub fn parse(text: &str) -> Result<Self, AmountError> {
        let (int_part, frac_part) = match text.split_once('.') {
            Some((i, f)) => (i, Some(f)),
            None => (text, None),
        };
        let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !all_digits(int_part) || frac_part.is_some_and(|f| !all_digits(f)) {
            return Err(AmountError::Malformed);
        }
        let significant_int = int_part.trim_start_matches('0');
        if significant_int.len() > MAX_INTEGER_DIGITS {
            return Err(AmountError::TooLarge);
        }
        let frac_len = frac_part.map_or(0, str::len);
        if frac_len > MAX_SCALE as usize {
            return Err(AmountError::TooManyDecimals {
                currency: "any currency".into(),
                allowed: MAX_SCALE,
            });
        }
        let value: Decimal = text.parse().map_err(|_| AmountError::Malformed)?;
        Self::from_decimal(value)
    }

    /// Wraps a decimal read back from the database or computed by the ledger.
    pub fn from_decimal(value: Decimal) -> Result<Self, AmountError> {
        if value <= Decimal::ZERO {
            return Err(AmountError::NotPositive);
        }
        Ok(Self(value))
    }

    /// Refuses more decimals than `precision` (trailing zeros count: "1.000" is three decimals,
    /// because what the merchant wrote is what we forward to CoinsPaid).
    pub fn check_precision(self, currency: &str, precision: u32) -> Result<Self, AmountError> {
        if self.0.scale() > precision {
            return Err(AmountError::TooManyDecimals {
                currency: currency.to_owned(),
                allowed: precision,
            });
        }
        Ok(self)
    }

    pub fn value(self) -> Decimal {
        self.0
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Amount::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Renders a balance or ledger amount with exactly `precision` decimals ("150.00", not "150").
pub fn format_amount(value: Decimal, precision: u32) -> String {
    let mut v = value;
    v.rescale(precision);
    v.to_string()
}

/// Serde helper: a decimal as a JSON string, for response types.
pub mod decimal_string {
    use rust_decimal::Decimal;
    use serde::Serializer;

    pub fn serialize<S: Serializer>(value: &Decimal, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(value)
    }
}

/// Serde helper: an optional decimal as a JSON string or null.
pub mod decimal_string_opt {
    use rust_decimal::Decimal;
    use serde::Serializer;

    pub fn serialize<S: Serializer>(
        value: &Option<Decimal>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(v) => serializer.collect_str(&v.normalize()),
            None => serializer.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_decimal_strings() {
        assert_eq!(Amount::parse("100.50").unwrap().to_string(), "100.50");
        assert_eq!(Amount::parse("1").unwrap().to_string(), "1");
        assert_eq!(
            Amount::parse("0.00000001").unwrap().to_string(),
            "0.00000001"
        );
        assert_eq!(Amount::parse("007.5").unwrap().to_string(), "7.5");
    }

    #[test]
    fn refuses_anything_that_is_not_a_plain_positive_decimal() {
        for bad in [
            "", "-1", "+1", "1e3", "1.", ".5", " 1", "1 ", "1,000", "0x10", "NaN", "1.2.3",
        ] {
            assert_eq!(Amount::parse(bad), Err(AmountError::Malformed), "{bad:?}");
        }
        assert_eq!(Amount::parse("0"), Err(AmountError::NotPositive));
        assert_eq!(Amount::parse("0.000"), Err(AmountError::NotPositive));
        assert_eq!(
            Amount::parse("1000000000000000"),
            Err(AmountError::TooLarge)
        );
        assert!(Amount::parse("999999999999999.99").is_ok());
        assert!(matches!(
            Amount::parse("1.0000000000000000001"),
            Err(AmountError::TooManyDecimals { .. })
        ));
    }

    #[test]
    fn precision_counts_written_decimals() {
        let a = Amount::parse("10.123").unwrap();
        assert!(a.check_precision("EUR", 2).is_err());
        assert!(a.check_precision("BTC", 8).is_ok());
        assert!(Amount::parse("10.10")
            .unwrap()
            .check_precision("EUR", 2)
            .is_ok());
    }

    #[test]
    fn json_numbers_are_rejected_strings_accepted() {
        assert!(serde_json::from_str::<Amount>("100.5").is_err());
        assert!(serde_json::from_str::<Amount>("100").is_err());
        assert_eq!(
            serde_json::from_str::<Amount>("\"100.5\"")
                .unwrap()
                .to_string(),
            "100.5"
        );
        assert_eq!(
            serde_json::to_string(&Amount::parse("2.50").unwrap()).unwrap(),
            "\"2.50\""
        );
    }

    #[test]
    fn formats_with_currency_precision() {
        assert_eq!(format_amount(Decimal::new(150, 0), 2), "150.00");
        assert_eq!(format_amount(Decimal::new(12345, 4), 8), "1.23450000");
    }
}
