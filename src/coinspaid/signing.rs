//! HMAC-SHA512 request and callback signatures.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha512;
use subtle::ConstantTimeEq;

type HmacSha512 = Hmac<Sha512>;

/// A secret string whose `Debug` never shows it, so it cannot leak through a log of a config.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself. Call sites are few and greppable on purpose.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'de> serde::Deserialize<'de> for SecretString {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self)
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString(<redacted>)")
    }
}

/// The merchant's CoinsPaid API key pair.
#[derive(Clone, Debug)]
pub struct Credentials {
    /// Public: sent as `X-Processing-Key`, and expected on callbacks.
    pub key: String,
    pub secret: SecretString,
}

/// Signs and verifies bodies with the merchant's secret.
#[derive(Clone, Debug)]
pub struct Signer {
    credentials: Credentials,
    /// The key pair being replaced. CoinsPaid has one active pair, and a new pair has a new
    /// key, so during a change-over callbacks may still come with the old key signed by the
    /// old secret: accepted as a pair, never mixed with the current one. Never used to sign.
    previous: Option<Credentials>,
}

/// Which key pair verified a callback, so an operator sees when the old one stops being used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretUsed {
    Current,
    Previous,
}

impl SecretUsed {
    pub fn label(self) -> &'static str {
        match self {
            SecretUsed::Current => "current",
            SecretUsed::Previous => "previous",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("missing X-Processing-Key")]
    MissingKey,
    #[error("X-Processing-Key does not match ours")]
    WrongKey,
    #[error("missing X-Processing-Signature")]
    MissingSignature,
    #[error("X-Processing-Signature is not hex")]
    MalformedSignature,
    #[error("X-Processing-Signature does not match the body")]
    BadSignature,
}

impl Signer {
    pub fn new(credentials: Credentials) -> Self {
        Self {
            credentials,
            previous: None,
        }
    }

    /// Also accepts callbacks carrying `previous.key` and signed with `previous.secret`.
    /// An empty key or secret means none: configuration refuses half a pair.
    pub fn with_previous(mut self, previous: Credentials) -> Self {
        self.previous =
            (!previous.key.is_empty() && !previous.secret.is_empty()).then_some(previous);
        self
    }

    pub fn key(&self) -> &str {
        &self.credentials.key
    }

    fn mac(&self) -> HmacSha512 {
        mac_with(&self.credentials.secret)
    }

    /// Lowercase hex HMAC-SHA512 of exactly these bytes.
    pub fn sign(&self, body: &[u8]) -> String {
        let mut mac = self.mac();
        mac.update(body);
        hex::encode(mac.finalize().into_bytes())
    }

    /// Checks the key header and the signature over the raw body, both in constant time,
    /// before anyone looks at what the body says.
    pub fn verify(
        &self,
        key: Option<&str>,
        signature: Option<&str>,
        body: &[u8],
    ) -> Result<(), VerifyError> {
        self.verify_which(key, signature, body).map(|_| ())
    }

    /// [`Self::verify`], also saying which key pair matched: the key header picks the pair,
    /// and only that pair's secret can verify the signature. Both keys and both signatures are
    /// always compared, each in constant time, so the answer's timing does not tell which pair
    /// matched.
    pub fn verify_which(
        &self,
        key: Option<&str>,
        signature: Option<&str>,
        body: &[u8],
    ) -> Result<SecretUsed, VerifyError> {
        let key = key.ok_or(VerifyError::MissingKey)?;
        let is_key = |credentials: &Credentials| -> bool {
            key.as_bytes().ct_eq(credentials.key.as_bytes()).into()
        };
        let current_key = is_key(&self.credentials);
        let previous_key = self.previous.as_ref().is_some_and(is_key);
        if !current_key && !previous_key {
            return Err(VerifyError::WrongKey);
        }
        let signature = signature.ok_or(VerifyError::MissingSignature)?;
        // Providers send lowercase; accept uppercase hex too rather than fail on a formatting detail.
        let expected =
            hex::decode(signature.trim()).map_err(|_| VerifyError::MalformedSignature)?;
        let signed_by = |credentials: &Credentials| {
            let mut mac = mac_with(&credentials.secret);
            mac.update(body);
            mac.verify_slice(&expected).is_ok()
        };
        let current = signed_by(&self.credentials);
        let previous = self.previous.as_ref().is_some_and(signed_by);
        if current_key && current {
            Ok(SecretUsed::Current)
        } else if previous_key && previous {
            Ok(SecretUsed::Previous)
        } else {
            Err(VerifyError::BadSignature)
        }
    }
}

fn mac_with(secret: &SecretString) -> HmacSha512 {
    HmacSha512::new_from_slice(secret.expose().as_bytes()).expect("HMAC accepts keys of any length")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> Signer {
        Signer::new(Credentials {
            key: "public-key".into(),
            secret: SecretString::new("top-secret"),
        })
    }

    #[test]
    fn signature_is_lowercase_hex_hmac_sha512_of_the_body() {
        // Reference value computed independently:
        // printf '{"a":1}' | openssl dgst -sha512 -hmac top-secret
        let sig = signer().sign(br#"{"a":1}"#);
        assert_eq!(sig.len(), 128);
        assert!(sig
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        assert_eq!(
            sig,
            "26a83e20c3d50a5f78a8d3660b7f7fd0dcb947a24d6e41b9c443d6dcc58f3331\
             d76697de5f578a3794e292541e6301c897d3c3637128f3b38276f12a0a0cfdd6"
        );
    }

    #[test]
    fn verifies_its_own_signature_and_rejects_tampering() {
        let s = signer();
        let body = br#"{"status":"confirmed"}"#;
        let sig = s.sign(body);
        assert_eq!(s.verify(Some("public-key"), Some(&sig), body), Ok(()));
        assert_eq!(
            s.verify(Some("public-key"), Some(&sig.to_uppercase()), body),
            Ok(())
        );
        assert_eq!(
            s.verify(Some("public-key"), Some(&sig), br#"{"status":"cancelled"}"#),
            Err(VerifyError::BadSignature)
        );
        assert_eq!(
            s.verify(Some("other"), Some(&sig), body),
            Err(VerifyError::WrongKey)
        );
        assert_eq!(
            s.verify(None, Some(&sig), body),
            Err(VerifyError::MissingKey)
        );
        assert_eq!(
            s.verify(Some("public-key"), None, body),
            Err(VerifyError::MissingSignature)
        );
        assert_eq!(
            s.verify(Some("public-key"), Some("zz"), body),
            Err(VerifyError::MalformedSignature)
        );
        assert_eq!(
            s.verify(Some("public-key"), Some(&sig[..64]), body),
            Err(VerifyError::BadSignature)
        );
    }

    fn pair(key: &str, secret: &str) -> Credentials {
        Credentials {
            key: key.into(),
            secret: SecretString::new(secret),
        }
    }

    #[test]
    fn secrets_do_not_show_in_debug() {
        let text = format!(
            "{:?}",
            signer().with_previous(pair("old-key", "old-secret"))
        );
        assert!(!text.contains("top-secret"), "{text}");
        assert!(!text.contains("old-secret"), "{text}");
    }

    #[test]
    fn during_a_change_over_callbacks_verify_with_either_pair_and_requests_use_the_new_one() {
        let old = Signer::new(pair("old-key", "old-secret"));
        let new =
            Signer::new(pair("new-key", "new-secret")).with_previous(pair("old-key", "old-secret"));
        let body = br#"{"status":"confirmed"}"#;
        assert_eq!(
            new.verify_which(Some("old-key"), Some(&old.sign(body)), body),
            Ok(SecretUsed::Previous)
        );
        assert_eq!(
            new.verify_which(Some("new-key"), Some(&new.sign(body)), body),
            Ok(SecretUsed::Current)
        );
        assert_eq!(new.key(), "new-key", "sends the current key");
        assert_ne!(
            new.sign(body),
            old.sign(body),
            "signs with the current secret"
        );
        let stranger = Signer::new(pair("new-key", "unknown"));
        assert_eq!(
            new.verify_which(Some("new-key"), Some(&stranger.sign(body)), body),
            Err(VerifyError::BadSignature)
        );
        assert_eq!(
            new.verify_which(Some("other-key"), Some(&new.sign(body)), body),
            Err(VerifyError::WrongKey)
        );
    }

    #[test]
    fn a_key_of_one_pair_with_the_secret_of_the_other_is_refused() {
        let old = Signer::new(pair("old-key", "old-secret"));
        let new =
            Signer::new(pair("new-key", "new-secret")).with_previous(pair("old-key", "old-secret"));
        let body = br#"{"status":"confirmed"}"#;
        assert_eq!(
            new.verify_which(Some("new-key"), Some(&old.sign(body)), body),
            Err(VerifyError::BadSignature),
            "current key, previous secret"
        );
        assert_eq!(
            new.verify_which(Some("old-key"), Some(&new.sign(body)), body),
            Err(VerifyError::BadSignature),
            "previous key, current secret"
        );
        // Without a previous pair the old key is not ours at all.
        assert_eq!(
            Signer::new(pair("new-key", "new-secret")).verify_which(
                Some("old-key"),
                Some(&old.sign(body)),
                body
            ),
            Err(VerifyError::WrongKey)
        );
    }

    #[test]
    fn half_a_previous_pair_is_none() {
        let body = br#"{"status":"confirmed"}"#;
        for half in [pair("", "old-secret"), pair("old-key", "")] {
            let lone = Signer::new(pair("new-key", "new-secret")).with_previous(half.clone());
            let signed = Signer::new(half.clone()).sign(body);
            assert!(
                lone.verify(Some(&half.key), Some(&signed), body).is_err(),
                "{:?}",
                half.key
            );
        }
    }
}
