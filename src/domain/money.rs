//! Money amounts: positive decimals parsed from strings, never floats, and never rounded.

use std::fmt;

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The most significant digits `rust_decimal` holds exactly (its 96-bit mantissa holds every
/// 28-digit number and only some of 29). An amount needing more would be rounded by the parser,
/// so it is refused instead.
pub const MAX_SIGNIFICANT_DIGITS: u32 = 28;
/// The most integer digits any amount may have, whatever the currency: a business bound far
/// above any real payout.
const MAX_INTEGER_DIGITS: u32 = 15;
/// The most decimals any currency may use (ETH-style tokens use 18). A currency listed with
/// more is clamped to this at catalogue load, which leaves it 10 integer digits.
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
    #[error("an amount may have at most {MAX_SIGNIFICANT_DIGITS} significant digits, so that it is held exactly as written")]
    NotExact,
    #[error("{currency} allows at most {allowed} decimals")]
    TooManyDecimals { currency: String, allowed: u32 },
    #[error("{currency} amounts may have at most {allowed} integer digits ({MAX_SIGNIFICANT_DIGITS} significant digits less its {precision} decimals)")]
    TooLargeFor {
        currency: String,
        allowed: u32,
        precision: u32,
    },
}

/// Integer digits a currency of `precision` decimals may use, so that every amount and every
/// sum of them at that precision stays within the digits `rust_decimal` holds exactly.
pub fn integer_digits_allowed(precision: u32) -> u32 {
    MAX_INTEGER_DIGITS.min(MAX_SIGNIFICANT_DIGITS.saturating_sub(precision))
}

/// A strictly positive decimal amount, made only by parsing, holding exactly what was written.
///
/// Accepted form: ASCII digits, optionally a dot followed by at least one digit. No sign, no
/// exponent, no whitespace, no thousands separators: what a merchant sends is exactly what is
/// held and forwarded. Trailing zeros are kept ("1.50" stays "1.50").
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
        if significant_int.len() > MAX_INTEGER_DIGITS as usize {
            return Err(AmountError::TooLarge);
        }
        let frac = frac_part.unwrap_or("");
        if frac.len() > MAX_SCALE as usize {
            return Err(AmountError::TooManyDecimals {
                currency: "any currency".into(),
                allowed: MAX_SCALE,
            });
        }
        // The digits the decimal's mantissa will hold: leading zeros carry nothing, trailing
        // ones do (they are the written scale).
        let mantissa_digits = if significant_int.is_empty() {
            frac.trim_start_matches('0').len()
        } else {
            significant_int.len() + frac.len()
        };
        if mantissa_digits > MAX_SIGNIFICANT_DIGITS as usize {
            return Err(AmountError::NotExact);
        }
        // `from_str_exact` errors where `from_str` would round: the checks above make that
        // unreachable, this keeps it so.
        let value = Decimal::from_str_exact(text).map_err(|_| AmountError::NotExact)?;
        Self::from_decimal(value)
    }

    /// Wraps a decimal read back from the database or computed by the ledger.
    pub fn from_decimal(value: Decimal) -> Result<Self, AmountError> {
        if value <= Decimal::ZERO {
            return Err(AmountError::NotPositive);
        }
        Ok(Self(value))
    }

    /// The currency's rules: no more decimals than `precision` (trailing zeros count: "1.000"
    /// is three decimals, because what the merchant wrote is what we forward to CoinsPaid), and
    /// no more integer digits than [`integer_digits_allowed`] leaves beside them.
    pub fn check_precision(self, currency: &str, precision: u32) -> Result<Self, AmountError> {
        if self.0.scale() > precision {
            return Err(AmountError::TooManyDecimals {
                currency: currency.to_owned(),
                allowed: precision,
            });
        }
        let allowed = integer_digits_allowed(precision);
        if self.integer_digits() > allowed {
            return Err(AmountError::TooLargeFor {
                currency: currency.to_owned(),
                allowed,
                precision,
            });
        }
        Ok(self)
    }

    fn integer_digits(self) -> u32 {
        let digits = self.0.mantissa().unsigned_abs().to_string().len() as u32;
        digits.saturating_sub(self.0.scale())
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

/// Renders a balance or ledger amount with `precision` decimals ("150.00", not "150"). Only ever
/// pads: a value carrying more decimals than `precision` is shown as it is, never rounded.
pub fn format_amount(value: Decimal, precision: u32) -> String {
    let mut v = value;
    if v.scale() < precision {
        v.rescale(precision);
    }
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
        // A value with more decimals than the currency now uses is shown whole, not rounded.
        assert_eq!(format_amount(Decimal::new(123456, 5), 2), "1.23456");
    }

    #[test]
    fn an_amount_rust_decimal_would_round_is_refused_not_rounded() {
        // 15 integer digits and 18 decimals: 33 significant digits. `Decimal::from_str` keeps
        // 28 of them: parsed that way it would be held and sent as 123456789012345.1234567890123.
        let text = "123456789012345.123456789012345678";
        assert_ne!(text.parse::<Decimal>().unwrap().to_string(), text);
        assert_eq!(Amount::parse(text), Err(AmountError::NotExact));
        // 29 significant digits, even ones rust_decimal could hold, are refused: 28 is the bound.
        assert_eq!(
            Amount::parse("12345678901.123456789012345678"),
            Err(AmountError::NotExact)
        );
    }

    #[test]
    fn every_accepted_amount_is_held_exactly_as_written() {
        for text in [
            "1234567890.123456789012345678", // 28 digits: the most there is room for
            "0.000000000000000001",
            "999999999999999.9999999999999", // 15 + 13 digits
            "0.10",
            "100.00000000",
        ] {
            assert_eq!(Amount::parse(text).unwrap().to_string(), text);
        }
        // Leading zeros are not digits the decimal holds.
        assert_eq!(
            Amount::parse("0000000001234567890.123456789012345678")
                .unwrap()
                .to_string(),
            "1234567890.123456789012345678"
        );
        assert_eq!(
            Amount::parse("0.000000000012345678").unwrap().to_string(),
            "0.000000000012345678"
        );
    }

    #[test]
    fn a_currency_leaves_integer_digits_only_where_its_decimals_fit() {
        assert_eq!(integer_digits_allowed(18), 10);
        assert_eq!(integer_digits_allowed(8), 15);
        assert_eq!(integer_digits_allowed(2), 15);
        let eighteen = |t: &str| Amount::parse(t).unwrap().check_precision("ETH", 18);
        assert!(eighteen("9999999999.5").is_ok());
        assert!(eighteen("1234567890.123456789012345678").is_ok());
        assert_eq!(
            eighteen("12345678901"),
            Err(AmountError::TooLargeFor {
                currency: "ETH".into(),
                allowed: 10,
                precision: 18
            })
        );
        assert!(Amount::parse("999999999999999")
            .unwrap()
            .check_precision("BTC", 8)
            .is_ok());
        assert!(Amount::parse("0.5")
            .unwrap()
            .check_precision("ETH", 18)
            .is_ok());
    }
}
