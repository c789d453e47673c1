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
    /// The secret being replaced: during a change-over CoinsPaid may still sign callbacks
    /// with it. Never used to sign.
    previous: Option<SecretString>,
}

/// Which secret verified a callback, so an operator sees when the old one stops being used.
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

    /// Also accepts callbacks signed with `previous` (empty: none).
    pub fn with_previous_secret(mut self, previous: SecretString) -> Self {
        self.previous = (!previous.is_empty()).then_some(previous);
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

    /// [`Self::verify`], also saying which secret matched. Both secrets are always checked,
    /// each in constant time, so the answer's timing does not tell which one matched.
    pub fn verify_which(
        &self,
        key: Option<&str>,
        signature: Option<&str>,
        body: &[u8],
    ) -> Result<SecretUsed, VerifyError> {
        let key = key.ok_or(VerifyError::MissingKey)?;
        if !bool::from(key.as_bytes().ct_eq(self.credentials.key.as_bytes())) {
            return Err(VerifyError::WrongKey);
        }
        let signature = signature.ok_or(VerifyError::MissingSignature)?;
        // Providers send lowercase; accept uppercase hex too rather than fail on a formatting detail.
        let expected =
            hex::decode(signature.trim()).map_err(|_| VerifyError::MalformedSignature)?;
        let matches = |secret: &SecretString| {
            let mut mac = mac_with(secret);
            mac.update(body);
            mac.verify_slice(&expected).is_ok()
        };
        let current = matches(&self.credentials.secret);
        let previous = self.previous.as_ref().is_some_and(matches);
        match (current, previous) {
            (true, _) => Ok(SecretUsed::Current),
            (false, true) => Ok(SecretUsed::Previous),
            (false, false) => Err(VerifyError::BadSignature),
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

    #[test]
    fn secrets_do_not_show_in_debug() {
        let text = format!(
            "{:?}",
            signer().with_previous_secret(SecretString::new("old-secret"))
        );
        assert!(!text.contains("top-secret"), "{text}");
        assert!(!text.contains("old-secret"), "{text}");
    }

    #[test]
    fn during_a_change_over_callbacks_verify_with_either_secret_and_requests_use_the_new_one() {
        let old = signer();
        let new = Signer::new(Credentials {
            key: "public-key".into(),
            secret: SecretString::new("new-secret"),
        })
        .with_previous_secret(SecretString::new("top-secret"));
        let body = br#"{"status":"confirmed"}"#;
        assert_eq!(
            new.verify_which(Some("public-key"), Some(&old.sign(body)), body),
            Ok(SecretUsed::Previous)
        );
        assert_eq!(
            new.verify_which(Some("public-key"), Some(&new.sign(body)), body),
            Ok(SecretUsed::Current)
        );
        assert_ne!(
            new.sign(body),
            old.sign(body),
            "signs with the current secret"
        );
        let stranger = Signer::new(Credentials {
            key: "public-key".into(),
            secret: SecretString::new("unknown"),
        });
        assert_eq!(
            new.verify_which(Some("public-key"), Some(&stranger.sign(body)), body),
            Err(VerifyError::BadSignature)
        );
        // An empty previous secret means none: it must not verify an empty-key signature.
        let lone = signer().with_previous_secret(SecretString::default());
        let empty_key = Signer::new(Credentials {
            key: "public-key".into(),
            secret: SecretString::default(),
        });
        assert_eq!(
            lone.verify(Some("public-key"), Some(&empty_key.sign(body)), body),
            Err(VerifyError::BadSignature)
        );
    }
}
