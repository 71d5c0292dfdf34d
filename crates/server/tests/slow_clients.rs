//! Clients that open connections and send nothing, or stop inside the request headers, cannot
//! use the server up: each is closed after the header timeout, the connection cap keeps the
//! rest waiting in the listen backlog, and `/healthz` keeps answering.

mod common;

use std::time::{Duration, Instant};

use common::{Backend, spawn_app_limited};
use herald_server::app::connections::ConnectionLimits;
use herald_server::delivery::email::EmailSettings;
use herald_webhook::client::ClientSettings;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Short, so the test takes seconds; the default is 30 s.
const HEADER_TIMEOUT: Duration = Duration::from_millis(500);
/// Small, so the slow clients below are three times more than the server lets in at once.
const CAP: usize = 20;

async fn slow_clients_are_closed_and_healthz_still_answers(backend: Backend) {
    let limits = ConnectionLimits { header_timeout: HEADER_TIMEOUT, max_connections: CAP };
    let app = spawn_app_limited(backend, EmailSettings::default(), ClientSettings::default(), limits).await;
    let address = app.address.strip_prefix("http://").expect("http address").to_owned();
    let mut slow = Vec::new();
    for i in 0..3 * CAP {
        let mut stream = TcpStream::connect(&address).await.expect("connect");
        // Half send nothing, half stop inside the headers.
        if i % 2 == 1 {
            stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: herald\r\nX-Slow: ").await.expect("write");
        }
        slow.push(stream);
    }

    let asked = Instant::now();
    let health = app.client.get(app.url("/healthz")).timeout(Duration::from_secs(30)).send().await;
    let waited = asked.elapsed();
    let health = health.unwrap_or_else(|e| panic!("/healthz failed after {waited:?}: {e}"));
    assert_eq!(health.status(), 200);
    // The slow clients hold the cap for at most three header timeouts; the bound is generous.
    assert!(waited < Duration::from_secs(10), "/healthz answered after {waited:?}");

    // The server closed every slow connection (a header-stalled one may get a 408 first).
    let closing = Instant::now();
    for (i, mut stream) in slow.into_iter().enumerate() {
        let mut answer = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
        assert!(read.is_ok(), "slow connection {i} still open {:?} after /healthz answered", closing.elapsed());
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 408"), "connection {i} got {answer:?}");
    }
    app.stop().await;
}

on_both_backends!(slow_clients_are_closed_and_healthz_still_answers);
