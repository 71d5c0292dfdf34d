//! Live segments under ingest (their bar: with 1,000,000 contacts and 20 segments, an event's
//! commit to its contact's membership being current p99 under 50 ms, and ingest throughput
//! with the 20 segments at least 80% of ingest without them, in the same run).
//!
//! Setup: a fresh SQLite store under `target/bench-segments/` (or the PostgreSQL database of
//! `HERALD_TEST_POSTGRES_URL` with `HERALD_BENCH_BACKEND=postgres`), the server in this process
//! with the system clock and its workers, as `herald serve` runs them; K contacts
//! (`HERALD_BENCH_CONTACTS`, default 1,000,000) written straight into the store; a generic
//! source.
//!
//! Measured, in this order:
//! 1. ingest without segments: `HERALD_BENCH_CONNECTIONS` (default 64) keep-alive connections
//!    posting events back to back for `HERALD_BENCH_SECONDS` (default 10, after 2 s of
//!    warm-up), each event for a contact not used before; then the time the workers take to
//!    evaluate what was accepted.
//! 2. the 20 segments are saved and built over the K contacts in the background (the time
//!    this takes is reported);
//! 3. ingest with the 20 segments, as in 1, on other contacts, and the catch-up;
//! 4. latency: events at `HERALD_BENCH_RATE` per second (default 200) for the same seconds,
//!    each making its contact enter a segment; for each, the membership's `since` minus the
//!    event's `received_at` (taken when the request was read, before the commit, so the figure
//!    errs long).
//!
//! Run: `cargo bench -p herald-server --bench segments`.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{bench_store, contacts, env_list, percentile};
use herald_domain::PageRequest;
use herald_domain::{ContactId, SegmentId, SourceKind, SourceToken, Timestamp, WorkspaceId};
use herald_server::app::App;
use herald_server::app::config::WorkerSettings;
use herald_server::clock::{SharedClock, SystemClock};
use herald_server::delivery::email::EmailSettings;
use herald_store::segment::{SegmentDraft, SegmentStatus};
use herald_store::{ContactFilter, EventFilter, NewSource, SharedStore};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const TARGET_RATIO: f64 = 0.8;
const TARGET_P99_MS: f64 = 50.0;
const WARMUP: Duration = Duration::from_secs(2);

fn now() -> Timestamp {
    Timestamp::from_offset_date_time(time::OffsetDateTime::now_utc())
}

/// Twenty segments of the kinds a team keeps: attributes, behaviour over windows, engagement,
/// exclusions and segments of segments. The first is the one the latency events enter.
fn definitions() -> Vec<(&'static str, Value)> {
    vec![
        ("Viewed pricing this week", json!({"performed": "viewed_pricing", "within": "7d"})),
        ("Pro plan", json!({"field": "plan", "op": "eq", "value": "pro"})),
        ("Free plan", json!({"field": "plan", "op": "eq", "value": "free"})),
        ("Europe", json!({"field": "country", "op": "in", "value": ["DE", "FR", "NL", "ES", "IT"]})),
        ("Has a company", json!({"field": "company", "op": "exists"})),
        ("Big seats", json!({"field": "seats", "op": "gte", "value": 50})),
        ("Active this week", json!({"performed": "page_viewed", "within": "7d"})),
        ("Active this month", json!({"performed": "page_viewed", "times": {"at_least": 3}, "within": "30d"})),
        ("Buyers", json!({"performed": "order_placed"})),
        ("Big buyers", json!({"performed": "order_placed", "where": {"field": "total", "op": "gte", "value": 100}})),
        ("Repeat buyers", json!({"performed": "order_placed", "times": {"at_least": 2}})),
        ("Lapsed", json!({"all": [{"performed": "page_viewed"}, {"not_performed": "page_viewed", "within": "14d"}]})),
        ("Signed up", json!({"performed": "signed_up"})),
        ("Opened mail", json!({"email": "opened", "within": "30d"})),
        ("Clicked mail", json!({"email": "clicked"})),
        (
            "Trial",
            json!({"all": [{"field": "plan", "op": "eq", "value": "trial"}, {"performed": "signed_up", "within": "14d"}]}),
        ),
        (
            "Churn risk",
            json!({"any": [{"field": "plan", "op": "eq", "value": "pro"}, {"field": "seats", "op": "gte", "value": 10}]}),
        ),
        ("Enterprise", json!({"field": "plan", "op": "in", "value": ["enterprise", "business"]})),
        ("Support heavy", json!({"performed": "ticket_opened", "times": {"at_least": 3}, "within": "30d"})),
        ("Not pro", json!({"not": {"field": "plan", "op": "eq", "value": "pro"}})),
    ]
}

/// What one load measured.
struct Load {
    name: &'static str,
    per_second: f64,
    p50: f64,
    p99: f64,
    errors: usize,
}

/// The event posted for the `n`th contact not used before.
fn event(n: usize, name: &str) -> Value {
    json!({"email": format!("c{n}@bench.test"), "event": name,
           "data": {"plan": if n.is_multiple_of(3) { "pro" } else { "free" }, "country": "DE", "seats": n % 60}})
}

/// `connections` connections posting events for fresh contacts (numbered from `next`), back
/// to back, for `seconds`.
async fn ingest(name: &'static str, url: &str, next: Arc<AtomicUsize>, connections: usize, seconds: u64) -> Load {
    let client = reqwest::Client::builder().pool_max_idle_per_host(connections).build().expect("client");
    let start = Instant::now() + WARMUP;
    let end = start + Duration::from_secs(seconds);
    let tasks: Vec<_> = (0..connections)
        .map(|_| {
            let (client, url, next) = (client.clone(), url.to_owned(), next.clone());
            tokio::spawn(async move {
                let (mut millis, mut errors) = (Vec::new(), 0);
                while Instant::now() < end {
                    let body = event(next.fetch_add(1, Ordering::Relaxed), "page_viewed");
                    let started = Instant::now();
                    let ok = match client.post(&url).json(&body).send().await {
                        Ok(response) => response.status().is_success() && response.bytes().await.is_ok(),
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
    let load = Load {
        name,
        per_second: millis.len() as f64 / seconds as f64,
        p50: percentile(&millis, 0.5),
        p99: percentile(&millis, 0.99),
        errors,
    };
    eprintln!("  {name}: {:.0}/s, p50 {:.2} ms, p99 {:.2} ms, {} errors", load.per_second, load.p50, load.p99, errors);
    load
}

/// How long the workers take until no job is due or running.
async fn catch_up(store: &SharedStore) -> Duration {
    let started = Instant::now();
    loop {
        let stats = store.queue_stats(now()).await.expect("queue");
        if stats.due + stats.running == 0 {
            return started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Saves the segments and waits until every one is built; their ids.
async fn build(store: &SharedStore, workspace: WorkspaceId) -> Vec<SegmentId> {
    let mut ids = Vec::new();
    for (name, definition) in definitions() {
        let draft = SegmentDraft { name: name.to_owned(), definition, references: Vec::new() };
        ids.push(store.create_segment(workspace, &draft, now()).await.expect("segment").id);
    }
    loop {
        let segments = store.list_segments(workspace).await.expect("segments");
        let building = segments.iter().filter(|s| s.status == SegmentStatus::Building).count();
        if building == 0 {
            return ids;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Events at `rate` per second for `seconds`, each for a fresh contact and entering
/// `segment`; for each, how long from its receipt until the contact was a member (ms).
async fn latency(
    store: &SharedStore,
    workspace: WorkspaceId,
    url: &str,
    segment: SegmentId,
    next: Arc<AtomicUsize>,
    rate: usize,
    seconds: u64,
) -> Vec<f64> {
    let client = reqwest::Client::new();
    let gap = Duration::from_secs_f64(1.0 / rate as f64);
    let mut sent = Vec::new();
    let mut due = Instant::now();
    for _ in 0..rate * seconds as usize {
        tokio::time::sleep_until(due.into()).await;
        due += gap;
        let n = next.fetch_add(1, Ordering::Relaxed);
        let (client, url) = (client.clone(), url.to_owned());
        sent.push((n, tokio::spawn(async move { client.post(&url).json(&event(n, "viewed_pricing")).send().await })));
    }
    let mut contacts = Vec::new();
    for (n, task) in sent {
        let response = task.await.expect("task").expect("post");
        assert!(response.status().is_success(), "{}", response.status());
        contacts.push(n);
    }
    catch_up(store).await;
    let mut millis = Vec::new();
    for n in contacts {
        let id = contact(store, workspace, n).await;
        let filter = EventFilter { contact: Some(id), ..EventFilter::default() };
        let events = store.list_events(workspace, &filter, PageRequest::first(10)).await.expect("events");
        let received =
            events.items.iter().find(|e| e.name.as_deref() == Some("viewed_pricing")).expect("the event").received_at;
        let memberships = store.contact_memberships(workspace, id).await.expect("memberships");
        let since = memberships.iter().find(|m| m.segment_id == segment && m.member).and_then(|m| m.since);
        let since = since.expect("the contact entered the segment");
        millis.push((since.unix_millis() - received.unix_millis()) as f64);
    }
    millis.sort_by(f64::total_cmp);
    millis
}

async fn contact(store: &SharedStore, workspace: WorkspaceId, n: usize) -> ContactId {
    let email = herald_domain::EmailAddress::parse(&format!("c{n}@bench.test")).expect("email");
    let filter = ContactFilter { email: Some(email), ..ContactFilter::default() };
    let page = store.list_contacts(workspace, &filter, PageRequest::first(1)).await.expect("lookup");
    page.items.first().expect("the contact").id
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(run());
}

async fn run() {
    let count = env_list("HERALD_BENCH_CONTACTS", "1000000")[0];
    let seconds = env_list("HERALD_BENCH_SECONDS", "10")[0] as u64;
    let connections = env_list("HERALD_BENCH_CONNECTIONS", "64")[0];
    let rate = env_list("HERALD_BENCH_RATE", "200")[0];
    let (store, _dir) = bench_store("bench-segments").await;
    let clock: SharedClock = Arc::new(SystemClock);
    herald_server::app::bootstrap(&store, &clock, None).await.expect("bootstrap");
    let workspace = store.ensure_default_workspace(now()).await.expect("workspace").id;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    let app = App::new(store.clone(), clock, &base, WorkerSettings::default(), 256 * 1024, EmailSettings::default())
        .expect("app");
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(app.serve(listener, true, Duration::from_secs(5), shutdown.clone()));

    let started = Instant::now();
    contacts(&store, workspace, count, now()).await;
    eprintln!("{count} contacts written in {:.0} s", started.elapsed().as_secs_f64());
    let token = SourceToken::generate(rand::random());
    let source =
        NewSource { name: "app".into(), kind: SourceKind::Generic, token_hash: token.hash(), token_hint: token.hint() };
    store.create_source(workspace, source, now()).await.expect("source");
    let url = format!("{base}/webhooks/inbound/{}", token.expose());
    // Events name contacts after the imported ones: each is a contact's first event.
    let next = Arc::new(AtomicUsize::new(count));

    eprintln!("{connections} connections, {seconds} s each after {WARMUP:?} of warm-up");
    let without = ingest("ingest, no segments", &url, next.clone(), connections, seconds).await;
    let lag_without = catch_up(&store).await;
    let started = Instant::now();
    let segments = build(&store, workspace).await;
    let built = started.elapsed();
    eprintln!("  20 segments built over {count} contacts in {:.1} s", built.as_secs_f64());
    let with = ingest("ingest, 20 segments", &url, next.clone(), connections, seconds).await;
    let lag_with = catch_up(&store).await;
    let millis = latency(&store, workspace, &url, segments[0], next, rate, seconds).await;

    println!("\n| scenario | events/s | p50 ms | p99 ms | errors | evaluated within |\n|---|---:|---:|---:|---:|---:|");
    for (load, lag) in [(&without, lag_without), (&with, lag_with)] {
        println!(
            "| {} | {:.0} | {:.2} | {:.2} | {} | {:.1} s after the load |",
            load.name,
            load.per_second,
            load.p50,
            load.p99,
            load.errors,
            lag.as_secs_f64()
        );
    }
    let (p50, p99) = (percentile(&millis, 0.5), percentile(&millis, 0.99));
    let ratio = with.per_second / without.per_second.max(1.0);
    println!(
        "\nBuilding 20 segments over {count} contacts took {:.1} s ({:.0} contact decisions/s).",
        built.as_secs_f64(),
        20.0 * count as f64 / built.as_secs_f64()
    );
    println!(
        "\nIngest with 20 segments: {:.0}% of ingest without (target ≥ {:.0}%): {}",
        ratio * 100.0,
        TARGET_RATIO * 100.0,
        if ratio >= TARGET_RATIO { "met" } else { "NOT met" }
    );
    println!(
        "\nEvent received → membership current, {} events at {rate}/s: p50 {p50:.1} ms, p99 {p99:.1} ms, max {:.1} ms \
         (target p99 < {TARGET_P99_MS} ms): {}",
        millis.len(),
        millis.last().copied().unwrap_or(f64::NAN),
        if p99 < TARGET_P99_MS { "met" } else { "NOT met" }
    );
    shutdown.cancel();
    server.await.expect("server task").expect("server");
    store.close().await;
}
