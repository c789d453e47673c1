//! Limits on abuse, answered `429` problem+json with `Retry-After`: on `/v1`, one bucket per
//! configured token once the token is known, and one per source address shared by every
//! request whose token is missing or unknown; on the callback route, one per source address
//! for callbacks that fail verification (a verified callback is never refused), behind an
//! optional CIDR allow-list. The source address is the peer's, or, when the peer is a trusted
//! proxy, the last `X-Forwarded-For` hop that is not one.
//!
//! What is kept per key is bounded whatever arrives: the keys for known tokens are as many as
//! the tokens; the per-address tables forget an address once its bucket is full again
//! (pruned at most once a second), count an IPv6 /64 as one address, and past
//! [`MAX_TRACKED_SOURCES`] put every further address into one shared bucket.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use ipnet::IpNet;

use super::auth::Caller;
use super::error::{ApiError, ErrorCode};
use crate::config::AbuseSettings;

/// Source addresses tracked per table before new ones share one bucket.
pub const MAX_TRACKED_SOURCES: usize = 100_000;

/// The limits in force, shared by every request of one process.
pub struct Guard {
    /// `/v1` requests with a known token, by the token's position in the configured list.
    api: Option<DefaultKeyedRateLimiter<usize>>,
    /// `/v1` requests whose token is missing or unknown, by source address.
    unauthenticated: Option<DefaultKeyedRateLimiter<IpAddr>>,
    /// Callbacks that failed verification, by source address.
    callback: Option<DefaultKeyedRateLimiter<IpAddr>>,
    callback_allow: Vec<IpNet>,
    trusted_proxies: Vec<IpNet>,
    max_tracked: usize,
    started: Instant,
    last_pruned_ms: AtomicU64,
}

fn limiter<K: std::hash::Hash + Eq + Clone>(
    per_second: u32,
    burst: u32,
) -> Option<DefaultKeyedRateLimiter<K>> {
    let rate = NonZeroU32::new(per_second)?;
    let burst = NonZeroU32::new(burst).unwrap_or(rate);
    Some(RateLimiter::keyed(
        Quota::per_second(rate).allow_burst(burst),
    ))
}

/// One IPv6 host holds a whole /64: counted as one source, or one client could fill a table.
fn source_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
    }
}

impl Guard {
    /// From validated settings (the networks were parsed at start).
    pub fn new(settings: &AbuseSettings) -> Self {
        Self {
            api: limiter(settings.api_per_second, settings.api_burst),
            unauthenticated: limiter(
                settings.unauthenticated_per_second,
                settings.unauthenticated_burst,
            ),
            callback: limiter(settings.callback_per_second, settings.callback_burst),
            callback_allow: settings.callback_allow.clone(),
            trusted_proxies: settings.trusted_proxies.clone(),
            max_tracked: MAX_TRACKED_SOURCES,
            started: Instant::now(),
            last_pruned_ms: AtomicU64::new(0),
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

    /// How many keys the limiters hold now (for the memory bound's test and metrics).
    pub fn tracked_keys(&self) -> usize {
        self.api.as_ref().map_or(0, |l| l.len())
            + self.unauthenticated.as_ref().map_or(0, |l| l.len())
            + self.callback.as_ref().map_or(0, |l| l.len())
    }

    /// Forgets addresses whose buckets are full again, at most once a second.
    fn prune(&self) {
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let last = self.last_pruned_ms.load(Ordering::Relaxed);
        if now.saturating_sub(last) < 1_000
            || self
                .last_pruned_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        for table in [&self.unauthenticated, &self.callback]
            .into_iter()
            .flatten()
        {
            table.retain_recent();
            table.shrink_to_fit();
        }
    }

    /// Counts one request from `ip` against a per-address table.
    fn check_source(
        &self,
        table: &DefaultKeyedRateLimiter<IpAddr>,
        ip: IpAddr,
    ) -> Result<(), std::time::Duration> {
        self.prune();
        let key = if table.len() >= self.max_tracked {
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        } else {
            source_key(ip)
        };
        table
            .check_key(&key)
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }
}

fn too_many(scope: &'static str, wait: std::time::Duration) -> Response {
    metrics::counter!("payoutd_rate_limited_total", "scope" => scope).increment(1);
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::RateLimited,
        format!("too many requests; retry in {} s", seconds.max(1)),
    )
    .with_retry_after(wait)
    .into_response()
}

/// The request's source, as the limits see it. Absent only when the router is served without
/// connect info (never by `Application`).
fn source(guard: &Guard, request: &Request) -> Option<IpAddr> {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| guard.client_ip(addr.ip(), request.headers()))
}

/// The callback route: the allow-list, then the callback itself (verified first, which is
/// cheap); only a refused verification counts against its source, and past the limit it is
/// answered 429 instead of 401.
pub async fn callback(State(guard): State<Arc<Guard>>, request: Request, next: Next) -> Response {
    let Some(ip) = source(&guard, &request) else {
        return next.run(request).await;
    };
    if !guard.allowed(ip) {
        metrics::counter!("payoutd_callbacks_blocked_total", "reason" => "not_allowed")
            .increment(1);
        tracing::warn!(source = %ip, "callback refused: source not in abuse.callback_allow");
        return ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::Forbidden,
            "callbacks are not accepted from this address",
        )
        .into_response();
    }
    let response = next.run(request).await;
    if response.status() == StatusCode::UNAUTHORIZED {
        if let Some(table) = &guard.callback {
            if let Err(wait) = guard.check_source(table, ip) {
                return too_many("callback", wait);
            }
        }
    }
    response
}

/// `/v1` and `/admin/v1`, outside authentication: a request refused for its token counts
/// against its source address, one bucket for every unknown token from there (either
/// interface); past the limit, 429 instead of 401.
pub async fn unauthenticated(
    State(guard): State<Arc<Guard>>,
    request: Request,
    next: Next,
) -> Response {
    let ip = source(&guard, &request);
    let response = next.run(request).await;
    if response.status() == StatusCode::UNAUTHORIZED {
        if let (Some(table), Some(ip)) = (&guard.unauthenticated, ip) {
            if let Err(wait) = guard.check_source(table, ip) {
                return too_many("unauthenticated", wait);
            }
        }
    }
    response
}

/// `/v1`, inside authentication: the per-token limit, keyed by the token's position in the
/// configured list (so the table holds no more keys than there are tokens, and no token).
pub async fn api(State(guard): State<Arc<Guard>>, request: Request, next: Next) -> Response {
    if let (Some(limiter), Some(Caller(index))) = (&guard.api, request.extensions().get::<Caller>())
    {
        if let Err(not_until) = limiter.check_key(index) {
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
    use axum::http::HeaderValue;

    /// Networks as configuration reads them (an address alone is a /32 or /128).
    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter()
            .map(|s| {
                s.parse()
                    .unwrap_or_else(|_| IpNet::from(s.parse::<IpAddr>().unwrap()))
            })
            .collect()
    }

    fn guard(trusted: &[&str], allow: &[&str]) -> Guard {
        Guard::new(&AbuseSettings {
            trusted_proxies: nets(trusted),
            callback_allow: nets(allow),
            ..crate::config::Settings::defaults().abuse
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
    }

    #[test]
    fn the_per_address_tables_stay_bounded_whatever_the_addresses() {
        let mut g = Guard::new(&AbuseSettings {
            unauthenticated_per_second: 1,
            unauthenticated_burst: 1,
            ..crate::config::Settings::defaults().abuse
        });
        g.max_tracked = 50;
        let table = g.unauthenticated.as_ref().unwrap();
        for i in 0..10_000u32 {
            let _ = g.check_source(table, IpAddr::from(i.to_be_bytes()));
        }
        assert!(table.len() <= 51, "{}", table.len());
        // One IPv6 /64 is one source, however many addresses it uses.
        let g = guard(&[], &[]);
        let table = g.unauthenticated.as_ref().unwrap();
        for i in 0..1_000u128 {
            let _ = g.check_source(
                table,
                IpAddr::V6(Ipv6Addr::from((0x2001_0db8_u128 << 96) | i)),
            );
        }
        assert_eq!(table.len(), 1);
    }
}
