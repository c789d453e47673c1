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

    /// Wraps a foreign id read from our own database or a verified callback.
    pub fn from_stored(text: String) -> Self {
        Self(text)
    }

    pub fn as_str(&self) -> &str {
        &self.0
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
