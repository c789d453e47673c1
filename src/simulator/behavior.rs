//! Scriptable outcomes: what the simulator does with the next withdrawal request.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One scripted answer to `POST /v2/withdrawal/crypto`. Callback lists are provider status
/// words (`confirmed`, `pending`, `cancelled`, `declined`), posted in order; a repeated word
/// is a duplicate callback, `["confirmed", "pending"]` an out-of-order pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SubmitBehavior {
    /// Create it, answer 200, then post the callbacks, each after the callback delay.
    Accept {
        #[serde(default)]
        callbacks: Vec<String>,
    },
    /// Create it, post the first callback and wait for its answer, then answer 200, then post
    /// the rest: the callback arrives before the submit response.
    AcceptCallbackFirst { callbacks: Vec<String> },
    /// Create nothing; answer `status` with `{"errors": {field: message}}`, or, without a
    /// field, `{"error": message}` (an answer that names nothing we sent, like the
    /// undocumented insufficient-merchant-balance one). Applies even to a known foreign_id:
    /// the order of CoinsPaid's checks is not documented.
    Refuse {
        status: u16,
        #[serde(default)]
        field: Option<String>,
        message: String,
    },
    /// Create nothing; answer CoinsPaid's documented 403 for this `code`
    /// (`bad_header_signature`, `bad_header_key`, ...) or `400 bad_content_format`.
    AuthError { code: String },
    /// Create nothing; answer this 3xx pointing at another path. A client must not follow it.
    Redirect { status: u16 },
    /// Create nothing; answer this 5xx.
    ServerError { status: u16 },
    /// Create it and schedule its callbacks, but answer 200 only after `delay`: a client with
    /// a shorter timeout sees a timeout although the withdrawal exists.
    Slow {
        #[serde(rename = "delay_ms", with = "millis")]
        delay: Duration,
        #[serde(default)]
        callbacks: Vec<String>,
    },
    /// Create nothing; answer `status` with this body verbatim (an HTML error page from a
    /// proxy, truncated JSON...): a client must not read it as a decision.
    Garbage { status: u16, body: String },
    /// Create it and schedule its callbacks, but answer 502: outcome unknown to the client.
    AcceptThenServerError {
        #[serde(default)]
        callbacks: Vec<String>,
    },
}

impl SubmitBehavior {
    /// Accept, then confirm.
    pub fn confirm() -> Self {
        Self::Accept {
            callbacks: vec!["confirmed".into()],
        }
    }

    /// Accept and post nothing; the test sends callbacks itself.
    pub fn accept_silently() -> Self {
        Self::Accept { callbacks: vec![] }
    }
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaviors_read_from_admin_json() {
        let b: SubmitBehavior =
            serde_json::from_str(r#"{"kind":"slow","delay_ms":1500,"callbacks":["confirmed"]}"#)
                .unwrap();
        assert_eq!(
            b,
            SubmitBehavior::Slow {
                delay: Duration::from_millis(1500),
                callbacks: vec!["confirmed".into()]
            }
        );
        let r: SubmitBehavior = serde_json::from_str(
            r#"{"kind":"refuse","status":400,"field":"address","message":"Invalid address"}"#,
        )
        .unwrap();
        assert!(matches!(
            r,
            SubmitBehavior::Refuse {
                status: 400,
                field: Some(_),
                ..
            }
        ));
        assert_eq!(
            serde_json::from_str::<SubmitBehavior>(r#"{"kind":"accept"}"#).unwrap(),
            SubmitBehavior::accept_silently()
        );
    }
}
