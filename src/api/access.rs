//! Request correlation and the access log: a sanitized `x-request-id`, the W3C `traceparent`
//! a caller sent, the `http.request` span every line of a request carries, and one INFO line
//! per request.

use std::time::Instant;

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;

use super::REQUEST_ID;
use crate::telemetry;

/// The route template a request matched, left on the response by `metrics::track` for the
/// access log, which runs outside the router and cannot see `MatchedPath` itself.
#[derive(Clone)]
pub struct RouteTemplate(pub String);

/// The longest client-chosen request id kept. A UUID is 36; W3C trace ids are 32.
const REQUEST_ID_MAX: usize = 64;

/// A client's `x-request-id` is kept only when short and plain (letters, digits, `-`, `_`,
/// `.`, `:`); anything else could flood or forge log lines, so it is dropped and a fresh UUID
/// is set in its place by the next layer.
pub fn acceptable_request_id(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= REQUEST_ID_MAX
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// Removes an unacceptable `x-request-id` before `SetRequestIdLayer` decides whether to set one.
pub async fn sanitize_request_id(mut request: Request) -> Request {
    let keep = request
        .headers()
        .get_all(REQUEST_ID)
        .iter()
        .map(|v| v.to_str().map(acceptable_request_id).unwrap_or(false))
        .collect::<Vec<_>>();
    if keep.len() != 1 || !keep[0] {
        request.headers_mut().remove(REQUEST_ID);
    }
    request
}

/// A W3C trace context (`traceparent: 00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`),
/// so lines can be joined with the caller's trace.
#[derive(Debug, PartialEq, Eq)]
pub struct TraceParent<'a> {
    pub trace_id: &'a str,
    pub parent_id: &'a str,
    /// Two hex digits; bit 0: the caller sampled (records) the trace.
    pub flags: &'a str,
}

/// Parses a `traceparent` header; `None` for anything not in the W3C format (an all-zero
/// trace or parent id is invalid there too).
pub fn parse_traceparent(value: &str) -> Option<TraceParent<'_>> {
    let mut parts = value.trim().split('-');
    let (version, trace_id, parent_id, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, len: usize| {
        s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    let valid = hex(version, 2)
        && version != "ff"
        && hex(trace_id, 32)
        && hex(parent_id, 16)
        && hex(flags, 2)
        && trace_id.bytes().any(|b| b != b'0')
        && parent_id.bytes().any(|b| b != b'0')
        // Version 00 has exactly four fields; later versions may append more.
        && (version != "00" || parts.next().is_none());
    valid.then_some(TraceParent {
        trace_id,
        parent_id,
        flags,
    })
}

/// The span every line of a request is logged in, and exported as when traces are: the
/// caller's trace continued, so the `trace_id` of its lines is the exported one.
pub fn request_span(request: &Request) -> tracing::Span {
    let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok());
    let request_id = header(REQUEST_ID.as_str()).unwrap_or("");
    let trace = header("traceparent").and_then(parse_traceparent);
    let span = tracing::info_span!(
        "http.request",
        method = %request.method(),
        path = %request.uri().path(),
        request_id = %request_id,
        trace_id = trace.as_ref().map(|t| t.trace_id),
        parent_span_id = trace.as_ref().map(|t| t.parent_id),
    );
    match &trace {
        Some(t) => telemetry::traces::continue_trace(&span, t.trace_id, t.parent_id, t.flags),
        // A trace begun here: its lines name it too (only while traces are exported).
        None => {
            if let Some(trace_id) = telemetry::traces::trace_id_of(&span) {
                span.record("trace_id", trace_id.as_str());
            }
        }
    }
    span
}

/// One INFO line per request, inside its span: method, route template, status, latency in
/// milliseconds (a number) and the request id.
pub async fn log(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let request_id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v: &HeaderValue| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let response = next.run(request).await;
    let route = response
        .extensions()
        .get::<RouteTemplate>()
        .map(|r| r.0.as_str())
        .unwrap_or("unmatched");
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    tracing::info!(
        method = %method,
        route,
        status = response.status().as_u16(),
        latency_ms = (latency_ms * 1000.0).round() / 1000.0,
        request_id = %request_id,
        "request"
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_kept_only_when_short_and_plain() {
        assert!(acceptable_request_id(
            "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
        ));
        assert!(acceptable_request_id("web:req_42.1"));
        assert!(!acceptable_request_id(""));
        assert!(!acceptable_request_id(&"a".repeat(65)));
        assert!(!acceptable_request_id("a b"));
        assert!(!acceptable_request_id("x\"}{\"level\":\"ERROR"));
        assert!(!acceptable_request_id("é"));
    }

    #[test]
    fn traceparent_is_read_as_w3c_specifies() {
        let ok = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(
            parse_traceparent(ok),
            Some(TraceParent {
                trace_id: "4bf92f3577b34da6a3ce929d0e0e4736",
                parent_id: "00f067aa0ba902b7",
                flags: "01",
            })
        );
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            assert_eq!(parse_traceparent(bad), None, "{bad}");
        }
        assert!(
            parse_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra")
                .is_some()
        );
    }
}
