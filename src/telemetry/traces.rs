//! OpenTelemetry traces over OTLP/HTTP (protobuf), when `[traces] otlp_endpoint` is set: every
//! span the logs carry (`http.request`, `withdrawal.create`, `withdrawal.submit`,
//! `withdrawal.callback`...) is exported with its fields, a request's span continuing the
//! caller's W3C `traceparent`. Unset, no exporter exists and nothing connects anywhere.
//!
//! Spans are exported in batches by the SDK's own thread with a blocking client, so a slow or
//! absent collector never makes a request wait; a full queue drops spans, never blocks.

use std::time::Duration;

use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig};
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use opentelemetry_sdk::Resource;
use serde::Deserialize;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use url::Url;

/// `[traces]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceSettings {
    /// The collector's OTLP/HTTP base URL (`OTEL_EXPORTER_OTLP_ENDPOINT`); spans go to
    /// `{otlp_endpoint}/v1/traces`. Unset: no traces are exported.
    #[serde(default, deserialize_with = "crate::config::optional_url")]
    pub otlp_endpoint: Option<Url>,
    /// `service.name` of the exported spans (`OTEL_SERVICE_NAME`).
    pub service_name: String,
    /// How long one export may take before it is abandoned (its spans dropped).
    pub export_timeout_secs: u64,
}

impl TraceSettings {
    /// Where spans are posted, the OTLP/HTTP way: the signal's path appended to the base URL.
    pub fn traces_url(&self) -> Option<String> {
        self.otlp_endpoint
            .as_ref()
            .map(|base| format!("{}/v1/traces", base.as_str().trim_end_matches('/')))
    }
}

/// The exporting half of the telemetry: the tracer spans are handed to, and the provider whose
/// shutdown sends what is still queued.
pub(super) struct Exporting {
    pub provider: SdkTracerProvider,
    pub tracer: SdkTracer,
}

/// `None` when no endpoint is set: then nothing is built, not even an HTTP client.
pub(super) fn exporting(
    settings: &TraceSettings,
) -> Result<Option<Exporting>, opentelemetry_otlp::ExporterBuildError> {
    let Some(url) = settings.traces_url() else {
        return Ok(None);
    };
    let exporter = SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(url)
        .with_timeout(Duration::from_secs(settings.export_timeout_secs))
        .build()?;
    let resource = Resource::builder()
        .with_service_name(settings.service_name.clone())
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .build();
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build();
    let tracer = provider.tracer("payoutd");
    Ok(Some(Exporting { provider, tracer }))
}

/// Makes `span` (a request's, not yet entered) a child of the caller's span named by a valid
/// W3C `traceparent`, so its exported trace id is the caller's and the one its log lines carry.
/// A caller that did not sample the trace is obeyed: nothing of it is exported. Without an
/// exporter this does nothing.
pub fn continue_trace(span: &tracing::Span, trace_id: &str, parent_id: &str, flags: &str) {
    let (Ok(trace_id), Ok(parent_id), Ok(flags)) = (
        TraceId::from_hex(trace_id),
        SpanId::from_hex(parent_id),
        u8::from_str_radix(flags, 16),
    ) else {
        return;
    };
    let parent = SpanContext::new(
        trace_id,
        parent_id,
        TraceFlags::new(flags) & TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    );
    // Fails only without an exporter (no OpenTelemetry layer): nothing to continue then.
    let _ = span.set_parent(Context::new().with_remote_span_context(parent));
}

/// The trace id `span` is exported under, as 32 lowercase hex digits; `None` without an
/// exporter. Starts the span's export record, so call it after [`continue_trace`].
pub fn trace_id_of(span: &tracing::Span) -> Option<String> {
    let context = span.context();
    let span_context = context.span().span_context().clone();
    span_context
        .is_valid()
        .then(|| span_context.trace_id().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(endpoint: Option<&str>) -> TraceSettings {
        TraceSettings {
            otlp_endpoint: endpoint.map(|e| Url::parse(e).unwrap()),
            service_name: "payoutd".into(),
            export_timeout_secs: 10,
        }
    }

    #[test]
    fn spans_go_to_the_traces_path_under_the_endpoint() {
        assert_eq!(settings(None).traces_url(), None);
        for (base, url) in [
            ("http://collector:4318", "http://collector:4318/v1/traces"),
            ("http://collector:4318/", "http://collector:4318/v1/traces"),
            (
                "https://otel.example/otlp/",
                "https://otel.example/otlp/v1/traces",
            ),
        ] {
            assert_eq!(settings(Some(base)).traces_url().as_deref(), Some(url));
        }
    }

    #[test]
    fn without_an_endpoint_nothing_is_built() {
        assert!(exporting(&settings(None)).unwrap().is_none());
    }
}
