//! Campaign benchmarks (performance targets live here, never in timed tests):
//!
//! - `runner`: journey steps per second when 50,000 journeys fall due at once, with 1,000 and
//!   with 1,000,000 other journeys waiting (target ≥ 5,000 steps/s on SQLite, and a due-time
//!   lookup whose cost does not grow with the number waiting: the two figures should match).
//!
//! - `latency`: from the inbound POST to the message's `sent` in the outbox, for a campaign
//!   whose only step is an email, at 500 events/s for 60 s (target p99 < 250 ms, no backlog:
//!   the last seconds no slower than the first), next to the POST's own latency (the
//!   durable ingest answer) measured in the same run.
//!
//! Run: `cargo bench -p herald-server --bench campaigns` (env `HERALD_BENCH_WAITING`, comma
//! separated, default `1000,1000000`; `HERALD_BENCH_DUE`, default 50000;
//! `HERALD_BENCH_RATE`, default 500 events/s; `HERALD_BENCH_SECONDS`, default 60;
//! `HERALD_BENCH_ONLY=runner|latency`; `HERALD_BENCH_CONCURRENCY`, the worker's job slots). SQLite files go under `target/bench-campaigns/` (not
//! /tmp, which may be a tmpfs where fsync is free). The server runs in this process on a
//! loopback port, with the system clock and its worker, as `herald serve` runs them.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{contacts, enrol, env_list, percentile};
use herald_domain::{CampaignState, Timestamp};
use herald_server::app::App;
use herald_server::app::config::WorkerSettings;
use herald_server::clock::{SharedClock, SystemClock};
use herald_server::delivery::email::EmailSettings;
use herald_store::SharedStore;
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// Steps per second for `due` journeys falling due at once with `waiting` others waiting.
/// A fresh SQLite store in a temporary directory under `target/`.
async fn fresh_store() -> (SharedStore, tempfile::TempDir) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-campaigns");
    std::fs::create_dir_all(&dir).expect("bench dir");
    let dir = tempfile::tempdir_in(dir).expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("herald.db").display());
    let store: SharedStore = Arc::new(herald_store_sqlite::SqliteStore::connect(&url).await.expect("open"));
    store.migrate().await.expect("migrate");
    (store, dir)
}

async fn runner(waiting: usize, due: usize) -> f64 {
    let (store, _dir) = fresh_store().await;
    let start = Timestamp::from_offset_date_time(time::OffsetDateTime::now_utc());
    let workspace = store.ensure_default_workspace(start).await.expect("workspace").id;
    let document = json!({
        "name": "Bench",
        "trigger": {"type": "manual"},
        "steps": [{"id": "hello", "type": "email", "from": "Acme <a@acme.test>",
                   "subject": "Hello {{ email }}", "html": "<p>Hi {{ first_name | default: \"there\" }}</p>"}]
    });
    let campaign = store.create_campaign(workspace, "Bench", &document, start).await.expect("campaign");
    store
        .set_campaign_state(workspace, campaign.id, &[CampaignState::Draft], CampaignState::Active, start)
        .await
        .expect("activate");
    let setup = Instant::now();
    let people = contacts(&store, workspace, waiting + due, start).await;
    let (waiting_people, due_people) = people.split_at(waiting);
    let far = start + Duration::from_secs(365 * 86_400);
    enrol(&store, workspace, campaign.id, waiting_people, |_| far, start).await;
    enrol(&store, workspace, campaign.id, due_people, |_| start, start).await;
    eprintln!("  setup ({waiting} waiting + {due} due): {:.1} s", setup.elapsed().as_secs_f64());

    let clock: SharedClock = Arc::new(SystemClock);
    let concurrency = env_list("HERALD_BENCH_CONCURRENCY", &WorkerSettings::default().concurrency.to_string())[0];
    let settings =
        WorkerSettings { concurrency: u32::try_from(concurrency).expect("concurrency"), ..WorkerSettings::default() };
    let app =
        App::new(store.clone(), clock.clone(), "http://127.0.0.1:1", settings, 256 * 1024, EmailSettings::default())
            .expect("app");
    // The worker loop as `herald serve` runs it; done when the next due job is a waiting one.
    let started = Instant::now();
    let shutdown = CancellationToken::new();
    let worker = tokio::spawn(app.worker.clone().run(shutdown.clone()));
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let next = store.next_job_due().await.expect("next due");
        if next.is_none_or(|due| due > clock.now() + Duration::from_secs(86_400)) {
            break;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    shutdown.cancel();
    worker.await.expect("worker");
    let stats = store.campaign_stats(workspace, campaign.id).await.expect("stats");
    assert_eq!(stats.steps["hello"]["sent"], due as u64, "every due journey ran once");
    store.close().await;
    due as f64 / elapsed
}

const TOKEN: &str = "hk_benchmark-token-0123456789abcdefghijklmnopqrstuvwxyz";

fn wall_millis() -> i64 {
    Timestamp::from_offset_date_time(time::OffsetDateTime::now_utc()).unix_millis()
}

/// Inbound POST → message sent, at `rate` events/s for `seconds`.
async fn latency(rate: u32, seconds: u64) {
    let (store, _dir) = fresh_store().await;
    let clock: SharedClock = Arc::new(SystemClock);
    let token = herald_domain::ApiToken::parse_supplied(TOKEN).expect("token");
    herald_server::app::bootstrap(&store, &clock, Some(&token)).await.expect("bootstrap");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    let app = App::new(store.clone(), clock, &base, WorkerSettings::default(), 256 * 1024, EmailSettings::default())
        .expect("app");
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(app.serve(listener, true, Duration::from_secs(5), shutdown.clone()));
    let client = reqwest::Client::new();
    let api = |path: &str| client.post(format!("{base}/api/v1{path}")).bearer_auth(TOKEN);
    let source: serde_json::Value = api("/sources")
        .json(&json!({"name": "bench", "kind": "generic"}))
        .send()
        .await
        .expect("source")
        .json()
        .await
        .expect("json");
    let url = source["url"].as_str().expect("url").to_owned();
    let campaign: serde_json::Value = api("/campaigns")
        .json(&json!({
            "name": "Welcome", "trigger": {"type": "event", "event": "signed_up"}, "entry": "every_time",
            "steps": [{"type": "email", "from": "Acme <hello@acme.test>", "subject": "Welcome {{ first_name }}",
                       "html": "<p>Hi {{ first_name | default: \"there\" }}, plan {{ event.data.plan }}</p>"}]
        }))
        .send()
        .await
        .expect("campaign")
        .json()
        .await
        .expect("json");
    let id = campaign["id"].as_str().expect("campaign id");
    assert!(api(&format!("/campaigns/{id}/activate")).send().await.expect("activate").status().is_success());

    // Open loop: one request every 1/rate s, whatever the answers do.
    let total = rate as usize * seconds as usize;
    let interval = Duration::from_secs(1) / rate;
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut requests = tokio::task::JoinSet::new();
    let began = wall_millis();
    for n in 0..total {
        ticker.tick().await;
        let (client, url) = (client.clone(), url.clone());
        requests.spawn(async move {
            let sent = wall_millis();
            let started = Instant::now();
            let body = json!({"email": format!("u{n}@bench.test"), "event": "signed_up",
                              "data": {"first_name": "U", "plan": "pro"}});
            let status = client.post(&url).json(&body).send().await.map(|r| r.status());
            (n, sent, started.elapsed().as_secs_f64() * 1000.0, status.is_ok_and(|s| s.is_success()))
        });
    }
    let mut sent_at = vec![0i64; total];
    let mut post_ms = Vec::with_capacity(total);
    let mut failed = 0;
    while let Some(done) = requests.join_next().await {
        let (n, sent, ms, ok) = done.expect("request task");
        sent_at[n] = sent;
        post_ms.push(ms);
        failed += usize::from(!ok);
    }
    // Drain: wait (bounded) for every message, then read them all.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut messages: Vec<(usize, i64)> = Vec::new();
    while messages.len() < total - failed && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        messages.clear();
        let mut cursor: Option<String> = None;
        loop {
            let after = cursor.as_deref().map(|c| format!("&cursor={c}")).unwrap_or_default();
            let page: serde_json::Value = client
                .get(format!("{base}/api/v1/messages?limit=500{after}"))
                .bearer_auth(TOKEN)
                .send()
                .await
                .expect("messages")
                .json()
                .await
                .expect("json");
            for m in page["data"].as_array().expect("data") {
                let n: usize =
                    m["to"].as_str().and_then(|t| t.strip_prefix('u')?.split('@').next()?.parse().ok()).expect("to");
                let at: Timestamp = serde_json::from_value(m["sent_at"].clone()).expect("sent_at");
                messages.push((n, at.unix_millis()));
            }
            cursor = page["next_cursor"].as_str().map(str::to_owned);
            if cursor.is_none() {
                break;
            }
        }
    }
    shutdown.cancel();
    let _ = server.await;
    store.close().await;

    let mut all: Vec<f64> = messages.iter().map(|&(n, at)| (at - sent_at[n]) as f64).collect();
    let window = |from: i64, to: i64| {
        let mut part: Vec<f64> = messages
            .iter()
            .filter(|&&(n, _)| (from..to).contains(&(sent_at[n] - began)))
            .map(|&(n, at)| (at - sent_at[n]) as f64)
            .collect();
        part.sort_by(f64::total_cmp);
        part
    };
    let first = window(0, 10_000);
    let last = window((seconds as i64 - 10) * 1000, seconds as i64 * 1000);
    all.sort_by(f64::total_cmp);
    post_ms.sort_by(f64::total_cmp);
    println!("\n## Inbound event → email sent (SQLite), {rate} events/s for {seconds} s\n");
    println!("| measure | p50 | p99 | max | count |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    println!(
        "| POST answered (durable ingest, baseline) | {:.1} ms | {:.1} ms | {:.1} ms | {} |",
        percentile(&post_ms, 0.5),
        percentile(&post_ms, 0.99),
        post_ms.last().copied().unwrap_or(f64::NAN),
        post_ms.len() - failed
    );
    println!(
        "| POST → message sent | {:.0} ms | {:.0} ms | {:.0} ms | {} |",
        percentile(&all, 0.5),
        percentile(&all, 0.99),
        all.last().copied().unwrap_or(f64::NAN),
        all.len()
    );
    println!(
        "| same, first 10 s / last 10 s (backlog) | {:.0} / {:.0} ms | {:.0} / {:.0} ms | | {} / {} |",
        percentile(&first, 0.5),
        percentile(&last, 0.5),
        percentile(&first, 0.99),
        percentile(&last, 0.99),
        first.len(),
        last.len()
    );
    println!("\nfailed requests: {failed}; messages missing after a 60 s drain: {}", total - failed - all.len());
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` would pass other flags.
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    let only = std::env::var("HERALD_BENCH_ONLY").unwrap_or_default();
    if only != "runner" {
        let rate = env_list("HERALD_BENCH_RATE", "500")[0];
        let seconds = env_list("HERALD_BENCH_SECONDS", "60")[0];
        latency(u32::try_from(rate).expect("rate"), seconds as u64).await;
    }
    if only == "latency" {
        return;
    }
    let due = env_list("HERALD_BENCH_DUE", "50000")[0];
    println!("## Campaign runner (SQLite)\n");
    println!("| journeys waiting | due at once | steps/s |");
    println!("| ---: | ---: | ---: |");
    let mut figures = Vec::new();
    for waiting in env_list("HERALD_BENCH_WAITING", "1000,1000000") {
        let rate = runner(waiting, due).await;
        println!("| {waiting} | {due} | {rate:.0} |");
        figures.push((waiting, rate));
    }
    if let (Some(first), Some(last)) = (figures.first(), figures.last()) {
        println!(
            "\nsteps/s with {} waiting is {:.0}% of that with {} waiting (target ≥ 5,000 steps/s on SQLite)",
            last.0,
            100.0 * last.1 / first.1,
            first.0
        );
    }
}
