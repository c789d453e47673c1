//! Bearer-token authentication for the website backend.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error::ApiError;
use crate::coinspaid::signing::SecretString;

/// The accepted tokens, kept only as SHA-256 digests: comparing fixed-length digests in
/// constant time reveals neither a token nor its length.
pub struct ApiTokens {
    digests: Vec<[u8; 32]>,
}

impl ApiTokens {
    pub fn new(tokens: &[SecretString]) -> Self {
        Self {
            digests: tokens.iter().map(|t| digest(t.expose())).collect(),
        }
    }

    pub fn accepts(&self, token: &str) -> bool {
        self.identify(token).is_some()
    }

    /// The token's position in the configured list. Checks every digest, so timing does not
    /// reveal which one matched.
    pub fn identify(&self, token: &str) -> Option<usize> {
        let presented = digest(token);
        self.digests.iter().enumerate().fold(None, |found, (i, d)| {
            if bool::from(d.ct_eq(&presented)) {
                Some(i)
            } else {
                found
            }
        })
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Which configured token authenticated the request (its position in the list), put in the
/// request's extensions by [`require_bearer`]: the per-token rate limit keys on it.
#[derive(Debug, Clone, Copy)]
pub struct Caller(pub usize);

/// Middleware: 401 unless `Authorization: Bearer <token>` carries an accepted token.
pub async fn require_bearer(
    State(tokens): State<Arc<ApiTokens>>,
    mut request: Request,
    next: Next,
) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        });
    match presented.map(|token| tokens.identify(token.trim())) {
        Some(Some(index)) => {
            request.extensions_mut().insert(Caller(index));
            next.run(request).await
        }
        Some(None) => {
            tracing::warn!("request refused: unknown bearer token");
            ApiError::unauthorized("the bearer token is not valid").into_response()
        }
        None => ApiError::unauthorized("Authorization: Bearer <token> is required").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_only_configured_tokens() {
        let tokens = ApiTokens::new(&[
            SecretString::new("first-token-0123"),
            SecretString::new("second-token-012"),
        ]);
        assert!(tokens.accepts("first-token-0123"));
        assert!(tokens.accepts("second-token-012"));
        assert!(!tokens.accepts("first-token-012"));
        assert!(!tokens.accepts(""));
    }
}
