//! The open and click endpoints under a campaign's burst (their bar: at 64 connections, at
//! least 50% of the no-op handler's throughput in the same run, p99 under 10 ms), each request
//! committing its hit before it is answered. The hits' activities (and the contact events
//! and webhooks they cause) are written by `record_hits` jobs, whose workers run throughout as
//! they do in production; after the load, the bench reports how long they took to catch up.
//!
//! Setup (not measured): a fresh SQLite store under `target/bench-tracking/` (or the
//! PostgreSQL database of `HERALD_TEST_POSTGRES_URL` with `HERALD_BENCH_BACKEND=postgres`);
//! N contacts (`HERALD_BENCH_MESSAGES`, default 1000), each with a sent message of one
//! campaign; an open URL and a click URL per message, signed as a relay-bound message's links
//! are.
//!
//! Measured, in this order: a no-op axum handler (in this process, like Herald); opens
//! (`GET /t/o/{token}`, a person's User-Agent); clicks (`GET /t/c/{token}`, answered 302); the
//! no-op again, to show whether the machine's load moved. Each for `HERALD_BENCH_SECONDS`
//! (default 10) after a 2 s warm-up, over `HERALD_BENCH_CONNECTIONS` (default 64) keep-alive
//! connections sending back to back, each request a message drawn in turn. Latency is from
//! the request's start to its body's last byte; anything but a 2xx or 3xx counts as an error.
//!
//! Run: `cargo bench -p herald-server --bench tracking`.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{bench_store, contacts, enrol, env_list, percentile, sent_messages};
use herald_domain::{ActivityKind, MessageId, Timestamp, WorkspaceId};
use herald_server::app::App;
use herald_server::app::config::WorkerSettings;
use herald_server::clock::{SharedClock, SystemClock};
use herald_server::delivery::email::EmailSettings;
use herald_server::delivery::email::tracking::token;
use herald_store::SharedStore;
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// The bar: throughput as a share of the no-op's, and the p99.
const TARGET_RATIO: f64 = 0.5;
const TARGET_P99_MS: f64 = 10.0;
const WARMUP: Duration = Duration::from_secs(2);
/// What a mail client says it is.
const PERSON: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)";

fn now() -> Timestamp {
    Timestamp::from_offset_date_time(time::OffsetDateTime::now_utc())
}

/// What one scenario measured.
struct Load {
    name: &'static str,
    per_second: f64,
    p50: f64,
    p99: f64,
    errors: usize,
}

/// `connections` connections requesting `urls` in turn, back to back, for `seconds`.
async fn measure(name: &'static str, urls: Arc<Vec<String>>, connections: usize, seconds: u64) -> Load {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(connections)
        .build()
        .expect("client");
    let start = Instant::now() + WARMUP;
    let end = start + Duration::from_secs(seconds);
    let tasks: Vec<_> = (0..connections)
        .map(|conn| {
            let (client, urls) = (client.clone(), urls.clone());
            tokio::spawn(async move {
                let (mut millis, mut errors) = (Vec::new(), 0);
                let mut next = conn;
                while Instant::now() < end {
                    let url = &urls[next % urls.len()];
                    next += connections;
                    let started = Instant::now();
                    let answer = client.get(url).header(reqwest::header::USER_AGENT, PERSON).send().await;
                    let ok = match answer {
                        Ok(response) => {
                            let fine = response.status().is_success() || response.status().is_redirection();
                            response.bytes().await.is_ok() && fine
                        }
                        Err(_) => false,
                    };
                    if started >= start {
                        if ok {
                            millis.push(started.elapsed().as_secs_f64() * 1000.0);
                        } else {
                            errors += 1;
                        }
                    }
                }
                (millis, errors)
            })
        })
        .collect();
    let (mut millis, mut errors) = (Vec::new(), 0);
    for task in tasks {
        let (m, e) = task.await.expect("connection task");
        millis.extend(m);
        errors += e;
    }
    millis.sort_by(f64::total_cmp);
    let per_second = millis.len() as f64 / seconds as f64;
    let load = Load { name, per_second, p50: percentile(&millis, 0.5), p99: percentile(&millis, 0.99), errors };
    eprintln!("  {name}: {:.0}/s, p50 {:.2} ms, p99 {:.2} ms, {} errors", load.per_second, load.p50, load.p99, errors);
    load
}

/// How many jobs (of `record_hits` and what they cause) were queued when the load stopped, and how long the workers took
/// to record them all (no `record_hits` job left and the first message's activities readable).
async fn catch_up(store: &SharedStore, workspace: WorkspaceId, first: MessageId) -> (f64, Duration) {
    let started = Instant::now();
    let pending = store.queue_stats(now()).await.expect("queue");
    let behind = (pending.due + pending.running) as f64;
    loop {
        let stats = store.queue_stats(now()).await.expect("queue");
        if stats.due + stats.running == 0 {
            let recorded = store.message_activities(workspace, first, 10).await.expect("activities");
            assert!(recorded.iter().any(|a| a.activity.kind == ActivityKind::Opened), "the opens were recorded");
            return (behind, started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A server that answers every request 200 with nothing else done.
async fn noop_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    let app = axum::Router::new().fallback(|| async { "ok" });
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(run());
}

async fn run() {
    let count = env_list("HERALD_BENCH_MESSAGES", "1000")[0];
    let seconds = env_list("HERALD_BENCH_SECONDS", "10")[0] as u64;
    let connections = env_list("HERALD_BENCH_CONNECTIONS", "64")[0];
    let (store, _dir) = bench_store("bench-tracking").await;
    let clock: SharedClock = Arc::new(SystemClock);
    herald_server::app::bootstrap(&store, &clock, None).await.expect("bootstrap");
    let workspace = store.ensure_default_workspace(now()).await.expect("workspace").id;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    let app = App::new(store.clone(), clock, &base, WorkerSettings::default(), 256 * 1024, EmailSettings::default())
        .expect("app");
    let email = app.state.email.email.clone();
    let shutdown = CancellationToken::new();
    // Workers run as in production: they record the hits while the endpoints take more.
    // `HERALD_BENCH_WORKERS=0` leaves them off, to tell the endpoints' cost from theirs.
    let workers = env_list("HERALD_BENCH_WORKERS", "1")[0] > 0;
    let server = tokio::spawn(app.serve(listener, workers, Duration::from_secs(5), shutdown.clone()));

    let ids = contacts(&store, workspace, count, now()).await;
    let document = json!({"name": "Burst", "trigger": {"type": "manual"},
        "steps": [{"id": "hello", "type": "email", "from": "Acme <a@acme.test>", "subject": "Hi", "html": "<p>Hi</p>"}]});
    let campaign = store.create_campaign(workspace, "Burst", &document, now()).await.expect("campaign");
    let far = now() + Duration::from_secs(365 * 86_400);
    let journeys = enrol(&store, workspace, campaign.id, &ids, |_| far, now()).await;
    let journeys: Vec<_> = journeys.into_iter().zip(ids.iter().copied()).collect();
    let messages = sent_messages(&store, workspace, campaign.id, &journeys, now()).await;
    let secret = email.secret(workspace).await.expect("secret");
    let opens: Vec<String> =
        messages.iter().map(|m| format!("{base}/t/o/{}", token::open(&secret, workspace, *m))).collect();
    let clicks: Vec<String> = messages
        .iter()
        .map(|m| format!("{base}/t/c/{}", token::click(&secret, workspace, *m, "https://acme.test/pricing?from=mail")))
        .collect();
    let noop = Arc::new(vec![format!("{}/t/o/noop", noop_server().await)]);

    eprintln!("{count} messages; {connections} connections, {seconds} s each after {WARMUP:?} of warm-up");
    let before = measure("no-op handler", noop.clone(), connections, seconds).await;
    let opened = measure("opens: GET /t/o/{token}", Arc::new(opens), connections, seconds).await;
    let clicked = measure("clicks: GET /t/c/{token}", Arc::new(clicks), connections, seconds).await;
    let hits = (opened.per_second + clicked.per_second) * seconds as f64;
    let recorded = if workers { Some(catch_up(&store, workspace, messages[0]).await) } else { None };
    let after = measure("no-op handler, again", noop, connections, seconds).await;
    let loads = [before, opened, clicked, after];
    let baseline = (loads[0].per_second + loads[3].per_second) / 2.0;
    let drift = (loads[3].per_second - loads[0].per_second).abs() / loads[0].per_second.max(1.0);
    println!("\n| scenario | requests/s | p50 ms | p99 ms | errors | of the no-op |\n|---|---:|---:|---:|---:|---:|");
    for load in &loads {
        println!(
            "| {} | {:.0} | {:.2} | {:.2} | {} | {:.0}% |",
            load.name,
            load.per_second,
            load.p50,
            load.p99,
            load.errors,
            100.0 * load.per_second / baseline
        );
    }
    if drift > 0.15 {
        println!("\nThe no-op's throughput moved by {:.0}% during the run: the machine's load changed.", drift * 100.0);
    }
    for load in &loads[1..3] {
        let ratio = load.per_second / baseline;
        let met = ratio >= TARGET_RATIO && load.p99 < TARGET_P99_MS && load.errors == 0;
        println!(
            "\n{}: {:.0}% of the no-op (target ≥ {:.0}%), p99 {:.2} ms (target < {TARGET_P99_MS} ms): {}",
            load.name,
            ratio * 100.0,
            TARGET_RATIO * 100.0,
            load.p99,
            if met { "met" } else { "NOT met" }
        );
    }
    match recorded {
        Some((behind, lag)) => println!(
            "\nRecording: {:.0} jobs were still queued when the load stopped; the workers caught up {:.1} s later \
             (about {:.0} activities recorded per second from the first open to the last record).",
            behind,
            lag.as_secs_f64(),
            hits / (2.0 * (seconds as f64 + WARMUP.as_secs_f64()) + lag.as_secs_f64()),
        ),
        None => println!("\nWorkers off (HERALD_BENCH_WORKERS=0): the {hits:.0} hits stay stored, unrecorded."),
    }
    shutdown.cancel();
    server.await.expect("server task").expect("server");
    store.close().await;
}
