//! Reading provider numbers that may come as JSON numbers or strings.

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer};

#[derive(Deserialize)]
#[serde(untagged)]
enum StringOrNumber {
    String(String),
    Number(serde_json::Number),
}

pub(crate) fn lenient_decimal<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
    let text = match StringOrNumber::deserialize(d)? {
        StringOrNumber::String(s) => s,
        StringOrNumber::Number(n) => n.to_string(),
    };
    text.trim()
        .parse::<Decimal>()
        .or_else(|_| Decimal::from_scientific(text.trim()))
        .map_err(serde::de::Error::custom)
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
    match Option::<StringOrNumber>::deserialize(d)? {
        None => Ok(None),
        Some(StringOrNumber::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom(format!("{n} is not a whole number"))),
        Some(StringOrNumber::String(s)) => {
            s.trim().parse().map(Some).map_err(serde::de::Error::custom)
        }
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
        let text = match value {
            None | Some(serde_json::Value::Null) => return Self::Absent,
            Some(serde_json::Value::String(s)) => s.trim().to_owned(),
            Some(serde_json::Value::Number(n)) => n.to_string(),
            Some(_) => return Self::Unreadable,
        };
        text.parse::<Decimal>()
            .or_else(|_| Decimal::from_scientific(&text))
            .map_or(Self::Unreadable, Self::Read)
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
