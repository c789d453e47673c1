//! Signing in the Standard Webhooks format (<https://www.standardwebhooks.com/>), so a
//! receiver verifies payoutd's notifications with an off-the-shelf library in its language.
//!
//! `webhook-signature: v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`, one per
//! secret, space-separated: during a rotation the receiver's old and new secret both verify.
//! Secrets are `whsec_` + base64 of 24 to 64 random bytes.
//!
//! Written here rather than taken from the `standardwebhooks` crate: signing is a dozen lines
//! over the hmac, sha2 and base64 crates already in the tree, while that crate (1.0.1, 2024)
//! would add a second SHA-256 implementation, an older base64, `http` and `time` just for them.

use std::fmt;

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const ID_HEADER: &str = "webhook-id";
pub const TIMESTAMP_HEADER: &str = "webhook-timestamp";
pub const SIGNATURE_HEADER: &str = "webhook-signature";

const PREFIX: &str = "whsec_";
/// The specification's bounds: at least 192 bits, at most 512.
const MIN_KEY_BYTES: usize = 24;
const MAX_KEY_BYTES: usize = 64;

/// Secrets are often pasted without their `=` padding; the libraries accept both.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// How to make a secret, for error messages and the docs.
pub const GENERATE_HINT: &str = "generate one with: echo \"whsec_$(openssl rand -base64 32)\"";

/// One signing key. Its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(Vec<u8>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("does not start with whsec_")]
    NoPrefix,
    #[error("is not base64 after whsec_")]
    NotBase64,
    #[error("holds {0} bytes; it needs 24 to 64 random bytes")]
    Length(usize),
}

impl WebhookSecret {
    /// Parses `whsec_<base64>`. The error never quotes the secret.
    pub fn parse(text: &str) -> Result<Self, SecretError> {
        let encoded = text
            .trim()
            .strip_prefix(PREFIX)
            .ok_or(SecretError::NoPrefix)?;
        let key = BASE64.decode(encoded).map_err(|_| SecretError::NotBase64)?;
        if !(MIN_KEY_BYTES..=MAX_KEY_BYTES).contains(&key.len()) {
            return Err(SecretError::Length(key.len()));
        }
        Ok(Self(key))
    }

    /// Parses a comma-separated list, current secret first (base64 has no commas).
    pub fn parse_list(text: &str) -> Result<Vec<Self>, String> {
        text.split(',')
            .filter(|s| !s.trim().is_empty())
            .enumerate()
            .map(|(i, s)| Self::parse(s).map_err(|e| format!("secret #{} {e}", i + 1)))
            .collect()
    }

    /// `v1,<base64 signature>` of `"{id}.{timestamp}.{body}"`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()))
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}

/// The `webhook-signature` value: one signature per secret, space-separated.
pub fn signature_header(
    secrets: &[WebhookSecret],
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    secrets
        .iter()
        .map(|secret| secret.sign(id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    // The reference libraries' own test vector (standard-webhooks, libraries/*/tests),
    // re-computed with Python's hmac module.
    const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    const ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
    const BODY: &[u8] = br#"{"email":"test@example.com","username":"test_user"}"#;

    #[test]
    fn signature_matches_the_specification_test_vector() {
        let secret = WebhookSecret::parse(SECRET).unwrap();
        assert_eq!(
            secret.sign(ID, 1_649_367_553, BODY),
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
        );
    }

    #[test]
    fn every_secret_signs_and_the_current_one_comes_first() {
        let current = WebhookSecret::parse(SECRET).unwrap();
        let old = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let header = signature_header(&[current.clone(), old.clone()], ID, 1, BODY);
        assert_eq!(
            header,
            format!("{} {}", current.sign(ID, 1, BODY), old.sign(ID, 1, BODY))
        );
        assert_ne!(current.sign(ID, 1, BODY), old.sign(ID, 1, BODY));
        assert_ne!(current.sign(ID, 1, BODY), current.sign(ID, 2, BODY));
        assert_ne!(
            current.sign(ID, 1, BODY),
            current.sign("msg_other", 1, BODY)
        );
    }

    #[test]
    fn secrets_are_whsec_base64_of_24_to_64_bytes_and_never_shown() {
        assert_eq!(
            WebhookSecret::parse("C2FVsBQIhrscChlQIMV+b5sSYspob7oD"),
            Err(SecretError::NoPrefix)
        );
        assert_eq!(
            WebhookSecret::parse("whsec_not base64!"),
            Err(SecretError::NotBase64)
        );
        assert_eq!(
            WebhookSecret::parse("whsec_c2hvcnQ="),
            Err(SecretError::Length(5))
        );
        // 32 bytes, with and without padding.
        let padded = format!("whsec_{}", BASE64.encode([7u8; 32]));
        assert!(padded.ends_with('='));
        assert!(WebhookSecret::parse(&padded).is_ok());
        assert!(WebhookSecret::parse(padded.trim_end_matches('=')).is_ok());
        assert!(WebhookSecret::parse(&format!("whsec_{}", BASE64.encode([7u8; 65]))).is_err());

        let list = WebhookSecret::parse_list(&format!("{SECRET}, {padded}")).unwrap();
        assert_eq!(list.len(), 2);
        let err = WebhookSecret::parse_list(&format!("{SECRET},whsec_c2hvcnQ=")).unwrap_err();
        assert!(err.starts_with("secret #2 "), "{err}");
        assert!(!err.contains("c2hvcnQ"), "{err}");
        assert!(!format!("{list:?}").contains("C2FVs"));
    }
}
