//! Email delivery benchmarks (performance targets live here, never in timed tests):
//!
//! - `latency`: from the inbound POST to the SMTP relay's acceptance of the message, for a
//!   campaign whose only step is an email (no wait), at 200 events/s for 60 s, each event a new
//!   contact (target p99 < 1 s and no backlog growth: the last seconds no slower than the first,
//!   and as many messages in flight at the end as after the first seconds), next to the POST's
//!   own latency (the durable ingest answer) measured in the same run.
//!
//! - `idle`: isolated events on an idle server, one every 1.5 s (`HERALD_BENCH_IDLE_EVENTS`,
//!   default 60, each a new contact), from the POST's answer (HTTP 200 received) to the relay's
//!   acceptance of the message (target p99 < 50 ms) and, on a second server with no relay, to
//!   the message's record in the outbox, seen by polling the messages API every millisecond
//!   (target p99 < 20 ms). Each event's way is three jobs (trigger evaluation, journey step,
//!   delivery), each enqueued by the one before: what this measures is whether the worker
//!   takes each up at once rather than at its next poll (`HERALD_QUEUE_POLL_MS`, 1 s).
//!   The same for transactional sends: from `POST /api/v1/send`'s 202 to the relay's
//!   acceptance (target p99 < 50 ms; one job, the delivery, stored with the answer).
//!
//! - `throughput`: the most messages per second Herald hands to a local relay: N events
//!   (default 5,000) ingested with the worker stopped, then the worker started; messages per
//!   second from the first to the last acceptance, for each pool size asked. The ceiling in the
//!   same run: the same relay fed by `SmtpClient` alone (the same pool size, N messages composed
//!   and signed beforehand). Also the CPU one delivery spends building its DKIM signer and
//!   signing, per algorithm.
//!
//! The relay is `SmtpSink` (Python's aiosmtpd in its own process; set `HERALD_TEST_PYTHON`).
//! A message's acceptance time is the modification time of the file the sink writes for it
//! just before answering `250` to the final dot (kernel file times: a few ms of resolution).
//! The message's `sent_at` is not used for that: Herald takes it before the send, so it leaves
//! out the wait for a pooled connection and the SMTP exchange; the breakdown shows both.
//! `SmtpSink` keeps its folder private, so this process points `tempfile`'s default directory
//! at `target/bench-email/sinks/` and finds the sink's folder there.
//!
//! Run: `HERALD_TEST_PYTHON=/usr/bin/python3 cargo bench -p herald-server --bench email` (env
//! `HERALD_BENCH_ONLY=latency|idle|throughput`; `HERALD_BENCH_RATE`, default 200 events/s;
//! `HERALD_BENCH_SECONDS`, default 60; `HERALD_BENCH_MESSAGES`, default 5000;
//! `HERALD_BENCH_POOL`, SMTP connections, comma separated, default `8,1,32`, the latency run
//! uses the first; `HERALD_BENCH_DKIM=rsa|ed25519`, default `rsa` as the API;
//! `HERALD_BENCH_CONCURRENCY`, the worker's job slots). SQLite files go under
//! `target/bench-email/` (not /tmp, which may be a tmpfs where fsync is free). The server runs
//! in this process on a loopback port, with the system clock and its worker.

mod common;

use std::collections::{HashMap, HashSet};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use common::{env_list, percentile};
use herald_domain::SendingDomain;
use herald_email::dkim::{DkimAlgorithm, DkimKey};
use herald_email::message::{Composed, Mailbox, Outgoing, Unsubscribe, compose};
use herald_email::smtp::{SmtpClient, SmtpSettings};
use herald_email::testing::dns::DnsServer;
use herald_email::testing::smtp::SmtpSink;
use herald_server::app::App;
use herald_server::app::config::WorkerSettings;
use herald_server::app::worker::Worker;
use herald_server::clock::{SharedClock, SystemClock};
use herald_server::delivery::email::EmailSettings;
use herald_store::SharedStore;
use reqwest::Method;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "hk_benchmark-token-0123456789abcdefghijklmnopqrstuvwxyz";
const DOMAIN: &str = "mail.bench.test";
const HTML: &str = "<p>Hi {{ first_name | default: \"there\" }}, welcome to the {{ event.data.plan }} plan.</p>\
                    <p>Here is what to do first: set up your profile, invite your team, and send your \
                    first campaign.</p><p><a href=\"{{ unsubscribe_url }}\">Unsubscribe</a></p>";

fn bench_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-email")
}

fn millis(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH).expect("after 1970").as_secs_f64() * 1000.0
}

fn now_ms() -> f64 {
    millis(SystemTime::now())
}

fn show_ms(ms: f64) -> String {
    match ms.abs() {
        v if v < 1.0 => format!("{:.0} µs", ms * 1000.0),
        v if v < 10.0 => format!("{ms:.1} ms"),
        _ => format!("{ms:.0} ms"),
    }
}

/// A table row: p50, p90, p99 and max of `values`, sorted here.
fn row(name: &str, mut values: Vec<f64>) -> String {
    values.sort_by(f64::total_cmp);
    let max = values.last().copied().unwrap_or(f64::NAN);
    let [p50, p90, p99] = [0.5, 0.9, 0.99].map(|p| show_ms(percentile(&values, p)));
    format!("| {name} | {p50} | {p90} | {p99} | {} | {} |", show_ms(max), values.len())
}

fn load_average() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

/// The number in a bench address such as `u42@bench.test`.
fn number(address: &str, prefix: &str) -> Option<usize> {
    address.strip_prefix(prefix)?.split('@').next()?.parse().ok()
}

/// Accepted messages in the sink's folder, without reading their bodies.
fn count_accepted(messages: &Path) -> usize {
    std::fs::read_dir(messages)
        .map(|entries| {
            entries.filter(|e| e.as_ref().is_ok_and(|e| e.path().extension() == Some("eml".as_ref()))).count()
        })
        .unwrap_or(0)
}

/// The SMTP sink and the folder it writes one `<seq>.eml` per accepted message to (a JSON line
/// with the envelope, then the message).
struct Sink {
    sink: SmtpSink,
    messages: PathBuf,
}

impl Sink {
    /// Starts a sink; its folder is the one new directory in `tempfile`'s default directory.
    fn start() -> Self {
        let root = tempfile::env::temp_dir();
        let folders = || -> HashSet<PathBuf> {
            std::fs::read_dir(&root).expect("sink root").filter_map(|e| e.ok().map(|e| e.path())).collect()
        };
        let before = folders();
        let sink = SmtpSink::start().expect("SMTP sink (set HERALD_TEST_PYTHON to a python3 with aiosmtpd)");
        let new: Vec<PathBuf> = folders().difference(&before).cloned().collect();
        assert_eq!(new.len(), 1, "one new sink folder in {}: {new:?}", root.display());
        Self { sink, messages: new[0].join("messages") }
    }

    fn count(&self) -> usize {
        count_accepted(&self.messages)
    }

    /// Every accepted message: its first recipient, acceptance time (ms since the epoch) and size.
    fn accepted(&self) -> Vec<(String, f64, u64)> {
        let entries = std::fs::read_dir(&self.messages).expect("sink folder");
        let mut all = Vec::new();
        for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
            if path.extension() != Some("eml".as_ref()) {
                continue;
            }
            let file = std::fs::File::open(&path).expect("message file");
            let meta = file.metadata().expect("metadata");
            let mut head = String::new();
            std::io::BufReader::new(file).read_line(&mut head).expect("envelope line");
            let envelope: Value = serde_json::from_str(&head).expect("envelope JSON");
            let to = envelope["rcpt_tos"][0].as_str().expect("recipient").to_owned();
            all.push((to, millis(meta.modified().expect("mtime")), meta.len() - head.len() as u64));
        }
        all
    }
}

/// Herald serving on loopback with a verified sending domain, the sink as its workspace's
/// relay (unless `relay` is false: the embedded outbox), a generic source and an active
/// one-email campaign.
struct Herald {
    store: SharedStore,
    workspace: herald_domain::WorkspaceId,
    client: reqwest::Client,
    base: String,
    source: String,
    worker: Arc<Worker>,
    shutdown: CancellationToken,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
    sink: Sink,
    _dns: DnsServer,
    _dir: tempfile::TempDir,
}

impl Herald {
    async fn start(pool: usize, dkim: &str, run_worker: bool, relay: bool) -> Self {
        std::fs::create_dir_all(bench_dir()).expect("bench dir");
        let dir = tempfile::tempdir_in(bench_dir()).expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("herald.db").display());
        let store: SharedStore = Arc::new(herald_store_sqlite::SqliteStore::connect(&url).await.expect("open"));
        store.migrate().await.expect("migrate");
        let clock: SharedClock = Arc::new(SystemClock);
        let token = herald_domain::ApiToken::parse_supplied(TOKEN).expect("token");
        let workspace = herald_server::app::bootstrap(&store, &clock, Some(&token)).await.expect("bootstrap").id;
        let dns = DnsServer::start().await.expect("DNS server");
        let sink = Sink::start();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let concurrency = env_list("HERALD_BENCH_CONCURRENCY", &WorkerSettings::default().concurrency.to_string())[0];
        let settings = WorkerSettings { concurrency: concurrency as u32, ..WorkerSettings::default() };
        let email = EmailSettings { dns_resolver: Some(dns.addr()), ..EmailSettings::default() };
        let app = App::new(store.clone(), clock, &base, settings, 256 * 1024, email).expect("app");
        let worker = app.worker.clone();
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(app.serve(listener, run_worker, Duration::from_secs(5), shutdown.clone()));
        let mut herald = Self {
            store,
            workspace,
            client: reqwest::Client::new(),
            base,
            source: String::new(),
            worker,
            shutdown,
            server,
            sink,
            _dns: dns,
            _dir: dir,
        };

        if relay {
            let relay =
                json!({"host": "127.0.0.1", "port": herald.sink.sink.port(), "security": "none", "pool_size": pool});
            herald.call(Method::PUT, "/transport", &relay).await;
        }
        let domain = herald.call(Method::POST, "/domains", &json!({"name": DOMAIN, "algorithm": dkim})).await;
        for record in domain["records"].as_array().expect("records") {
            herald._dns.set_txt(record["name"].as_str().expect("name"), &[record["value"].as_str().expect("value")]);
        }
        let path = format!("/domains/{}/verify", domain["id"].as_str().expect("domain id"));
        let verified = herald.call(Method::POST, &path, &json!({})).await;
        assert_eq!(verified["status"], "verified", "{verified}");
        let source = herald.call(Method::POST, "/sources", &json!({"name": "bench", "kind": "generic"})).await;
        herald.source = source["url"].as_str().expect("source url").to_owned();
        let campaign = herald
            .call(
                Method::POST,
                "/campaigns",
                &json!({
                    "name": "Welcome", "trigger": {"type": "event", "event": "signed_up"}, "entry": "every_time",
                    "steps": [{"type": "email", "from": format!("Bench <news@{DOMAIN}>"),
                               "subject": "Welcome {{ first_name }}", "html": HTML}]
                }),
            )
            .await;
        let activate = format!("/campaigns/{}/activate", campaign["id"].as_str().expect("campaign id"));
        herald.call(Method::POST, &activate, &json!({})).await;
        herald
    }

    /// An API call that must succeed; its JSON answer.
    async fn call(&self, method: Method, path: &str, body: &Value) -> Value {
        let response = self
            .client
            .request(method, format!("{}/api/v1{path}", self.base))
            .bearer_auth(TOKEN)
            .json(body)
            .send()
            .await
            .expect("API request");
        let status = response.status();
        let answer: Value = response.json().await.expect("JSON answer");
        assert!(status.is_success(), "{path}: {status} {answer}");
        answer
    }

    /// Every message record, through the API.
    async fn messages(&self) -> Vec<Value> {
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let after = cursor.as_deref().map(|c| format!("&cursor={c}")).unwrap_or_default();
            let page: Value = self
                .client
                .get(format!("{}/api/v1/messages?limit=500{after}", self.base))
                .bearer_auth(TOKEN)
                .send()
                .await
                .expect("messages")
                .json()
                .await
                .expect("JSON");
            all.extend(page["data"].as_array().expect("data").iter().cloned());
            cursor = page["next_cursor"].as_str().map(str::to_owned);
            if cursor.is_none() {
                return all;
            }
        }
    }

    /// Every message record once none is queued any more (at most 30 s): the relay accepts a
    /// message just before Herald commits that it did.
    async fn settled_messages(&self) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let records = self.messages().await;
            if records.iter().all(|m| m["status"] != "queued") || Instant::now() > deadline {
                return records;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// When the relay accepted the message to `to`, if it did.
    fn accepted_at(&self, to: &str) -> Option<f64> {
        self.sink.accepted().into_iter().find(|m| m.0 == to).map(|m| m.1)
    }

    /// Whether the newest message record is the one to `to`.
    async fn outbox_has(&self, to: &str) -> bool {
        let page: Value = self
            .client
            .get(format!("{}/api/v1/messages?limit=1", self.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("messages")
            .json()
            .await
            .expect("JSON");
        page["data"][0]["to"] == to
    }

    async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.server.await;
        self.store.close().await;
    }
}

fn timestamp_ms(value: &Value) -> Option<f64> {
    let at: herald_domain::Timestamp = serde_json::from_value(value.clone()).ok()?;
    Some(at.unix_millis() as f64)
}

/// Inbound POST → relay acceptance, at `rate` events/s for `seconds`, with `pool` connections.
async fn latency(rate: u32, seconds: u64, pool: usize, dkim: &str) {
    let herald = Herald::start(pool, dkim, true, true).await;
    let total = rate as usize * seconds as usize;
    let posted = Arc::new(AtomicUsize::new(0));
    let began = now_ms();

    // Once a second: how many events were posted and how many messages accepted so far.
    let sampling = CancellationToken::new();
    let sampler = tokio::spawn({
        let (posted, messages, stop) = (posted.clone(), herald.sink.messages.clone(), sampling.clone());
        async move {
            let mut samples = Vec::new();
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            while !stop.is_cancelled() {
                tick.tick().await;
                samples.push(((now_ms() - began) / 1000.0, posted.load(Ordering::Relaxed), count_accepted(&messages)));
            }
            samples
        }
    });

    // Open loop: one request every 1/rate s, whatever the answers do.
    let mut ticker = tokio::time::interval(Duration::from_secs(1) / rate);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut requests = tokio::task::JoinSet::new();
    for n in 0..total {
        ticker.tick().await;
        let (client, url, posted) = (herald.client.clone(), herald.source.clone(), posted.clone());
        requests.spawn(async move {
            let sent = now_ms();
            posted.fetch_add(1, Ordering::Relaxed);
            let body = json!({"email": format!("u{n}@bench.test"), "event": "signed_up",
                              "data": {"first_name": "U", "plan": "pro"}});
            let status = client.post(&url).json(&body).send().await.map(|r| r.status());
            (n, sent, now_ms() - sent, status.is_ok_and(|s| s.is_success()))
        });
    }
    let load_ended = now_ms();
    let mut sent_at = vec![f64::NAN; total];
    let mut post_ms = Vec::with_capacity(total);
    let mut failed = 0;
    while let Some(done) = requests.join_next().await {
        let (n, sent, ms, ok) = done.expect("request task");
        sent_at[n] = sent;
        post_ms.push(ms);
        failed += usize::from(!ok);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while herald.sink.count() < total - failed && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    sampling.cancel();
    let samples = sampler.await.expect("sampler");

    let files = herald.sink.accepted();
    let accepted: HashMap<usize, f64> = files.iter().filter_map(|(to, at, _)| Some((number(to, "u")?, *at))).collect();
    let records = herald.settled_messages().await;
    let not_sent = records.iter().filter(|m| m["status"] != "sent").count();
    let mut queued = Vec::new();
    let mut to_send = Vec::new();
    let mut send_to_accept = Vec::new();
    for m in &records {
        let n = m["to"].as_str().and_then(|to| number(to, "u")).expect("bench recipient");
        let (Some(created), Some(send)) = (timestamp_ms(&m["created_at"]), timestamp_ms(&m["sent_at"])) else {
            continue;
        };
        queued.push(created - sent_at[n]);
        to_send.push(send - created);
        if let Some(at) = accepted.get(&n) {
            send_to_accept.push(at - send);
        }
    }
    let end_to_end = |from: f64, to: f64| -> Vec<f64> {
        accepted
            .iter()
            .filter(|&(&n, _)| (from..to).contains(&(sent_at[n] - began)))
            .map(|(&n, at)| at - sent_at[n])
            .collect()
    };
    let window = seconds.min(10) as f64 * 1000.0;
    let span = seconds as f64 * 1000.0;
    herald.stop().await;

    println!("\n## Inbound event → relay accepted (SQLite, SMTP sink), {rate} events/s for {seconds} s, pool {pool}\n");
    println!("| measure | p50 | p90 | p99 | max | count |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    println!("{}", row("POST answered (durable ingest, baseline)", post_ms));
    println!("{}", row("POST → relay accepted", end_to_end(f64::MIN, f64::MAX)));
    println!("{}", row("first 10 s: POST → relay accepted", end_to_end(0.0, window)));
    println!("{}", row("last 10 s: POST → relay accepted", end_to_end(span - window, span)));
    println!("{}", row("POST → message queued (ingest, trigger, step)", queued));
    println!("{}", row("queued → send started (`sent_at`)", to_send));
    println!("{}", row("send started → relay accepted (pool wait, SMTP)", send_to_accept));
    let in_flight = |at: f64| samples.iter().rev().find(|s| s.0 <= at).map_or(0, |s| s.1 - s.2.min(s.1));
    let marks: Vec<String> =
        (1..=seconds / 10).map(|tens| format!("{} s: {}", tens * 10, in_flight(tens as f64 * 10.0))).collect();
    let peak = samples.iter().map(|s| s.1 - s.2.min(s.1)).max().unwrap_or(0);
    let drain = accepted.values().fold(f64::MIN, |a, &b| a.max(b)) - load_ended;
    println!("\nposted but not yet accepted (sampled each second): {}; peak {peak}", marks.join(", "));
    println!("last acceptance {:.0} ms after the last POST was sent", drain);
    println!(
        "failed requests: {failed}; messages not accepted after a 60 s drain: {}; accepted twice: {}; \
         records not `sent`: {not_sent}",
        total - failed - accepted.len(),
        files.len() - accepted.len()
    );
}

/// How long the idle scenario waits for one message before it counts it as missing.
const IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// Isolated events on an idle server, one every `gap`: per event, the milliseconds from the
/// POST's answer to the relay's acceptance of its message (`relay`), or to its record in the
/// outbox; `None` for a message not there within [`IDLE_TIMEOUT`]. With `transactional`, each
/// POST is a send (`/api/v1/send`) rather than an event for the campaign.
async fn idle(events: usize, gap: Duration, relay: bool, transactional: bool, dkim: &str) -> Vec<Option<f64>> {
    let herald = Herald::start(8, dkim, true, relay).await;
    let mut ticker = tokio::time::interval(gap);
    // After a slow event the next still comes a whole gap later: each arrives on an idle server.
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut latencies = Vec::with_capacity(events);
    for n in 0..events {
        ticker.tick().await;
        let to = format!("i{n}@bench.test");
        let response = if transactional {
            let body = json!({"to": to, "from": format!("Bench <news@{DOMAIN}>"),
                              "subject": "Welcome {{ data.first_name }}", "html": HTML, "data": {"first_name": "U"}});
            let url = format!("{}/api/v1/send", herald.base);
            herald.client.post(url).bearer_auth(TOKEN).json(&body).send().await.expect("POST")
        } else {
            let body = json!({"email": to, "event": "signed_up", "data": {"first_name": "U", "plan": "pro"}});
            herald.client.post(&herald.source).json(&body).send().await.expect("POST")
        };
        let answered = now_ms();
        assert!(response.status().is_success(), "POST: {}", response.status());
        let deadline = Instant::now() + IDLE_TIMEOUT;
        let arrived = loop {
            let arrived = if !relay {
                herald.outbox_has(&to).await.then(now_ms)
            } else if herald.sink.count() > n {
                herald.accepted_at(&to)
            } else {
                None
            };
            if arrived.is_some() || Instant::now() > deadline {
                break arrived;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        };
        latencies.push(arrived.map(|at| at - answered));
    }
    herald.stop().await;
    latencies
}

/// The idle scenario through the relay and through the outbox, as a table.
async fn idle_report(dkim: &str) {
    let events = env_list("HERALD_BENCH_IDLE_EVENTS", "60")[0];
    let gap = Duration::from_millis(1500);
    println!("\n## Isolated events on an idle server (SQLite), one every {gap:?}, {events} events each\n");
    println!("| measure | p50 | p90 | p99 | max | count |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    for (relay, transactional, name) in [
        (true, false, "POST answered → relay accepted (SMTP sink)"),
        (false, false, "POST answered → in the outbox"),
        (true, true, "send accepted (202) → relay accepted (SMTP sink)"),
    ] {
        let latencies = idle(events, gap, relay, transactional, dkim).await;
        let missing = latencies.iter().filter(|l| l.is_none()).count();
        println!("{}", row(name, latencies.into_iter().flatten().collect()));
        if missing > 0 {
            println!("\n{missing} messages not there within {IDLE_TIMEOUT:?}\n");
        }
    }
}

/// A message like the campaign's, composed (and signed) here.
fn outgoing(n: usize, base: &str) -> Outgoing {
    Outgoing {
        message_id: format!("raw{n}.bench@{DOMAIN}"),
        date: time::OffsetDateTime::now_utc(),
        from: Mailbox::new(Some("Bench"), format!("news@{DOMAIN}")),
        to: Mailbox::new(None::<String>, format!("raw{n}@bench.test")),
        reply_to: None,
        subject: "Welcome U".to_owned(),
        html: HTML.replace("{{ first_name | default: \"there\" }}", "U").replace("{{ event.data.plan }}", "pro"),
        text: "Hi U, welcome to the pro plan.".to_owned(),
        unsubscribe: Some(Unsubscribe {
            url: format!("{base}/unsubscribe/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
            mailto: Some(format!("mailto:news@{DOMAIN}?subject=unsubscribe")),
        }),
        envelope_from: None,
        herald_token: None,
    }
}

/// Messages per second from the first to the last acceptance, and over the middle 80%.
fn rates(mut times: Vec<f64>) -> (f64, f64) {
    times.sort_by(f64::total_cmp);
    let over = |from: usize, to: usize| (to - from) as f64 * 1000.0 / (times[to] - times[from]);
    let last = times.len() - 1;
    (over(0, last), over(last / 10, last * 9 / 10))
}

/// The relay fed by `SmtpClient` alone: `count` messages sent at once through `pool` connections.
async fn raw_rate(herald: &Herald, signer: &herald_email::dkim::DkimSigner, pool: usize, count: usize) -> (f64, f64) {
    let messages: Vec<Composed> = (0..count)
        .map(|n| compose(&outgoing(n, &herald.base), Some(signer), time::OffsetDateTime::now_utc()).expect("compose"))
        .collect();
    let settings = SmtpSettings { pool_size: pool as u32, ..herald.sink.sink.settings() };
    let client = SmtpClient::new(&settings).expect("client");
    let mut sends = tokio::task::JoinSet::new();
    for message in messages {
        let client = client.clone();
        sends.spawn(async move { client.send(&message).await.map(|_| ()) });
    }
    while let Some(sent) = sends.join_next().await {
        sent.expect("send task").expect("relay accepted");
    }
    let times: Vec<f64> = herald.sink.accepted().into_iter().filter(|m| m.0.starts_with("raw")).map(|m| m.1).collect();
    rates(times)
}

/// Herald's rate for `count` messages due at once, after the raw ceiling on the same relay.
async fn throughput(pool: usize, count: usize, dkim: &str) -> [f64; 6] {
    let herald = Herald::start(pool, dkim, false, true).await;
    let (domain, key) = herald.store.domain_key(herald.workspace, DOMAIN).await.expect("key").expect("domain");
    let signer = herald_server::delivery::email::signer(&domain, &key).expect("signer");
    let (raw, raw_middle) = raw_rate(&herald, &signer, pool, count).await;
    let offset = herald.sink.count();

    let ingest = Instant::now();
    let batch = format!("{}/batch", herald.source);
    for chunk in (0..count).collect::<Vec<_>>().chunks(1000) {
        let events: Vec<Value> = chunk
            .iter()
            .map(|n| {
                json!({"email": format!("t{n}@bench.test"), "event": "signed_up",
                            "data": {"first_name": "U", "plan": "pro"}})
            })
            .collect();
        let response = herald.client.post(&batch).json(&events).send().await.expect("batch");
        assert!(response.status().is_success(), "batch: {}", response.status());
    }
    let ingest = ingest.elapsed().as_secs_f64();

    let started = now_ms();
    let worker = tokio::spawn(herald.worker.clone().run(herald.shutdown.child_token()));
    let mut last = (herald.sink.count(), Instant::now());
    while last.0 < offset + count && last.1.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = herald.sink.count();
        if now > last.0 {
            last = (now, Instant::now());
        }
    }
    let accepted = herald.sink.accepted();
    let ours: Vec<_> = accepted.iter().filter(|m| m.0.starts_with('t')).collect();
    let distinct: HashSet<&str> = ours.iter().map(|m| m.0.as_str()).collect();
    assert_eq!(distinct.len(), count, "every message accepted by the relay");
    let (twice, size) = (ours.len() - count, ours.iter().map(|m| m.2).sum::<u64>() / ours.len() as u64);
    let times: Vec<f64> = ours.iter().map(|m| m.1).collect();
    let records = herald.settled_messages().await;
    assert!(records.iter().all(|m| m["status"] == "sent"), "every message recorded sent");
    let made = records.iter().filter_map(|m| timestamp_ms(&m["created_at"])).fold(f64::MIN, f64::max);
    let finished = times.iter().copied().fold(f64::MIN, f64::max);
    let (herald_rate, herald_middle) = rates(times);
    eprintln!(
        "  pool {pool}: ingest of {count} events {ingest:.1} s; last message created {:.1} s and last accepted \
         {:.1} s after the worker started; mean message {} bytes; accepted twice: {}",
        (made - started) / 1000.0,
        (finished - started) / 1000.0,
        size,
        twice
    );
    herald.stop().await;
    let _ = worker.await;
    let from_start = count as f64 * 1000.0 / (finished - started);
    [raw, raw_middle, herald_rate, herald_middle, from_start, 100.0 * herald_rate / raw]
}

/// The CPU of what a delivery does per message before the send: build the signer from the
/// stored key (as `deliver` does for every message), then compose and sign; for a fresh key
/// of each algorithm, with `domain` as the template of the stored domain.
fn signing_cost(domain: &SendingDomain, base: &str) {
    const ROUNDS: u32 = 100;
    println!("\n| per message ({ROUNDS} rounds) | signer from the stored key | compose + sign | compose unsigned |");
    println!("| --- | ---: | ---: | ---: |");
    for algorithm in [DkimAlgorithm::Rsa2048, DkimAlgorithm::Ed25519] {
        let key = DkimKey::generate(algorithm).expect("key");
        let key = key.private_key();
        let domain = SendingDomain { algorithm: algorithm.as_str().to_owned(), ..domain.clone() };
        let timed = |f: &dyn Fn()| {
            let started = Instant::now();
            for _ in 0..ROUNDS {
                f();
            }
            started.elapsed().as_secs_f64() * 1000.0 / f64::from(ROUNDS)
        };
        let signer = herald_server::delivery::email::signer(&domain, key).expect("signer");
        let build = timed(&|| drop(herald_server::delivery::email::signer(&domain, key).expect("signer")));
        let sign = timed(&|| {
            drop(compose(&outgoing(0, base), Some(&signer), time::OffsetDateTime::now_utc()).expect("compose"))
        });
        let plain =
            timed(&|| drop(compose(&outgoing(0, base), None, time::OffsetDateTime::now_utc()).expect("compose")));
        println!("| {algorithm} | {} | {} | {} |", show_ms(build), show_ms(sign), show_ms(plain));
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` would pass other flags.
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    let sinks = bench_dir().join("sinks");
    std::fs::create_dir_all(&sinks).expect("sink dir");
    tempfile::env::override_temp_dir(&sinks).expect("first use of tempfile's default directory");
    let only = std::env::var("HERALD_BENCH_ONLY").unwrap_or_default();
    let dkim = std::env::var("HERALD_BENCH_DKIM").unwrap_or_else(|_| "rsa".to_owned());
    let pools = env_list("HERALD_BENCH_POOL", "8,1,32");
    let run = |scenario: &str| only.is_empty() || only == scenario;
    println!("load average at the start: {}", load_average());
    if run("latency") {
        let rate = env_list("HERALD_BENCH_RATE", "200")[0];
        let seconds = env_list("HERALD_BENCH_SECONDS", "60")[0];
        latency(u32::try_from(rate).expect("rate"), seconds as u64, pools[0], &dkim).await;
        println!("\nload average: {}", load_average());
    }
    if run("idle") {
        idle_report(&dkim).await;
        println!("\nload average: {}", load_average());
    }
    if !run("throughput") {
        return;
    }
    let count = env_list("HERALD_BENCH_MESSAGES", "5000")[0];
    let concurrency = env_list("HERALD_BENCH_CONCURRENCY", &WorkerSettings::default().concurrency.to_string())[0];
    println!("\n## Delivery throughput (SQLite, SMTP sink, DKIM {dkim}), {count} messages, {concurrency} job slots\n");
    println!(
        "| pool | SmtpClient alone (ceiling) | middle 80% | Herald | middle 80% | from worker start | Herald / ceiling |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for pool in pools {
        let [raw, raw_middle, herald, middle, from_start, share] = throughput(pool, count, &dkim).await;
        println!(
            "| {pool} | {raw:.0}/s | {raw_middle:.0}/s | {herald:.0}/s | {middle:.0}/s | {from_start:.0}/s | {share:.0}% |"
        );
    }
    println!("\nload average: {}", load_average());
    let herald = Herald::start(1, &dkim, false, true).await;
    let (domain, _) = herald.store.domain_key(herald.workspace, DOMAIN).await.expect("key").expect("domain");
    signing_cost(&domain, &herald.base);
    herald.stop().await;
}
