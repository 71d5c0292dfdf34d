//! Outbound webhook benchmark (performance targets live here, never in timed tests): 50,000
//! signed webhooks to a local receiver, by the real path end to end: journeys of a campaign
//! whose only step is a webhook, at that step (written into the store as the trigger writes
//! them, with their step jobs), run by the worker loop `herald serve` runs. Each journey's
//! step job renders the call, signs it with the workspace's key and sends it as the step runs;
//! the answer ends the call, the journey completes in memory, and one commit records the
//! delivery with its attempt, the journey's move and the job's end.
//!
//! - `capacity`: the receiver alone, as the ceiling: the same requests (same body size, the
//!   same signature headers, made once) POSTed by plain `reqwest` over 16 connections, the
//!   most Herald keeps in flight to one endpoint (`ENDPOINT_CONCURRENCY`).
//! - `burst`: 50,000 journeys due at once, then the worker started: deliveries per second
//!   from the worker's start to the last request received, and over the middle 80%.
//! - `paced`: 50,000 journeys falling due at `HERALD_BENCH_RATE` a second (default 5,000),
//!   the worker running: latency from each journey's due time to its request's arrival
//!   (target p99 < 250 ms at ≥ 5,000 deliveries/s on SQLite), the first and last 10% apart
//!   (backlog growth).
//!
//! - `sealing`: no I/O, the cost the secrets inside a call add to storing and reading it: a
//!   typical call's secrets (Basic credentials, one secret header) sealed where they stand and
//!   opened again (`SecretKeys::seal_document` / `open_document`, as the backends do for each
//!   job, delivery and draft they write and read), and the walk alone for a call without
//!   secrets (what the calls of the scenarios above pay).
//!
//! Every scenario reports the process's peak RSS (`VmHWM`, reset before the scenario through
//! `/proc/self/clear_refs`): Herald runs in this process (store, worker, HTTP client), the
//! receiver does not. The receiver is this same executable started again as a separate
//! process (`HERALD_BENCH_RECEIVER` set): an axum server on a single-threaded runtime that
//! checks each request's `X-Herald-Signature` (HMAC-SHA256 with the key this process
//! installs) and notes the wall-clock time it arrived under its `webhook-id`. A separate
//! process so that it neither shares Herald's runtime threads (a receiver task waiting behind
//! Herald's tasks would be counted as Herald's latency) nor its RSS; it still shares the two
//! cores, as a receiver on the same machine would.
//!
//! Run: `cargo bench -p herald-server --bench webhooks` (env `HERALD_BENCH_DELIVERIES`,
//! default 50000; `HERALD_BENCH_RATE`, default 5000 a second; `HERALD_BENCH_ONLY=capacity|
//! burst|paced|sealing`; `HERALD_BENCH_CONCURRENCY`, the worker's job slots; `HERALD_BENCH_BACKEND=
//! sqlite|postgres`, comma separated, default `sqlite`; PostgreSQL uses a fresh database on
//! `HERALD_TEST_POSTGRES_URL`). SQLite files go under `target/bench-webhooks/` (not /tmp,
//! which may be a tmpfs where fsync is free).

mod common;

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use common::{contacts, enrol, env_list, percentile};
use herald_domain::{CampaignId, CampaignState, Timestamp, WorkspaceId};
use herald_server::app::App;
use herald_server::app::config::WorkerSettings;
use herald_server::clock::{SharedClock, SystemClock};
use herald_server::delivery::email::EmailSettings;
use herald_store::SharedStore;
use herald_store::webhook::SigningKeyRecord;
use herald_webhook::client::ClientSettings;
use herald_webhook::policy::AddressPolicy;
use herald_webhook::sign::{SigningKey, sign};
use hmac::{Hmac, KeyInit, Mac as _};
use serde_json::json;
use sha2::Sha256;
use tokio_util::sync::CancellationToken;

/// The environment variable that makes this executable the receiver; its value is the
/// signing secret in hex.
const RECEIVER_ENV: &str = "HERALD_BENCH_RECEIVER";
/// Requests in flight in the capacity run: Herald's limit for one endpoint.
const CAPACITY_CONNECTIONS: usize = herald_server::delivery::webhooks::ENDPOINT_CONCURRENCY;
/// The webhook step's id (part of each call's idempotency key).
const STEP: &str = "notify";
/// The step's body template: about 200 bytes once rendered.
const BODY: &str = r#"{"event": "bench", "email": {{ email | json }}, "contact": {{ customer.id | json }}, "plan": "pro", "note": "a benchmark webhook with a body of a typical size"}"#;

fn wall_micros() -> i64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).expect("after 1970").as_micros() as i64
}

fn load_average() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

/// `VmHWM` of this process in MiB.
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(f64::NAN);
    kib / 1024.0
}

/// Resets `VmHWM` to the current RSS, so the next reading is this scenario's peak.
fn reset_peak_rss() {
    if std::fs::write("/proc/self/clear_refs", "5").is_err() {
        eprintln!("  (cannot reset VmHWM: the peak RSS includes earlier scenarios)");
    }
}

fn show_ms(ms: f64) -> String {
    if ms < 10.0 { format!("{ms:.1} ms") } else { format!("{ms:.0} ms") }
}

/// A table row: p50, p90, p99 and max of `values` (ms), sorted here.
fn row(name: &str, mut values: Vec<f64>) -> String {
    values.sort_by(f64::total_cmp);
    let max = values.last().copied().unwrap_or(f64::NAN);
    let [p50, p90, p99] = [0.5, 0.9, 0.99].map(|p| show_ms(percentile(&values, p)));
    format!("| {name} | {p50} | {p90} | {p99} | {} | {} |", show_ms(max), values.len())
}

/// Per second over the middle 80% of `times` (µs).
fn middle_rate(mut times: Vec<i64>) -> f64 {
    times.sort_unstable();
    let last = times.len().saturating_sub(1);
    let (from, to) = (last / 10, last * 9 / 10);
    (to - from) as f64 * 1e6 / (times[to] - times[from]).max(1) as f64
}

// ---------------------------------------------------------------------------------------------
// The receiver process.

/// What the receiver saw: `webhook-id` → arrival times (µs since the epoch), and requests
/// whose signature did not verify.
#[derive(Default)]
struct Seen {
    arrivals: Vec<(String, i64)>,
    bad_signatures: usize,
}

#[derive(Clone)]
struct ReceiverState {
    secret: Arc<Vec<u8>>,
    seen: Arc<Mutex<Seen>>,
}

async fn hook(State(state): State<ReceiverState>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let at = wall_micros();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let id = header("webhook-id").to_owned();
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&state.secret).expect("any key size");
    mac.update(format!("v0:{}:", header("x-herald-timestamp")).as_bytes());
    mac.update(&body);
    let expected: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    let verified = header("x-herald-signature").contains(&expected);
    let mut seen = state.seen.lock().expect("lock");
    if !verified {
        seen.bad_signatures += 1;
    }
    seen.arrivals.push((id, at));
    StatusCode::OK
}

/// `<arrivals> <bad signatures>`.
async fn count(State(state): State<ReceiverState>) -> String {
    let seen = state.seen.lock().expect("lock");
    format!("{} {}", seen.arrivals.len(), seen.bad_signatures)
}

/// Every arrival as `<webhook-id> <µs>` lines, and forgets them.
async fn take(State(state): State<ReceiverState>) -> String {
    let seen = std::mem::take(&mut *state.seen.lock().expect("lock"));
    let mut text = format!("bad {}\n", seen.bad_signatures);
    for (id, at) in seen.arrivals {
        text.push_str(&format!("{id} {at}\n"));
    }
    text
}

/// Serves until killed; prints its base URL first.
fn run_receiver(secret_hex: &str) {
    let secret: Vec<u8> = (0..secret_hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&secret_hex[i..i + 2], 16).expect("hex secret"))
        .collect();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let state = ReceiverState { secret: Arc::new(secret), seen: Arc::default() };
        let app = Router::new()
            .route("/hook", axum::routing::post(hook))
            .route("/count", axum::routing::get(count))
            .route("/take", axum::routing::post(take))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        println!("http://{}", listener.local_addr().expect("address"));
        axum::serve(listener, app).await.expect("serve");
    });
}

/// The receiver process, seen from the benchmark.
struct Receiver {
    child: Child,
    base: String,
    http: reqwest::Client,
}

impl Receiver {
    fn start(secret: &[u8]) -> Self {
        let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
        let mut child = Command::new(std::env::current_exe().expect("own executable"))
            .env(RECEIVER_ENV, hex)
            .stdout(Stdio::piped())
            .spawn()
            .expect("receiver process");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("receiver address");
        Self { child, base: line.trim().to_owned(), http: reqwest::Client::new() }
    }

    /// Requests received so far, and how many did not verify.
    async fn count(&self) -> (usize, usize) {
        let text = self.http.get(format!("{}/count", self.base)).send().await.expect("count").text().await;
        let text = text.expect("count text");
        let (a, b) = text.split_once(' ').expect("two numbers");
        (a.parse().expect("number"), b.parse().expect("number"))
    }

    /// Every arrival since the last call (`webhook-id`, µs), and the bad signatures.
    async fn take(&self) -> (Vec<(String, i64)>, usize) {
        let text = self.http.post(format!("{}/take", self.base)).send().await.expect("take").text().await;
        let text = text.expect("take text");
        let mut lines = text.lines();
        let bad = lines.next().and_then(|l| l.strip_prefix("bad ")).expect("bad line").parse().expect("number");
        let arrivals = lines
            .map(|l| {
                let (id, at) = l.split_once(' ').expect("id and time");
                (id.to_owned(), at.parse().expect("time"))
            })
            .collect();
        (arrivals, bad)
    }

    /// Waits until `n` requests arrived, or nothing arrived for 30 s.
    async fn wait_for(&self, n: usize) {
        let mut last = (0, Instant::now());
        while last.0 < n && last.1.elapsed() < Duration::from_secs(30) {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let (now, _) = self.count().await;
            if now > last.0 {
                last = (now, Instant::now());
            }
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// Herald.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh store with a workspace, its signing key, the campaign and `n` contacts.
struct Setup {
    store: SharedStore,
    workspace: WorkspaceId,
    campaign: CampaignId,
    contacts: Vec<herald_domain::ContactId>,
    _database: Box<dyn std::any::Any + Send>,
}

async fn fresh_store(backend: Backend) -> (SharedStore, Box<dyn std::any::Any + Send>) {
    match backend {
        Backend::Sqlite => {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-webhooks");
            std::fs::create_dir_all(&dir).expect("bench dir");
            let dir = tempfile::tempdir_in(dir).expect("temp dir");
            let url = format!("sqlite://{}", dir.path().join("herald.db").display());
            let store: SharedStore = Arc::new(herald_store_sqlite::SqliteStore::connect(&url).await.expect("open"));
            store.migrate().await.expect("migrate");
            (store, Box::new(dir))
        }
        Backend::Postgres => {
            let (store, database) = herald_store_postgres::test_support::fresh_store().await;
            (store, Box::new(database))
        }
    }
}

fn now() -> Timestamp {
    Timestamp::from_offset_date_time(time::OffsetDateTime::now_utc())
}

async fn setup(backend: Backend, key: &SigningKeyRecord, url: &str, n: usize) -> Setup {
    let (store, database) = fresh_store(backend).await;
    let start = now();
    let workspace = store.ensure_default_workspace(start).await.expect("workspace").id;
    store.rotate_signing_key(workspace, key, start).await.expect("signing key");
    let document = json!({
        "name": "Bench", "trigger": {"type": "manual"},
        "steps": [{"id": STEP, "type": "webhook", "url": url, "body": BODY}]
    });
    let campaign = store.create_campaign(workspace, "Bench", &document, start).await.expect("campaign");
    store
        .set_campaign_state(workspace, campaign.id, &[CampaignState::Draft], CampaignState::Active, start)
        .await
        .expect("activate");
    let contacts = contacts(&store, workspace, n, start).await;
    Setup { store, workspace, campaign: campaign.id, contacts, _database: database }
}

/// The app as `herald serve` builds it, allowed to call loopback over plain http.
fn app(store: &SharedStore) -> App {
    let concurrency = env_list("HERALD_BENCH_CONCURRENCY", &WorkerSettings::default().concurrency.to_string())[0];
    let settings =
        WorkerSettings { concurrency: u32::try_from(concurrency).expect("concurrency"), ..WorkerSettings::default() };
    let loopback = AddressPolicy::allowing(["127.0.0.0/8".parse().expect("net")]);
    let webhooks = ClientSettings { policy: loopback, allow_http: true, ..ClientSettings::default() };
    let clock: SharedClock = Arc::new(SystemClock);
    App::with_webhooks(
        store.clone(),
        clock,
        "http://127.0.0.1:1",
        settings,
        256 * 1024,
        EmailSettings::default(),
        webhooks,
    )
    .expect("app")
}

/// What one scenario measured.
struct Run {
    /// Due time of each journey (µs) by its call's `webhook-id`.
    due: HashMap<String, i64>,
    arrivals: Vec<(String, i64)>,
    bad_signatures: usize,
    /// When the worker started (µs).
    started: i64,
    peak_rss: f64,
    /// Journeys completed once every job was done, and how long after the last arrival.
    completed: u64,
    settled_after: f64,
}

impl Run {
    fn latencies(&self, keep: impl Fn(i64) -> bool) -> Vec<f64> {
        let mut first: HashMap<&str, i64> = HashMap::new();
        for (id, at) in &self.arrivals {
            first.entry(id.as_str()).and_modify(|t| *t = (*t).min(*at)).or_insert(*at);
        }
        first
            .iter()
            .filter_map(|(id, at)| self.due.get(*id).filter(|d| keep(**d)).map(|d| (at - d) as f64 / 1000.0))
            .collect()
    }

    fn distinct(&self) -> usize {
        let mut ids: Vec<&String> = self.arrivals.iter().map(|(id, _)| id).collect();
        ids.sort_unstable();
        ids.dedup();
        ids.len()
    }

    fn last_arrival(&self) -> i64 {
        self.arrivals.iter().map(|a| a.1).max().unwrap_or(self.started)
    }
}

/// Journeys due at `due(n)` (µs; the worker is started at `start_worker`), delivered to the
/// receiver; returns what was measured.
async fn deliver(
    backend: Backend,
    receiver: &Receiver,
    key: &SigningKeyRecord,
    n: usize,
    due: impl Fn(usize, Timestamp) -> Timestamp,
) -> Run {
    let setup = setup(backend, key, &format!("{}/hook", receiver.base), n).await;
    let store = setup.store.clone();
    let app = app(&store);
    let enrolled = Instant::now();
    let base = now();
    let journeys = enrol(&store, setup.workspace, setup.campaign, &setup.contacts, |i| due(i, base), base).await;
    let due_at: HashMap<String, i64> = journeys
        .iter()
        .enumerate()
        .map(|(i, j)| (herald_server::delivery::webhooks::idempotency_key(*j, STEP), due(i, base).unix_millis() * 1000))
        .collect();
    eprintln!("  {n} journeys enrolled in {:.1} s", enrolled.elapsed().as_secs_f64());
    let first_due = due_at.values().min().copied().unwrap_or_default();
    if wall_micros() > first_due {
        eprintln!("  (setup ended {:.0} ms after the first due time)", (wall_micros() - first_due) as f64 / 1000.0);
    }
    reset_peak_rss();
    let shutdown = CancellationToken::new();
    let started = wall_micros();
    let worker = tokio::spawn(app.worker.clone().run(shutdown.clone()));
    receiver.wait_for(n).await;
    let arrived = Instant::now();
    // The calls' outcomes are recorded and their journeys resumed after the requests arrive.
    loop {
        let next = store.next_job_due().await.expect("next due");
        if next.is_none() || arrived.elapsed() > Duration::from_secs(60) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let settled_after = arrived.elapsed().as_secs_f64();
    let peak_rss = peak_rss_mib();
    shutdown.cancel();
    worker.await.expect("worker");
    let stats = store.campaign_stats(setup.workspace, setup.campaign).await.expect("stats");
    let (arrivals, bad_signatures) = receiver.take().await;
    store.close().await;
    Run { due: due_at, arrivals, bad_signatures, started, peak_rss, completed: stats.completed, settled_after }
}

fn report_checks(run: &Run, n: usize) {
    println!(
        "\nreceived {} requests for {} distinct calls of {n} (twice: {}; bad signatures: {}); journeys completed: \
         {}; every job done {:.2} s after the last arrival; peak RSS (VmHWM) {:.0} MiB",
        run.arrivals.len(),
        run.distinct(),
        run.arrivals.len() - run.distinct(),
        run.bad_signatures,
        run.completed,
        run.settled_after,
        run.peak_rss
    );
}

/// The receiver alone: `n` requests like Herald's over [`CAPACITY_CONNECTIONS`] connections.
async fn capacity(receiver: &Receiver, key: &SigningKeyRecord, n: usize) -> (f64, Vec<f64>) {
    let body = BODY.replace("{{ email | json }}", "\"c0@bench.test\"").replace("{{ customer.id | json }}", "\"x\"");
    let signing = SigningKey::from_secret(key.id.clone(), key.secret.clone());
    let timestamp = now().unix_millis() / 1000;
    let headers = sign(&[signing], "whk_capacity", timestamp, body.as_bytes()).into_pairs();
    let client = reqwest::Client::new();
    let url = format!("{}/hook", receiver.base);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..CAPACITY_CONNECTIONS {
        let (client, url, body, headers, next) =
            (client.clone(), url.clone(), body.clone(), headers.clone(), next.clone());
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < n {
                let sent = Instant::now();
                let mut request = client.post(&url).header("content-type", "application/json").body(body.clone());
                for (name, value) in &headers {
                    request = request.header(name, value);
                }
                let response = request.send().await.expect("POST");
                assert!(response.status().is_success(), "{}", response.status());
                response.bytes().await.expect("body");
                latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
            }
            latencies
        });
    }
    let mut latencies = Vec::with_capacity(n);
    while let Some(done) = tasks.join_next().await {
        latencies.extend(done.expect("task"));
    }
    let rate = n as f64 / started.elapsed().as_secs_f64();
    receiver.take().await;
    (rate, latencies)
}

async fn bench(backend: Backend, n: usize, rate: usize, only: &str) {
    let key = SigningKey::generate();
    let key =
        SigningKeyRecord { id: key.id.clone(), secret: key.secret().to_vec(), created_at: now(), retires_at: None };
    let receiver = Receiver::start(&key.secret);
    let name = format!("{backend:?}").to_lowercase();
    println!("\n## Outbound webhooks ({name}), {n} deliveries\n\nload average at the start: {}", load_average());
    if only.is_empty() || only == "capacity" {
        let (per_second, latencies) = capacity(&receiver, &key, n).await;
        println!(
            "\n### Receiver alone ({CAPACITY_CONNECTIONS} connections, plain reqwest): {per_second:.0} requests/s\n"
        );
        println!("| measure | p50 | p90 | p99 | max | count |");
        println!("| --- | ---: | ---: | ---: | ---: | ---: |");
        println!("{}", row("request sent → answer read", latencies));
    }
    if only.is_empty() || only == "burst" {
        let run = deliver(backend, &receiver, &key, n, |_, base| base).await;
        let times: Vec<i64> = run.arrivals.iter().map(|a| a.1).collect();
        let span = (run.last_arrival() - run.started) as f64 / 1e6;
        println!("\n### Burst: {n} journeys due at once\n");
        println!(
            "{:.0} deliveries/s from the worker's start to the last arrival ({span:.1} s); {:.0}/s over the middle 80%",
            n as f64 / span,
            middle_rate(times)
        );
        println!("\n| measure | p50 | p90 | p99 | max | count |");
        println!("| --- | ---: | ---: | ---: | ---: | ---: |");
        let queued = run.arrivals.iter().map(|(_, at)| (at - run.started) as f64 / 1000.0).collect();
        println!("{}", row("worker start → received (queueing)", queued));
        report_checks(&run, n);
    }
    if only.is_empty() || only == "paced" {
        // Due times start once the setup is surely done: about 3 s plus 0.2 ms per journey.
        let lead = Duration::from_secs(3) + Duration::from_micros(200 * n as u64);
        let step = 1e6 / rate as f64;
        let run = deliver(backend, &receiver, &key, n, |i, base| {
            base + lead + Duration::from_micros((i as f64 * step) as u64)
        })
        .await;
        let first_due = run.due.values().min().copied().unwrap_or_default();
        let last_due = run.due.values().max().copied().unwrap_or_default();
        let span = (run.last_arrival() - first_due) as f64 / 1e6;
        let tenth = (last_due - first_due) / 10;
        println!("\n### Paced: {n} journeys falling due at {rate}/s\n");
        println!(
            "{:.0} deliveries/s from the first due time to the last arrival ({span:.1} s; the due times span {:.1} s)",
            n as f64 / span,
            (last_due - first_due) as f64 / 1e6
        );
        println!("\n| measure | p50 | p90 | p99 | max | count |");
        println!("| --- | ---: | ---: | ---: | ---: | ---: |");
        println!("{}", row("due → received", run.latencies(|_| true)));
        println!("{}", row("first 10%: due → received", run.latencies(|d| d < first_due + tenth)));
        println!("{}", row("last 10%: due → received", run.latencies(|d| d >= last_due - tenth)));
        report_checks(&run, n);
    }
    if only.is_empty() || only == "sealing" {
        sealing(n);
    }
    println!("\nload average at the end: {}", load_average());
}

/// Times sealing and opening the secrets of a call `n` times each, with and without secrets.
fn sealing(n: usize) {
    use herald_store::secrets::{Document, SecretKeys, columns};
    let keys = SecretKeys::new(&[7; 32], &[]);
    let call = |basic_auth: Option<&str>, header: (&str, &str)| {
        json!({
            "journey": "jrn_0197a0c4e1f07c3b9d2a4e5f6a7b8c9d", "campaign": "cmp_0197a0c4e1f07c3b9d2a4e5f6a7b8c9e",
            "contact": "ct_0197a0c4e1f07c3b9d2a4e5f6a7b8c9f", "step_index": 0, "step": STEP,
            "idempotency_key": "whk_0197a0c4e1f07c3b9d2a4e5f6a7b8c9d_0123456789abcdef",
            "endpoint": "https://crm.example.com:443", "basic_auth": basic_auth,
            "request": {"method": "POST", "url": "https://crm.example.com/hooks/herald",
                        "headers": [[header.0, header.1], ["X-Team", "growth"]], "content_type": "application/json",
                        "body": BODY.replace("{{ email | json }}", "\"ada@example.com\""), "timeout_ms": 4000,
                        "log_response_body": false}
        })
    };
    let with = call(Some("crm:s3cr3t-password"), ("Authorization", "Bearer 0123456789abcdef0123456789abcdef"));
    let without = call(None, ("X-Request-Source", "herald"));
    println!("\n### Sealing a call's secrets ({n} times each, no I/O)\n");
    println!("| call | seal | clone | clone + open |");
    println!("| --- | ---: | ---: | ---: |");
    for (label, call) in [("Basic credentials and a secret header", with), ("no secret", without)] {
        let per_call = |started: Instant| started.elapsed().as_nanos() as f64 / n as f64;
        let started = Instant::now();
        for _ in 0..n {
            std::hint::black_box(keys.seal_document(Document::Call, columns::DELIVERY_CALL, &call));
        }
        let seal = per_call(started);
        let sealed = keys.seal_document(Document::Call, columns::DELIVERY_CALL, &call).value.into_owned();
        let started = Instant::now();
        for _ in 0..n {
            std::hint::black_box(sealed.clone());
        }
        let clone = per_call(started);
        let started = Instant::now();
        for _ in 0..n {
            let mut opened = sealed.clone();
            keys.open_document(Document::Call, columns::DELIVERY_CALL, &mut opened).expect("open");
            std::hint::black_box(opened);
        }
        let open = per_call(started);
        println!("| {label} | {seal:.0} ns | {clone:.0} ns | {open:.0} ns |");
    }
}

fn main() {
    if let Ok(secret) = std::env::var(RECEIVER_ENV) {
        run_receiver(&secret);
        return;
    }
    // `cargo bench` passes `--bench`; `cargo test --benches` would pass other flags.
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    let n = env_list("HERALD_BENCH_DELIVERIES", "50000")[0];
    let rate = env_list("HERALD_BENCH_RATE", "5000")[0];
    let only = std::env::var("HERALD_BENCH_ONLY").unwrap_or_default();
    let backends = std::env::var("HERALD_BENCH_BACKEND").unwrap_or_else(|_| "sqlite".to_owned());
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    for backend in backends.split(',') {
        let backend = match backend.trim() {
            "sqlite" => Backend::Sqlite,
            "postgres" => Backend::Postgres,
            other => panic!("HERALD_BENCH_BACKEND: {other} is neither sqlite nor postgres"),
        };
        runtime.block_on(bench(backend, n, rate, &only));
    }
}
