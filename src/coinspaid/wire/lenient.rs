//! Reading provider numbers that may come as JSON numbers or strings.
//!
//! Amounts are read from their JSON text, never through a float: serde_json's
//! `arbitrary_precision` feature (Cargo.toml) keeps a number's text in `serde_json::Number`,
//! so `9.9999999999999999` stays that, where an `f64` would round it to `10` and match a
//! 10.00 payout. [`exact_decimal`] then reads the text or refuses it, never rounding.

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer};

/// A decimal read exactly from the text of a JSON number or string: `-?D[.D][(e|E)[+-]D]`,
/// where `D` is one or more ASCII digits. `None` when the text has another form (`+1`, `1.`,
/// `1_000`, `0x10`), or when its value cannot be held by a `Decimal` without rounding (more
/// than 28 decimals or about 28 significant digits, or beyond its range). An exponent is
/// applied exactly: `1e1` is 10, `15e-4` is 0.0015, `1e-29` is refused. A reader that rounded
/// could turn a report that differs from a payout into one that matches it.
pub(crate) fn exact_decimal(text: &str) -> Option<Decimal> {
    let (mantissa, exponent) = match text.split_once(['e', 'E']) {
        Some((mantissa, exponent)) => (mantissa, Some(exponent)),
        None => (text, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let unsigned = mantissa.strip_prefix('-').unwrap_or(mantissa);
    let well_formed = match unsigned.split_once('.') {
        Some((int, frac)) => digits(int) && digits(frac),
        None => digits(unsigned),
    };
    if !well_formed {
        return None;
    }
    // `from_str_exact` errs where `from_str` would round the digits it cannot hold.
    let mut value = Decimal::from_str_exact(mantissa).ok()?;
    let Some(exponent) = exponent else {
        return Some(value);
    };
    let (negative, magnitude) = match exponent.as_bytes().first() {
        Some(b'-') => (true, &exponent[1..]),
        Some(b'+') => (false, &exponent[1..]),
        _ => (false, exponent),
    };
    // More than 2 digits is beyond any exponent a Decimal can absorb (it holds 10^28 at most).
    if !digits(magnitude) || magnitude.trim_start_matches('0').len() > 2 {
        return None;
    }
    let shift: u32 = magnitude.parse().ok()?;
    let scale = value.scale();
    if negative {
        let scale = scale + shift;
        if scale > Decimal::MAX_SCALE {
            return None;
        }
        value.set_scale(scale).ok()?;
    } else if shift <= scale {
        value.set_scale(scale - shift).ok()?;
    } else {
        let up = shift - scale;
        if up > Decimal::MAX_SCALE {
            return None;
        }
        value.set_scale(0).ok()?;
        value = value.checked_mul(Decimal::from_i128_with_scale(10i128.pow(up), 0))?;
    }
    Some(value)
}

/// A decimal as a JSON number or string, read by [`Field::decimal`]. Through `Value`, whose
/// `arbitrary_precision` numbers keep their text wherever serde buffers them.
pub(crate) fn lenient_decimal<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
    Field::decimal(Some(&serde_json::Value::deserialize(d)?))
        .read()
        .ok_or_else(|| {
            serde::de::Error::custom("not a decimal that can be read exactly (number or string)")
        })
}

pub(crate) fn lenient_decimal_opt<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Decimal>, D::Error> {
    #[derive(Deserialize)]
    struct Wrap(#[serde(deserialize_with = "lenient_decimal")] Decimal);
    Ok(Option::<Wrap>::deserialize(d)?.map(|Wrap(v)| v))
}

/// A whole number (a timestamp, a period in seconds) sent as a JSON number or a string.
pub(crate) fn lenient_i64_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let value = Option::<serde_json::Value>::deserialize(d)?;
    match Field::integer(value.as_ref()) {
        Field::Absent => Ok(None),
        Field::Read(n) => Ok(Some(n)),
        Field::Unreadable => Err(serde::de::Error::custom("not a whole number")),
    }
}

/// A list whose entries are read one by one: an entry that does not decode is skipped rather
/// than failing the whole answer (one odd pair must not cost every other one).
pub(crate) fn lenient_list<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    Ok(Vec::<serde_json::Value>::deserialize(d)?
        .into_iter()
        .filter_map(|entry| serde_json::from_value(entry).ok())
        .collect())
}

pub(crate) fn decimal_as_string<S: serde::Serializer>(
    v: &Decimal,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

/// One field of a provider object, read tolerantly.
#[derive(Debug, Clone, PartialEq)]
pub enum Field<T> {
    /// Not there, or `null`.
    Absent,
    Read(T),
    /// There, but of a type or form that cannot mean what payoutd reads it for.
    Unreadable,
}

impl<T> Field<T> {
    /// The value if it was read; absent and unreadable alike are `None`.
    pub fn read(self) -> Option<T> {
        match self {
            Self::Read(value) => Some(value),
            _ => None,
        }
    }
}

impl Field<String> {
    /// A string, or a number written as one (ids, tags and foreign ids come both ways).
    pub fn text(value: Option<&serde_json::Value>) -> Self {
        match value {
            None | Some(serde_json::Value::Null) => Self::Absent,
            Some(serde_json::Value::String(s)) => Self::Read(s.clone()),
            Some(serde_json::Value::Number(n)) => Self::Read(n.to_string()),
            Some(_) => Self::Unreadable,
        }
    }
}

impl Field<i64> {
    /// An integer, as a JSON number or a string of digits.
    pub fn integer(value: Option<&serde_json::Value>) -> Self {
        match value {
            None | Some(serde_json::Value::Null) => Self::Absent,
            Some(serde_json::Value::Number(n)) => n.as_i64().map_or(Self::Unreadable, Self::Read),
            Some(serde_json::Value::String(s)) => {
                s.trim().parse().map_or(Self::Unreadable, Self::Read)
            }
            Some(_) => Self::Unreadable,
        }
    }
}

impl Field<Decimal> {
    /// A decimal, as a string (documented) or a bare JSON number (the older exchange example).
    pub fn decimal(value: Option<&serde_json::Value>) -> Self {
        let read = match value {
            None | Some(serde_json::Value::Null) => return Self::Absent,
            Some(serde_json::Value::String(s)) => exact_decimal(s.trim()),
            Some(serde_json::Value::Number(n)) => exact_decimal(n.as_str()),
            Some(_) => None,
        };
        read.map_or(Self::Unreadable, Self::Read)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn numbers_are_read_from_numbers_and_strings() {
        assert_eq!(Field::integer(Some(&json!(3))), Field::Read(3));
        assert_eq!(Field::integer(Some(&json!("0"))), Field::Read(0));
        assert_eq!(Field::integer(Some(&json!("x"))), Field::Unreadable);
        assert_eq!(Field::integer(Some(&json!(null))), Field::Absent);
        assert_eq!(Field::integer(None), Field::Absent);
        assert_eq!(
            Field::decimal(Some(&json!("0.02000000")))
                .read()
                .unwrap()
                .to_string(),
            "0.02000000"
        );
        assert_eq!(
            Field::decimal(Some(&json!(0.108823)))
                .read()
                .unwrap()
                .to_string(),
            "0.108823"
        );
        assert_eq!(
            Field::decimal(Some(&json!(381)))
                .read()
                .unwrap()
                .to_string(),
            "381"
        );
        assert_eq!(Field::decimal(Some(&json!({}))), Field::Unreadable);
        assert_eq!(Field::decimal(Some(&json!("1,5"))), Field::Unreadable);
    }

    /// A body parsed from its bytes, as callbacks and look-up answers are.
    fn amount_of(body: &str) -> Field<Decimal> {
        let value: serde_json::Value = serde_json::from_str(body).unwrap();
        Field::decimal(value.get("amount"))
    }

    #[test]
    fn amounts_are_read_from_their_text_never_through_a_float() {
        let ten: Decimal = "10.00".parse().unwrap();
        // As an f64, 9.9999999999999999 is 10.0: it must not match a 10.00 payout.
        let close = amount_of(r#"{"amount": 9.9999999999999999}"#)
            .read()
            .unwrap();
        assert_ne!(close, ten);
        assert_eq!(close.to_string(), "9.9999999999999999");
        assert_eq!(amount_of(r#"{"amount": 10.00}"#), Field::Read(ten));
        assert_eq!(amount_of(r#"{"amount": "10.00"}"#), Field::Read(ten));
        assert_eq!(
            amount_of(r#"{"amount": 10.00}"#)
                .read()
                .unwrap()
                .to_string(),
            "10.00"
        );
        // Through serde's buffering (an entry of a list, read with `from_value`) as well.
        let entry: super::super::CurrencyAmount =
            serde_json::from_str(r#"{"currency": "EUR", "amount": 9.9999999999999999}"#).unwrap();
        assert_ne!(entry.amount, ten);
    }

    #[test]
    fn exponents_are_applied_exactly_or_refused() {
        let read = |body: &str| amount_of(body).read().map(|d| d.to_string());
        assert_eq!(read(r#"{"amount": 1e1}"#).as_deref(), Some("10"));
        assert_eq!(read(r#"{"amount": 1E+1}"#).as_deref(), Some("10"));
        assert_eq!(read(r#"{"amount": 1.5e-3}"#).as_deref(), Some("0.0015"));
        assert_eq!(read(r#"{"amount": 1.25e1}"#).as_deref(), Some("12.5"));
        assert_eq!(read(r#"{"amount": "1e2"}"#).as_deref(), Some("100"));
        assert_eq!(
            Field::decimal(Some(&json!(1e-29))),
            Field::Unreadable,
            "more decimals than a Decimal holds"
        );
        assert_eq!(amount_of(r#"{"amount": 1e29}"#), Field::Unreadable);
        assert_eq!(amount_of(r#"{"amount": 1e400}"#), Field::Unreadable);
    }

    #[test]
    fn text_a_decimal_cannot_hold_exactly_is_unreadable_not_rounded() {
        for body in [
            // 30 significant digits: `Decimal::from_str` would round it to 10.
            r#"{"amount": 9.99999999999999999999999999999}"#,
            r#"{"amount": "9.99999999999999999999999999999"}"#,
            // 29 decimals.
            r#"{"amount": 0.00000000000000000000000000001}"#,
            r#"{"amount": 100000000000000000000000000000000}"#,
            r#"{"amount": "1_000"}"#,
            r#"{"amount": "+10"}"#,
            r#"{"amount": "10."}"#,
            r#"{"amount": ".5"}"#,
            r#"{"amount": "0x10"}"#,
            r#"{"amount": ""}"#,
        ] {
            assert_eq!(amount_of(body), Field::Unreadable, "{body}");
        }
    }

    #[test]
    fn text_is_read_from_strings_and_numbers() {
        assert_eq!(
            Field::text(Some(&json!("abc"))),
            Field::Read("abc".to_owned())
        );
        assert_eq!(
            Field::text(Some(&json!(12345))),
            Field::Read("12345".to_owned())
        );
        assert_eq!(Field::text(Some(&json!([1]))), Field::Unreadable);
        assert_eq!(Field::text(Some(&json!(null))), Field::Absent);
    }
}
