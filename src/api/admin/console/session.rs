//! Console sessions: after a login with an operator token, the browser holds only a random
//! session id in an `HttpOnly`, `SameSite=Strict` cookie (`Secure` behind HTTPS); the database
//! holds its SHA-256, the operator's name, the session's CSRF token, an expiry, and a binding
//! to the token that opened it (SHA-256 over the session id and the token's digest): a session
//! lives only while that token is still one of its operator's. The token itself is never
//! stored or sent back.

use std::time::Duration;

use axum::http::{header, HeaderMap};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use subtle::ConstantTimeEq;

use crate::api::admin::auth::OperatorTokens;

pub const COOKIE: &str = "payoutd_console";

/// How long a login lasts; a laptop left open does not stay logged in for days.
pub const LIFETIME: Duration = Duration::from_secs(8 * 3600);

/// Who is logged in, put in the request's extensions by the console's middleware.
#[derive(Debug, Clone)]
pub struct Session {
    pub operator: String,
    pub csrf: String,
    id_hash: Vec<u8>,
}

impl Session {
    /// Whether a form's `csrf` field is this session's (constant time).
    pub fn csrf_matches(&self, presented: Option<&str>) -> bool {
        presented.is_some_and(|p| bool::from(p.as_bytes().ct_eq(self.csrf.as_bytes())))
    }
}

fn random_hex() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

fn hash(id: &str) -> Vec<u8> {
    Sha256::digest(id.as_bytes()).to_vec()
}

/// What ties a session to its token: without the session id (only in the cookie) it tells
/// nothing about the token.
fn token_binding(id: &str, token_digest: &[u8; 32]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(b"payoutd console session\0");
    hasher.update(id.as_bytes());
    hasher.update(token_digest);
    hasher.finalize().into()
}

/// Starts a session for `operator`, bound to the token (by its digest) that logged in;
/// returns the id for the cookie. Expired sessions are swept here, so the table stays small
/// without a worker of its own.
pub async fn create(
    pool: &PgPool,
    operator: &str,
    token_digest: &[u8; 32],
) -> Result<String, sqlx::Error> {
    sqlx::query!("DELETE FROM console_sessions WHERE expires_at < now()")
        .execute(pool)
        .await?;
    let id = random_hex();
    let binding = token_binding(&id, token_digest);
    sqlx::query!(
        "INSERT INTO console_sessions (id_hash, operator, csrf, expires_at, token_binding)
         VALUES ($1, $2, $3, now() + make_interval(secs => $4), $5)",
        hash(&id),
        operator,
        random_hex(),
        LIFETIME.as_secs_f64(),
        binding.as_slice()
    )
    .execute(pool)
    .await?;
    Ok(id)
}

/// The live session the request's cookie names, if any, and only while the token that opened
/// it is still one of its operator's in `tokens`.
pub async fn find(
    pool: &PgPool,
    headers: &HeaderMap,
    tokens: &OperatorTokens,
) -> Result<Option<Session>, sqlx::Error> {
    let Some(id) = cookie(headers, COOKIE) else {
        return Ok(None);
    };
    let id_hash = hash(id);
    let row = sqlx::query!(
        "SELECT operator, csrf, token_binding FROM console_sessions
         WHERE id_hash = $1 AND expires_at > now()",
        id_hash
    )
    .fetch_optional(pool)
    .await?
    .map(|row| (row.operator, row.csrf, row.token_binding));
    Ok(row
        .filter(|(operator, _, binding)| {
            tokens.any_token_of(operator, |digest| {
                bool::from(token_binding(id, digest).ct_eq(binding.as_slice()))
            })
        })
        .map(|(operator, csrf, _)| Session {
            operator,
            csrf,
            id_hash,
        }))
}

/// Logout: the row goes, so the cookie is worthless on every replica.
pub async fn end(pool: &PgPool, session: &Session) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "DELETE FROM console_sessions WHERE id_hash = $1",
        session.id_hash
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// One cookie's value from the `Cookie` headers.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Served over HTTPS, as a TLS-terminating proxy reports it: then the cookie is `Secure`.
fn is_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

/// The `Set-Cookie` value for a new session (`None` clears it).
pub fn set_cookie(headers: &HeaderMap, id: Option<&str>) -> String {
    let secure = if is_https(headers) { "; Secure" } else { "" };
    match id {
        Some(id) => format!(
            "{COOKIE}={id}; Path=/admin; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
            LIFETIME.as_secs()
        ),
        None => format!("{COOKIE}=; Path=/admin; HttpOnly; SameSite=Strict; Max-Age=0{secure}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn the_cookie_is_http_only_strict_and_secure_behind_https() {
        let mut headers = HeaderMap::new();
        let plain = set_cookie(&headers, Some("abc"));
        assert!(plain.contains("HttpOnly") && plain.contains("SameSite=Strict"));
        assert!(!plain.contains("Secure"));
        headers.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        assert!(set_cookie(&headers, Some("abc")).ends_with("; Secure"));
        assert!(set_cookie(&headers, None).contains("Max-Age=0"));
    }

    #[test]
    fn a_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; payoutd_console=xyz; b=2"),
        );
        assert_eq!(cookie(&headers, COOKIE), Some("xyz"));
        assert_eq!(cookie(&headers, "c"), None);
    }

    #[test]
    fn csrf_must_match_exactly() {
        let s = Session {
            operator: "alice".into(),
            csrf: "token".into(),
            id_hash: vec![],
        };
        assert!(s.csrf_matches(Some("token")));
        assert!(!s.csrf_matches(Some("toke")));
        assert!(!s.csrf_matches(None));
    }
}
