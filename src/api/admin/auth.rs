//! Operator authentication: `Authorization: Bearer <operator token>` on `/admin/v1`, or the
//! console's session cookie on `/admin`. Operator tokens are never website tokens (checked at
//! start), and each middleware knows only its own list, so neither is accepted on the other's
//! interface.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::api::error::ApiError;
use crate::operators::settings::Operator;

/// Who acts: an operator's configured name, put in the request's extensions by the middleware.
#[derive(Debug, Clone)]
pub struct OperatorName(pub String);

/// The operators' tokens as SHA-256 digests, with their names.
pub struct OperatorTokens {
    entries: Vec<(String, [u8; 32])>,
}

/// A token's SHA-256, the form in which tokens are kept and console sessions bound to them.
pub fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl OperatorTokens {
    pub fn new(operators: &[Operator]) -> Self {
        Self {
            entries: operators
                .iter()
                .map(|o| (o.name.clone(), digest(o.token.expose())))
                .collect(),
        }
    }

    /// The operator this token belongs to. Compares every digest, so timing reveals nothing.
    pub fn operator(&self, token: &str) -> Option<String> {
        let presented = digest(token);
        self.entries.iter().fold(None, |found, (name, d)| {
            if bool::from(d.ct_eq(&presented)) {
                Some(name.clone())
            } else {
                found
            }
        })
    }

    /// Whether `check` accepts the digest of one of `name`'s tokens in force. Tries every
    /// entry, so timing reveals nothing about which matched.
    pub fn any_token_of(&self, name: &str, check: impl Fn(&[u8; 32]) -> bool) -> bool {
        self.entries
            .iter()
            .fold(false, |found, (n, d)| found | (n == name && check(d)))
    }
}

pub fn bearer(request: &Request) -> Option<&str> {
    request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
}

/// Middleware for `/admin/v1`: 401 unless the bearer token is an operator's.
pub async fn require_operator(
    State(tokens): State<Arc<OperatorTokens>>,
    mut request: Request,
    next: Next,
) -> Response {
    match bearer(&request).and_then(|t| tokens.operator(t)) {
        Some(name) => {
            request.extensions_mut().insert(OperatorName(name));
            next.run(request).await
        }
        None => {
            tracing::warn!("operator request refused: missing or unknown operator token");
            ApiError::unauthorized("Authorization: Bearer <operator token> is required")
                .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coinspaid::signing::SecretString;

    #[test]
    fn a_token_names_its_operator() {
        let tokens = OperatorTokens::new(&[
            Operator {
                name: "alice".into(),
                token: SecretString::new("alice-token-0123456"),
            },
            Operator {
                name: "bob".into(),
                token: SecretString::new("bob-token-0123456789"),
            },
        ]);
        assert_eq!(
            tokens.operator("bob-token-0123456789").as_deref(),
            Some("bob")
        );
        assert_eq!(
            tokens.operator("alice-token-0123456").as_deref(),
            Some("alice")
        );
        assert_eq!(tokens.operator("alice-token-012345"), None);
    }
}
