//! Defending the edge: what an attacker can do before authentication (slow or silent
//! connections, floods of made-up tokens and callbacks), development conveniences next to real
//! credentials, console sessions outliving their token, and JSON with duplicate keys.

mod common;

use std::time::{Duration, Instant};

use common::*;
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn socket_address(app: &TestApp) -> String {
    app.address.trim_start_matches("http://").to_owned()
}

/// Reads until the server closes the connection; how long that took (`None`: still open
/// after `within`).
async fn closed_within(stream: &mut TcpStream, within: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout_at((started + within).into(), stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => continue,
        }
    }
}

#[tokio::test]
async fn connections_that_never_finish_their_headers_are_cut_while_healthz_answers() {
    let app = spawn_app_with(|s| s.server.header_read_timeout_secs = 1).await;
    let mut slow = Vec::new();
    for _ in 0..50 {
        let mut stream = TcpStream::connect(socket_address(&app)).await.unwrap();
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: payoutd\r\nX-Slow: 1")
            .await
            .unwrap();
        slow.push(stream);
    }
    // A keep-alive connection that answered one request and then sits idle goes the same way.
    let mut idle = TcpStream::connect(socket_address(&app)).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: payoutd\r\n\r\n")
        .await
        .unwrap();
    let mut head = [0u8; 12];
    idle.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");

    let started = Instant::now();
    let health = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    assert!(started.elapsed() < Duration::from_millis(500));

    for stream in &mut slow {
        let closed = closed_within(stream, Duration::from_secs(5)).await;
        assert!(
            closed.is_some(),
            "a connection without a whole request head is still open"
        );
    }
    assert!(
        closed_within(&mut idle, Duration::from_secs(5))
            .await
            .is_some(),
        "an idle keep-alive connection is still open"
    );
    assert_eq!(
        app.http
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn connections_over_the_cap_wait_until_one_closes() {
    let app = spawn_app_with(|s| {
        s.server.header_read_timeout_secs = 2;
        s.server.max_connections = 3;
    })
    .await;
    let mut silent = Vec::new();
    for _ in 0..3 {
        silent.push(TcpStream::connect(socket_address(&app)).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // A fourth connection completes its handshake (the backlog) but is not read from until a
    // silent one is cut by the header-read timeout.
    let started = Instant::now();
    let mut fourth = TcpStream::connect(socket_address(&app)).await.unwrap();
    fourth
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: payoutd\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut head = [0u8; 12];
    tokio::time::timeout(Duration::from_secs(10), fourth.read_exact(&mut head))
        .await
        .expect("answered once a slot frees")
        .unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1_200),
        "served at once ({waited:?}): the cap of 3 connections is not enforced"
    );
    for stream in &mut silent {
        assert!(closed_within(stream, Duration::from_secs(5))
            .await
            .is_some());
    }
}
