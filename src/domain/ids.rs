//! Identifiers that arrive from outside, each made only by parsing.

use std::fmt;

use serde::Serialize;
use uuid::Uuid;

/// The merchant's id for a user: 1 to 128 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct UserId(String);

impl UserId {
    pub fn parse(text: &str) -> Option<Self> {
        let ok = (1..=128).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_graphic());
        ok.then(|| Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for UserId {
    type Error = String;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        Self::parse(&text).ok_or_else(|| format!("not a user id: {text:?}"))
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The id CoinsPaid knows a withdrawal by. Fresh for every withdrawal and never reused: it is
/// derived from a new UUIDv7, so not even a wiped database can produce one CoinsPaid has seen.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct ForeignId(String);

impl ForeignId {
    pub fn generate() -> Self {
        Self(format!("pd-{}", Uuid::now_v7().simple()))
    }

    /// Accepts what [`Self::generate`] makes: `pd-` and 32 lowercase hex digits.
    pub fn parse(text: &str) -> Option<Self> {
        let hex = text.strip_prefix("pd-")?;
        let ok = hex.len() == 32 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        ok.then(|| Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ForeignId {
    type Error = String;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        Self::parse(&text).ok_or_else(|| format!("not a foreign_id of ours: {text:?}"))
    }
}

impl fmt::Display for ForeignId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The `Idempotency-Key` header: 1 to 255 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(text: &str) -> Option<Self> {
        let ok = (1..=255).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_graphic());
        ok.then(|| Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn foreign_ids_are_unique_and_prefixed() {
        let a = ForeignId::generate();
        let b = ForeignId::generate();
        assert_ne!(a, b);
        assert!(a.as_str().starts_with("pd-"));
        assert_eq!(ForeignId::parse(a.as_str()), Some(a));
    }

    #[test]
    fn foreign_ids_parse_only_in_the_generated_form() {
        assert!(ForeignId::parse("pd-0190a1b2c3d4e5f60718293a4b5c6d7e").is_some());
        assert!(ForeignId::parse("pd-0190A1B2C3D4E5F60718293A4B5C6D7E").is_none());
        assert!(ForeignId::parse("pd-0190a1b2").is_none());
        assert!(ForeignId::parse("xx-0190a1b2c3d4e5f60718293a4b5c6d7e").is_none());
        assert!(ForeignId::try_from(String::from("f1")).is_err());
        assert!(UserId::try_from(String::from("a b")).is_err());
    }

    #[test]
    fn ids_refuse_empty_long_and_invisible_text() {
        assert!(UserId::parse("u1").is_some());
        assert!(UserId::parse("").is_none());
        assert!(UserId::parse("a b").is_none());
        assert!(UserId::parse(&"x".repeat(129)).is_none());
        assert!(IdempotencyKey::parse(&"k".repeat(255)).is_some());
        assert!(IdempotencyKey::parse(&"k".repeat(256)).is_none());
        assert!(IdempotencyKey::parse("ключ").is_none());
    }
}
