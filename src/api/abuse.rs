//! Limits on abuse: a rate limit per source address on the callback route and per bearer
//! token on `/v1`, answered `429` problem+json with `Retry-After`; an optional CIDR allow-list
//! for the callback route. The source address is the peer's, or, when the peer is a trusted
//! proxy, the last `X-Forwarded-For` hop that is not one.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use ipnet::IpNet;

use super::error::ApiError;
use crate::config::AbuseSettings;

/// The limits in force, shared by every request of one process.
pub struct Guard {
    callback: Option<DefaultKeyedRateLimiter<IpAddr>>,
    api: Option<DefaultKeyedRateLimiter<u64>>,
    callback_allow: Vec<IpNet>,
    trusted_proxies: Vec<IpNet>,
}

fn limiter<K: Hash + Eq + Clone>(
    per_second: u32,
    burst: u32,
) -> Option<DefaultKeyedRateLimiter<K>> {
    let rate = NonZeroU32::new(per_second)?;
    let burst = NonZeroU32::new(burst).unwrap_or(rate);
    Some(RateLimiter::keyed(
        Quota::per_second(rate).allow_burst(burst),
    ))
}

/// A CIDR (`10.0.0.0/8`) or a single address (`203.0.113.7`).
pub fn parse_net(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("{text:?} is not an IP address or CIDR"))
}

impl Guard {
    /// From validated settings (the networks were parsed at start).
    pub fn new(settings: &AbuseSettings) -> Self {
        let nets = |list: &[String]| list.iter().filter_map(|n| parse_net(n).ok()).collect();
        Self {
            callback: limiter(settings.callback_per_second, settings.callback_burst),
            api: limiter(settings.api_per_second, settings.api_burst),
            callback_allow: nets(&settings.callback_allow),
            trusted_proxies: nets(&settings.trusted_proxies),
        }
    }

    /// Who sent the request: the peer, unless the peer is a trusted proxy; then the nearest
    /// `X-Forwarded-For` hop that is not itself a trusted proxy (earlier hops are what the
    /// client claims, and anyone can claim anything).
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let trusted = |ip: &IpAddr| self.trusted_proxies.iter().any(|n| n.contains(ip));
        if !trusted(&peer) {
            return peer;
        }
        let hops: Vec<IpAddr> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|hop| hop.trim().parse().ok())
            .collect();
        hops.into_iter()
            .rev()
            .find(|ip| !trusted(ip))
            .unwrap_or(peer)
    }

    fn allowed(&self, ip: IpAddr) -> bool {
        self.callback_allow.is_empty() || self.callback_allow.iter().any(|n| n.contains(&ip))
    }
}

fn too_many(scope: &'static str, wait: std::time::Duration) -> Response {
    metrics::counter!("payoutd_rate_limited_total", "scope" => scope).increment(1);
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let mut response = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!("too many requests; retry in {seconds} s"),
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    response
}

/// The callback route: allow-list, then the per-address rate limit.
pub async fn callback(State(guard): State<Arc<Guard>>, request: Request, next: Next) -> Response {
    // Absent only when the router is served without connect info (never by `Application`).
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    if let Some(peer) = peer {
        let ip = guard.client_ip(peer, request.headers());
        if !guard.allowed(ip) {
            metrics::counter!("payoutd_callbacks_blocked_total", "reason" => "not_allowed")
                .increment(1);
            tracing::warn!(source = %ip, "callback refused: source not in abuse.callback_allow");
            return ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "callbacks are not accepted from this address",
            )
            .into_response();
        }
        if let Some(limiter) = &guard.callback {
            if let Err(not_until) = limiter.check_key(&ip) {
                return too_many(
                    "callback",
                    not_until.wait_time_from(DefaultClock::default().now()),
                );
            }
        }
    }
    next.run(request).await
}

/// `/v1` (bearer-token routes): the per-token rate limit, keyed by a hash of the presented
/// `Authorization` value so no token is kept in memory as such.
pub async fn api(State(guard): State<Arc<Guard>>, request: Request, next: Next) -> Response {
    if let Some(limiter) = &guard.api {
        let mut hasher = DefaultHasher::new();
        request
            .headers()
            .get(header::AUTHORIZATION)
            .map(HeaderValue::as_bytes)
            .hash(&mut hasher);
        if let Err(not_until) = limiter.check_key(&hasher.finish()) {
            return too_many(
                "api",
                not_until.wait_time_from(DefaultClock::default().now()),
            );
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(trusted: &[&str], allow: &[&str]) -> Guard {
        Guard::new(&AbuseSettings {
            trusted_proxies: trusted.iter().map(|s| s.to_string()).collect(),
            callback_allow: allow.iter().map(|s| s.to_string()).collect(),
            ..AbuseSettings::default()
        })
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            HeaderValue::from_static("1.1.1.1, 203.0.113.9, 10.0.0.2"),
        );
        let g = guard(&["10.0.0.0/8"], &[]);
        assert_eq!(
            g.client_ip("10.0.0.1".parse().unwrap(), &headers),
            "203.0.113.9".parse::<IpAddr>().unwrap(),
            "the nearest untrusted hop, not what the client claims first"
        );
        assert_eq!(
            g.client_ip("198.51.100.1".parse().unwrap(), &headers),
            "198.51.100.1".parse::<IpAddr>().unwrap(),
            "an untrusted peer's header is ignored"
        );
    }

    #[test]
    fn the_allow_list_takes_cidrs_and_single_addresses() {
        let g = guard(&[], &["203.0.113.0/24", "2001:db8::1"]);
        assert!(g.allowed("203.0.113.200".parse().unwrap()));
        assert!(g.allowed("2001:db8::1".parse().unwrap()));
        assert!(!g.allowed("203.0.114.1".parse().unwrap()));
        assert!(guard(&[], &[]).allowed("8.8.8.8".parse().unwrap()));
        assert!(parse_net("not-an-ip").is_err());
    }
}
