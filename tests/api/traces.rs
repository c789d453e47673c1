//! OpenTelemetry traces over OTLP/HTTP, through the real binary: with an endpoint, the spans of
//! a withdrawal reach a collector (a small OTLP receiver on loopback decoding the protobuf
//! `ExportTraceServiceRequest`s) under the caller's trace id, carrying the withdrawal's ids, and
//! the logs name the same trace; without one nothing connects anywhere.

use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use payoutd::config::DEV_API_TOKEN;
use prost::Message;
use serde_json::{json, Value};

use crate::helpers::{free_port, payoutd_command, stop_gracefully, wait_ready, DropDatabase};

const TRACE_ID: &str = "0af7651916cd43dd8448eb211c80319c";
const PARENT_ID: &str = "b7ad6b7169203331";

/// What a collector received: every span of every export, with its resource's service.name.
#[derive(Default)]
struct Received {
    spans: Vec<(String, Span)>,
    content_types: Vec<String>,
}

/// An OTLP/HTTP receiver on loopback: `POST /v1/traces` with a protobuf body.
async fn otlp_receiver() -> (String, Arc<Mutex<Received>>) {
    let received = Arc::new(Mutex::new(Received::default()));
    let store = received.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: Bytes| async move {
                let request =
                    ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf body");
                let mut store = store.lock().unwrap();
                store.content_types.push(
                    headers["content-type"]
                        .to_str()
                        .unwrap_or_default()
                        .to_owned(),
                );
                for resource_spans in request.resource_spans {
                    let service = resource_spans
                        .resource
                        .as_ref()
                        .and_then(|r| text(&r.attributes, "service.name"))
                        .unwrap_or_default()
                        .to_owned();
                    for scope in resource_spans.scope_spans {
                        for span in scope.spans {
                            store.spans.push((service.clone(), span));
                        }
                    }
                }
                (
                    [("content-type", "application/x-protobuf")],
                    ExportTraceServiceResponse::default().encode_to_vec(),
                )
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, received)
}

fn text<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a str> {
    attributes.iter().find(|kv| kv.key == key).and_then(|kv| {
        match kv.value.as_ref()?.value.as_ref()? {
            AnyValue::StringValue(s) => Some(s.as_str()),
            _ => None,
        }
    })
}

/// The service on `port`, exporting to `otlp_endpoint` when given, logging JSON.
fn service(port: u16, database: &str) -> tokio::process::Command {
    let mut command = payoutd_command(port, database);
    command
        .env("PAYOUTD_LOG_FORMAT", "json")
        .env(
            "PAYOUTD_SIMULATOR_LISTEN_ADDR",
            format!("127.0.0.1:{}", free_port()),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// A credit without a traceparent, then a withdrawal with one; returns the withdrawal.
async fn credit_and_withdraw(base: &str) -> Value {
    let http = reqwest::Client::new();
    let credit = http
        .post(format!("{base}/v1/users/u1/credits"))
        .bearer_auth(DEV_API_TOKEN)
        .json(&json!({"currency":"EUR","amount":"100.00","reference":"t1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(credit.status(), 201);
    let created = http
        .post(format!("{base}/v1/withdrawals"))
        .bearer_auth(DEV_API_TOKEN)
        .header("Idempotency-Key", "traces-1")
        .header("traceparent", format!("00-{TRACE_ID}-{PARENT_ID}-01"))
        .json(
            &json!({"user_id":"u1","amount":"10.00","currency":"EUR","convert_to":"BTC",
            "address":"bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    created.json().await.unwrap()
}

fn json_lines(output: &str) -> Vec<Value> {
    output
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The `trace_id` of the access line of `method` on `route`, from its request span.
fn logged_trace_id(lines: &[Value], method: &str, route: &str) -> String {
    let line = lines
        .iter()
        .find(|l| l["message"] == "request" && l["method"] == method && l["route"] == route)
        .unwrap_or_else(|| panic!("no access line for {method} {route}"));
    line["spans"][0]["trace_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no trace_id: {line}"))
        .to_owned()
}

#[tokio::test]
async fn a_withdrawal_s_spans_reach_the_collector_under_the_caller_s_trace() {
    let (collector, received) = otlp_receiver().await;
    let database = format!("payoutd_test_{}", uuid::Uuid::now_v7().simple());
    let _drop_database = DropDatabase::new(&database);
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = service(port, &database)
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &collector)
        .env("OTEL_SERVICE_NAME", "payoutd-traces-test")
        .spawn()
        .unwrap();
    wait_ready(&base).await;
    let withdrawal = credit_and_withdraw(&base).await;
    let (id, foreign_id) = (
        withdrawal["id"].as_str().unwrap(),
        withdrawal["foreign_id"].as_str().unwrap(),
    );
    // Nothing waits for the batch's timer: shutting down exports what is queued.
    let (status, output) = stop_gracefully(&mut child).await;
    assert!(status.is_some_and(|s| s.success()), "{output}");

    let received = received.lock().unwrap();
    assert!(
        received
            .content_types
            .iter()
            .all(|c| c == "application/x-protobuf"),
        "{:?}",
        received.content_types
    );
    let trace_id = hex::decode(TRACE_ID).unwrap();
    let ours: Vec<&Span> = received
        .spans
        .iter()
        .filter(|(_, span)| span.trace_id == trace_id)
        .map(|(_, span)| span)
        .collect();
    assert!(
        received
            .spans
            .iter()
            .all(|(service, _)| service == "payoutd-traces-test"),
        "OTEL_SERVICE_NAME names the service"
    );
    let request = ours
        .iter()
        .find(|s| s.name == "http.request")
        .expect("the request's span, in the caller's trace");
    assert_eq!(request.parent_span_id, hex::decode(PARENT_ID).unwrap());
    assert_eq!(text(&request.attributes, "path"), Some("/v1/withdrawals"));
    for name in ["withdrawal.create", "withdrawal.submit"] {
        let span = ours
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no {name} span in the caller's trace"));
        assert_eq!(text(&span.attributes, "withdrawal_id"), Some(id), "{name}");
        assert_eq!(
            text(&span.attributes, "foreign_id"),
            Some(foreign_id),
            "{name}"
        );
    }

    // The logs name the exported trace: the caller's, and one begun here for a request
    // that came without a traceparent.
    let lines = json_lines(&output);
    assert_eq!(logged_trace_id(&lines, "POST", "/v1/withdrawals"), TRACE_ID);
    let credit_trace = hex::decode(logged_trace_id(
        &lines,
        "POST",
        "/v1/users/{user_id}/credits",
    ))
    .unwrap();
    let credit = received
        .spans
        .iter()
        .map(|(_, span)| span)
        .find(|s| s.trace_id == credit_trace)
        .expect("the credit's trace, as its lines name it");
    assert_eq!(credit.name, "http.request");
    assert_eq!(
        text(&credit.attributes, "path"),
        Some("/v1/users/u1/credits")
    );
    assert!(credit.parent_span_id.is_empty(), "a trace begun here");
}

#[tokio::test]
async fn without_an_endpoint_nothing_is_exported_and_nothing_connects() {
    // Where the OpenTelemetry SDK would send spans if an exporter were built at all.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let elsewhere = format!("http://{}", listener.local_addr().unwrap());
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = connections.clone();
    tokio::spawn(async move {
        while listener.accept().await.is_ok() {
            counted.fetch_add(1, Ordering::SeqCst);
        }
    });
    let database = format!("payoutd_test_{}", uuid::Uuid::now_v7().simple());
    let _drop_database = DropDatabase::new(&database);
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = service(port, &database)
        // Empty is unset, as OpenTelemetry reads it.
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", "")
        .env(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            format!("{elsewhere}/v1/traces"),
        )
        .spawn()
        .unwrap();
    wait_ready(&base).await;
    credit_and_withdraw(&base).await;
    let (status, output) = stop_gracefully(&mut child).await;
    assert!(status.is_some_and(|s| s.success()), "{output}");
    assert_eq!(connections.load(Ordering::SeqCst), 0);
    assert!(!output.contains("exporting traces"), "{output}");
    // The caller's trace id is still in the logs; none is made up without an exporter.
    let lines = json_lines(&output);
    assert_eq!(logged_trace_id(&lines, "POST", "/v1/withdrawals"), TRACE_ID);
    let credit = lines
        .iter()
        .find(|l| l["message"] == "request" && l["route"] == "/v1/users/{user_id}/credits")
        .unwrap();
    assert!(credit["spans"][0].get("trace_id").is_none(), "{credit}");
}
