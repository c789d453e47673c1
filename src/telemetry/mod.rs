//! Logs, traces and metrics. Logs: pretty in development, JSON in production, filtered by
//! `RUST_LOG` or config. Traces: the same spans, exported over OTLP when an endpoint is set
//! ([`traces`]). Metrics: one process-wide Prometheus recorder, rendered by `GET /metrics`.

pub mod catalog;
pub mod gauges;
pub mod traces;

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use serde::Deserialize;
use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter};

pub use self::traces::TraceSettings;

/// `[log]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// `pretty` in development, `json` in production unless set.
    pub format: Option<LogFormat>,
    /// An `EnvFilter` directive; `RUST_LOG` wins when set.
    pub filter: String,
}

/// Lines waiting for the log thread before a logging call waits for room (about 5 MB of JSON
/// lines): enough for bursts, bounded so a stalled stdout cannot take the process's memory.
const LOG_QUEUE_LINES: usize = 8192;

/// Keeps the log thread writing and the span exporter exporting. Hold it until the process
/// ends: dropping it sends the spans still queued (waiting at most the export timeout), then
/// writes the lines still queued (waiting at most a second) and stops the log thread.
#[must_use = "dropping the guard stops the log thread and the span exporter"]
pub struct LogGuard {
    exporter: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
    _worker: Option<WorkerGuard>,
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        // Before the log thread stops, so a failed last export is still logged.
        if let Some(provider) = self.exporter.take() {
            if let Err(err) = provider.shutdown() {
                tracing::warn!(error = %err, "the last spans could not be exported");
            }
        }
    }
}

/// Installs the global subscriber, and the span exporter when `traces` has an endpoint. Safe
/// to call more than once (later calls are no-ops), which tests rely on.
///
/// Lines are written to stdout by a thread of their own, so a request never waits for a
/// write to a slow pipe; the formatting still happens on the caller's thread. The queue is
/// not lossy: when it is full (stdout stalled for thousands of lines) callers wait, as a
/// direct write to the pipe would, and no line is dropped. A line still queued when the
/// process is killed is lost; one already written is not.
///
/// An exporter that cannot be built is logged and left out: traces explain money, they never
/// stop it moving.
pub fn init(format: LogFormat, default_filter: &str, traces: Option<&TraceSettings>) -> LogGuard {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(false)
        .buffered_lines_limit(LOG_QUEUE_LINES)
        .thread_name("payoutd-log")
        // Lines queued together go out in one write; the thread flushes whenever the queue
        // runs empty.
        .finish(std::io::BufWriter::new(std::io::stdout()));
    let (exporting, exporter_error) = match traces.map(traces::exporting).transpose() {
        Ok(exporting) => (exporting.flatten(), None),
        Err(err) => (None, Some(err)),
    };
    let (provider, tracer) = match exporting {
        Some(e) => (Some(e.provider), Some(e.tracer)),
        None => (None, None),
    };
    let registry = tracing_subscriber::registry()
        .with(filter)
        .with(tracer.map(|tracer| tracing_opentelemetry::layer().with_tracer(tracer)));
    let installed = match format {
        // `spans` lists every enclosing span with its fields, innermost last; the current
        // span alone (`span`) would repeat its last element on every line.
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(false)
                    .with_span_list(true)
                    .with_writer(writer),
            )
            .try_init(),
        LogFormat::Pretty => registry
            .with(fmt::layer().compact().with_writer(writer))
            .try_init(),
    };
    if let Some(err) = exporter_error {
        // An invalid URI's error quotes it, and a URL may carry a password: the reason alone.
        let error = match err {
            opentelemetry_otlp::ExporterBuildError::InvalidUri(_, reason) => reason,
            other => other.to_string(),
        };
        tracing::error!(%error, "traces are not exported: the OTLP exporter could not be built");
    }
    let installed = installed.is_ok();
    if installed {
        // The host alone: a URL may carry a password.
        if let Some(host) = traces
            .filter(|_| provider.is_some())
            .and_then(|t| t.otlp_endpoint.as_ref())
            .and_then(|url| url.host_str())
        {
            tracing::info!(collector = host, "exporting traces over OTLP/HTTP");
        }
    }
    LogGuard {
        // A provider whose layer was not installed has nothing to export.
        exporter: provider.filter(|_| installed),
        _worker: installed.then_some(guard),
    }
}

/// Latency buckets in seconds: from a fast local query to a provider call at its timeout.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The process's metrics recorder, installed on first use. A process has one recorder, so
/// several applications in one test process share it.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("duration_seconds".into()), LATENCY_BUCKETS)
                .expect("bucket list is non-empty")
                .install_recorder()
                .expect("no other metrics recorder is installed");
            crate::telemetry::catalog::install();
            handle
        })
        .clone()
}
