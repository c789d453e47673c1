//! Duplicate object keys. JSON parsers disagree about `{"amount":"1","amount":"1000000"}`
//! (serde_json keeps the last, others the first), so a body with one means whatever the
//! reader wants: the website's and operators' bodies are refused, a verified callback is
//! flagged and acted on by no one. Found with serde_json's own streaming deserializer and a
//! visitor that walks every value, never with a parser of our own.

use std::collections::HashSet;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, Error, MapAccess, SeqAccess, Visitor};

/// Where a value sits: the root, a key of an object, or an element of an array. Linked to its
/// parent so a path is only spelled out for the duplicate that is reported.
#[derive(Clone, Copy)]
enum Place<'a> {
    Root,
    Key(&'a Place<'a>, &'a str),
    Index(&'a Place<'a>, usize),
}

impl fmt::Display for Place<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::Root => Ok(()),
            Place::Key(parent, key) => match parent {
                Place::Root => write!(f, "{key}"),
                _ => write!(f, "{parent}.{key}"),
            },
            Place::Index(parent, i) => write!(f, "{parent}[{i}]"),
        }
    }
}

/// Marks the error our visitor raised, as opposed to a syntax error.
const DUPLICATE: &str = "duplicate key: ";

/// The path (`sender_data.email`, `fees[0].type`) of the first object key that appears twice
/// in one object, at any depth. `None` when every key is unique, or when `json` is not JSON at
/// all (reading it reports that).
pub fn duplicate_key(json: &[u8]) -> Option<String> {
    let mut deserializer = serde_json::Deserializer::from_slice(json);
    match Walk(Place::Root).deserialize(&mut deserializer) {
        Ok(()) => None,
        Err(err) => err
            .to_string()
            .strip_prefix(DUPLICATE)
            .map(|rest| rest.rsplit_once(" at line ").map_or(rest, |(path, _)| path))
            .map(str::to_owned),
    }
}

struct Walk<'a>(Place<'a>);

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E: Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E: Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E: Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E: Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0;
        while seq
            .next_element_seed(Walk(Place::Index(&self.0, index)))?
            .is_some()
        {
            index += 1;
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        // Keys with escapes arrive unescaped, so `"a"` and `"\u0061"` are the same key.
        while let Some(key) = map.next_key::<String>()? {
            if seen.contains(&key) {
                return Err(A::Error::custom(format_args!(
                    "{DUPLICATE}{}",
                    Place::Key(&self.0, &key)
                )));
            }
            map.next_value_seed(Walk(Place::Key(&self.0, &key)))?;
            seen.insert(key);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_twice_in_one_object_is_found_at_any_depth() {
        for (json, path) in [
            (r#"{"amount":"1","amount":"1000000"}"#, "amount"),
            (r#"{"a":{"b":1,"c":2,"b":3}}"#, "a.b"),
            (r#"{"fees":[{"t":1},{"t":1,"t":2}]}"#, "fees[1].t"),
            (r#"[{"x":null,"x":null}]"#, "[0].x"),
            (r#"{"a":"x","\u0061":"y"}"#, "a"),
        ] {
            assert_eq!(
                duplicate_key(json.as_bytes()).as_deref(),
                Some(path),
                "{json}"
            );
        }
    }

    #[test]
    fn unique_keys_and_non_json_find_nothing() {
        for json in [
            r#"{"a":1,"b":{"a":1},"c":[{"a":1},{"a":2}],"d":-1.5e3,"e":true,"f":null}"#,
            "{",
            "",
            "[1,2]",
            r#""text""#,
        ] {
            assert_eq!(duplicate_key(json.as_bytes()), None, "{json}");
        }
    }
}
