//! Fast recovery after an outage, on both backends, against a real
//! receiver on loopback: a stream of 100 calls a second to one endpoint that answers 503 for
//! 30 seconds and then comes back. Its backlog must arrive within 10 seconds of the recovery,
//! each call exactly once, instead of each call waiting out its own backoff (30 s to minutes
//! by then).
//!
//! How it measures. The 40 seconds pass on the manual clock, in ticks of 100 ms: each tick
//! posts 10 events (one batch request) and runs every job due (`run_until_idle`), then the
//! clock moves on. Work never moves the clock, so every request the receiver gets during a
//! tick arrived at that tick's virtual time, and a retry only runs early if something made it
//! due early. Without fast recovery, calls whose second attempt failed during the outage are
//! next due 24–36 s later (the schedule's 30 s with ±20% jitter), well past the 10 s window,
//! so the virtual-time check fails; with it, the first success after the outage releases the
//! waiting retries, whose successes release the next ones. Virtual time cannot say how fast
//! that drain is in real time (a tick's jobs all run "at once"), so the real time from the
//! recovery to the last backlog call's arrival is bounded too, generously (a debug build on a
//! shared 2-core machine), and printed; the deliveries per second Herald sustains are the
//! webhook benchmark's business (BENCHMARKS.md, "Outbound webhooks").

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use common::{Backend, TestApp, json, spawn_app_with};
use herald_server::clock::Clock;
use herald_server::delivery::email::EmailSettings;
use reqwest::StatusCode;
use serde_json::{Value, json};

on_both_backends!(a_thirty_second_outage_is_delivered_within_ten_seconds_of_recovery);

const TICK: Duration = Duration::from_millis(100);
/// 100 calls a second.
const CALLS_PER_TICK: usize = 10;
const OUTAGE: Duration = Duration::from_secs(30);
const WINDOW: Duration = Duration::from_secs(10);
/// The real-time bound on the drain: generous, for a debug build on a loaded machine.
const REAL_DRAIN_LIMIT: Duration = Duration::from_secs(120);

/// An endpoint that answers 503 while `down`, else 200, and notes each request's idempotency
/// key with its answer.
#[derive(Clone, Default)]
struct Endpoint {
    down: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<(String, u16)>>>,
}

async fn answer(State(endpoint): State<Endpoint>, headers: HeaderMap) -> AxumStatus {
    let key = headers.get("idempotency-key").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let status = if endpoint.down.load(Ordering::SeqCst) { AxumStatus::SERVICE_UNAVAILABLE } else { AxumStatus::OK };
    endpoint.seen.lock().unwrap().push((key, status.as_u16()));
    status
}

async fn endpoint() -> (Endpoint, String) {
    let endpoint = Endpoint::default();
    let app = Router::new().route("/hook", axum::routing::post(answer)).with_state(endpoint.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (endpoint, url)
}

/// A campaign calling `url` for every `go` event, and the source to post the events to.
async fn campaign(app: &TestApp, url: &str) -> String {
    let document = json!({"name": "Sync", "trigger": {"type": "event", "event": "go"}, "entry": "every_time",
                          "steps": [{"id": "sync", "type": "webhook", "url": url, "timeout": "1s",
                                     "body": "{\"email\": {{ email | json }}}"}]});
    let (status, body) = json(app.post("/api/v1/campaigns", &document).await).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    let (status, body) = json(app.post(&format!("/api/v1/campaigns/{id}/activate"), &json!({})).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = json(app.post("/api/v1/sources", &json!({"name": "app", "kind": "generic"})).await).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    format!("{}/batch", body["url"].as_str().unwrap())
}

/// One tick of the stream: this tick's calls posted, every job due run, the clock moved on.
/// Returns the requests the endpoint got during the tick.
async fn tick(app: &TestApp, batch: &str, endpoint: &Endpoint, tick: usize) -> Vec<(String, u16)> {
    let before = endpoint.seen.lock().unwrap().len();
    let events: Vec<Value> =
        (0..CALLS_PER_TICK).map(|n| json!({"email": format!("t{tick}-{n}@example.com"), "event": "go"})).collect();
    let response = app.client.post(batch).json(&events).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{}", response.text().await.unwrap());
    app.run_jobs().await;
    app.clock.advance(TICK);
    endpoint.seen.lock().unwrap()[before..].to_vec()
}

async fn a_thirty_second_outage_is_delivered_within_ten_seconds_of_recovery(backend: Backend) {
    let app = spawn_app_with(backend, EmailSettings::default()).await;
    let (endpoint, url) = endpoint().await;
    let batch = campaign(&app, &url).await;
    let ticks = |d: Duration| (d.as_millis() / TICK.as_millis()) as usize;

    endpoint.down.store(true, Ordering::SeqCst);
    let mut backlog = HashSet::new();
    for n in 0..ticks(OUTAGE) {
        for (key, status) in tick(&app, &batch, &endpoint, n).await {
            assert_eq!(status, 503);
            backlog.insert(key);
        }
    }
    let calls = ticks(OUTAGE) * CALLS_PER_TICK;
    assert_eq!(backlog.len(), calls, "every call of the outage was tried and refused");

    endpoint.down.store(false, Ordering::SeqCst);
    let recovered = app.clock.now();
    let real = Instant::now();
    // When each call was answered 200, in virtual time after the recovery (and real time).
    let mut delivered: HashMap<String, Vec<(Duration, Duration)>> = HashMap::new();
    for n in ticks(OUTAGE)..ticks(OUTAGE + WINDOW) {
        let at = app.clock.now().saturating_duration_since(recovered);
        for (key, status) in tick(&app, &batch, &endpoint, n).await {
            assert_eq!(status, 200, "the endpoint is up");
            delivered.entry(key).or_default().push((at, real.elapsed()));
        }
    }

    let late: Vec<&String> = backlog.iter().filter(|k| !delivered.contains_key(*k)).collect();
    assert!(late.is_empty(), "{} of {calls} backlog calls not delivered within {WINDOW:?}", late.len());
    let twice: Vec<(&String, usize)> =
        delivered.iter().filter(|(_, times)| times.len() > 1).map(|(k, times)| (k, times.len())).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    assert_eq!(delivered.len(), calls + ticks(WINDOW) * CALLS_PER_TICK, "the backlog and the new calls, once each");
    let last = backlog.iter().map(|k| delivered[k][0]).max().unwrap();
    assert!(last.0 <= WINDOW, "the last backlog call arrived {:?} after the recovery (virtual)", last.0);
    assert!(last.1 <= REAL_DRAIN_LIMIT, "the backlog took {:?} of real time to arrive", last.1);
    eprintln!(
        "{backend:?}: {calls} backlog calls delivered {:?} (virtual) and {:.2} s (real) after the recovery",
        last.0,
        last.1.as_secs_f64()
    );
    app.stop().await;
}
