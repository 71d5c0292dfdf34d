//! Broadcast benchmark (performance targets live here, never in timed tests): a broadcast to
//! everyone subscribed, K contacts (`HERALD_BENCH_CONTACTS`, default 1,000,000) on SQLite, sent
//! by the release `herald` binary in its own process to an SMTP sink in this process.
//!
//! - `run`: from the `POST /broadcasts/{id}/send` call to the first message the sink accepts
//!   (target < 5 s); messages per second the sink accepts, first to last acceptance and over
//!   the middle 80% (target ≥ 2,000/s sustained); the process's RSS (`VmRSS` sampled every
//!   second, `VmHWM` at the end; target flat, under 300 MB). With `HERALD_BENCH_SECONDS` the
//!   run stops after that long (the rates are over what was sent by then).
//! - `kill`: the same broadcast (`HERALD_BENCH_KILL_CONTACTS`, default K) SIGKILLed once the
//!   sink has accepted a random share (10–90%) of it, restarted on the same file and let
//!   finish: contacts mailed twice (only the documented window may repeat: a message the relay
//!   accepted before its `sent` was committed; the report gives that window as counted at the
//!   kill) and contacts missed (must be 0).
//! - The same-run baseline: the sink fed by Herald's own `SmtpClient` alone, with the same
//!   connection count, `HERALD_BENCH_BASELINE` messages (default 20,000) composed and DKIM
//!   signed beforehand: the ratio says how much of the relay's speed the broadcast uses.
//!
//! The sink is the bench's own (`Sink`): enough SMTP for Herald's client (EHLO, MAIL, RCPT,
//! DATA, RSET, NOOP, QUIT), nothing written to disk, each accepted message counted by
//! recipient with its acceptance time. Python's aiosmtpd (the other benches' relay) manages
//! about 500 messages/s, which would be the bottleneck here.
//!
//! Setup, not measured: the contacts (`c<n>@bench.test`), a verified sending domain (DKIM
//! `HERALD_BENCH_DKIM=ed25519|rsa`, default ed25519) and the broadcast's draft are written
//! straight into the SQLite file before Herald starts; Herald's relay is the sink
//! (`HERALD_SMTP_URL`, `pool=HERALD_BENCH_POOL`, default 8 connections).
//!
//! Run: `cargo bench -p herald-server --bench broadcasts` (env `HERALD_BENCH_ONLY=run|kill`,
//! and the knobs above). SQLite files go under `target/bench-broadcasts/` (not /tmp, which may
//! be a tmpfs where fsync is free) and are deleted after each scenario.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{env_list, percentile};
use herald_domain::{BroadcastId, Timestamp, WorkspaceId};
use herald_email::dkim::{DkimAlgorithm, DkimKey};
use herald_email::message::{Composed, Mailbox, Outgoing, Unsubscribe, compose};
use herald_email::smtp::{Security, SmtpClient, SmtpSettings};
use herald_store::SharedStore;
use herald_store::broadcast::{Audience, BroadcastDraft};
use herald_store::email::{DomainCheck, NewDomain};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

const TOKEN: &str = "bench-broadcasts-admin-token-0123456789";
const SECRET_KEY: &str = "dGVzdC1zZWNyZXQta2V5LTAxMjM0NTY3ODlhYmNkZWY=";
const DOMAIN: &str = "mail.bench.test";
const HTML: &str = "<p>Hi {{ first_name | default: \"there\" }},</p><p>This month: a new editor, faster \
                    imports and <a href=\"https://example.com/changelog\">the full changelog</a>.</p>\
                    <p><a href=\"{{ unsubscribe_url }}\">Unsubscribe</a></p>";

fn bench_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-broadcasts")
}

fn now() -> Timestamp {
    Timestamp::from_offset_date_time(time::OffsetDateTime::now_utc())
}

// ---------------------------------------------------------------------------------------------
// The SMTP sink.

/// What the sink has accepted: per bench contact (`c<n>@…`) how many times, other recipients
/// in one count, and each acceptance's time.
#[derive(Default)]
struct Accepted {
    per_contact: Vec<u32>,
    other: usize,
    times: Vec<Instant>,
}

/// An SMTP server on loopback that accepts every message and keeps only the counts.
#[derive(Clone)]
struct Sink {
    port: u16,
    accepted: Arc<Mutex<Accepted>>,
}

impl Sink {
    async fn start(contacts: usize) -> Sink {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("sink bind");
        let port = listener.local_addr().expect("sink address").port();
        let accepted = Accepted { per_contact: vec![0; contacts], ..Accepted::default() };
        let sink = Sink { port, accepted: Arc::new(Mutex::new(accepted)) };
        let serving = sink.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let sink = serving.clone();
                tokio::spawn(async move {
                    let _ = sink.session(socket).await;
                });
            }
        });
        sink
    }

    /// One client's connection: commands until `QUIT` or the end of the stream.
    async fn session(&self, socket: TcpStream) -> std::io::Result<()> {
        socket.set_nodelay(true)?;
        let (read, mut write) = socket.into_split();
        let mut read = BufReader::new(read);
        let mut line = Vec::with_capacity(1024);
        let mut recipients: Vec<String> = Vec::new();
        write.write_all(b"220 sink ESMTP\r\n").await?;
        loop {
            line.clear();
            if read.read_until(b'\n', &mut line).await? == 0 {
                return Ok(());
            }
            let command = String::from_utf8_lossy(&line);
            let verb = command.get(..4).unwrap_or_default().to_ascii_uppercase();
            let reply: &[u8] = match verb.as_str() {
                "EHLO" => b"250-sink\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 PIPELINING\r\n",
                "HELO" | "NOOP" => b"250 OK\r\n",
                "MAIL" | "RSET" => {
                    recipients.clear();
                    b"250 OK\r\n"
                }
                "RCPT" => {
                    let address = command.split_once('<').and_then(|(_, rest)| rest.split_once('>'));
                    recipients.push(address.map(|(a, _)| a.to_owned()).unwrap_or_default());
                    b"250 OK\r\n"
                }
                "DATA" => {
                    write.write_all(b"354 go on\r\n").await?;
                    loop {
                        line.clear();
                        if read.read_until(b'\n', &mut line).await? == 0 {
                            return Ok(());
                        }
                        if line == b".\r\n" || line == b".\n" {
                            break;
                        }
                    }
                    self.accept(&recipients);
                    recipients.clear();
                    b"250 OK accepted\r\n"
                }
                "QUIT" => {
                    write.write_all(b"221 bye\r\n").await?;
                    return Ok(());
                }
                _ => b"502 not implemented\r\n",
            };
            write.write_all(reply).await?;
        }
    }

    fn accept(&self, recipients: &[String]) {
        let at = Instant::now();
        let mut accepted = self.accepted.lock().expect("sink lock");
        for to in recipients {
            let n = to.strip_prefix('c').and_then(|rest| rest.split_once('@')).and_then(|(n, _)| n.parse().ok());
            match n.and_then(|n: usize| accepted.per_contact.get_mut(n)) {
                Some(count) => *count += 1,
                None => accepted.other += 1,
            }
        }
        accepted.times.push(at);
    }

    fn count(&self) -> usize {
        self.accepted.lock().expect("sink lock").times.len()
    }

    /// Contacts accepted at least once, twice or more, and never.
    fn standing(&self) -> (usize, usize, usize) {
        let accepted = self.accepted.lock().expect("sink lock");
        let once = accepted.per_contact.iter().filter(|&&n| n >= 1).count();
        let twice = accepted.per_contact.iter().filter(|&&n| n >= 2).count();
        (once, twice, accepted.per_contact.len() - once)
    }

    fn times(&self) -> Vec<Instant> {
        self.accepted.lock().expect("sink lock").times.clone()
    }
}

/// Messages per second from the first to the last of `times`, and over the middle 80%.
fn rates(times: &[Instant]) -> (f64, f64) {
    if times.len() < 10 {
        return (f64::NAN, f64::NAN);
    }
    let over = |from: usize, to: usize| (to - from) as f64 / (times[to] - times[from]).as_secs_f64();
    let last = times.len() - 1;
    (over(0, last), over(last / 10, last * 9 / 10))
}

// ---------------------------------------------------------------------------------------------
// Setup and the Herald process.

/// A SQLite file with `contacts` contacts, a verified domain and a draft broadcast to everyone.
struct Database {
    dir: tempfile::TempDir,
    url: String,
    store: SharedStore,
    workspace: WorkspaceId,
    broadcast: BroadcastId,
}

impl Database {
    async fn create(contacts: usize, dkim: DkimAlgorithm) -> Database {
        std::fs::create_dir_all(bench_dir()).expect("bench dir");
        let dir = tempfile::tempdir_in(bench_dir()).expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("herald.db").display());
        let key = herald_server::app::config::SecretKey::parse(SECRET_KEY).expect("key");
        let store = herald_store_sqlite::SqliteStore::connect(&url).await.expect("open");
        let store: SharedStore = Arc::new(store.with_secrets(herald_store::secrets::SecretKeys::new(&key.0, &[])));
        store.migrate().await.expect("migrate");
        let workspace = store.ensure_default_workspace(now()).await.expect("workspace").id;
        let started = Instant::now();
        common::contacts(&store, workspace, contacts, now()).await;
        eprintln!("  setup: {contacts} contacts written in {:.1} s", started.elapsed().as_secs_f64());
        let key = DkimKey::generate(dkim).expect("DKIM key");
        let new = NewDomain {
            name: DOMAIN.into(),
            selector: "s1".into(),
            algorithm: dkim.as_str().into(),
            private_key: key.private_key().to_owned(),
            records: json!([]),
        };
        let domain = store.create_domain(workspace, new, now()).await.expect("domain");
        let verified = DomainCheck { status: herald_domain::DomainStatus::Verified, checks: json!([]), warning: None };
        store.record_domain_check(workspace, domain.id, &verified, now()).await.expect("verified");
        // The content document as the API writes a draft: an inline email, tracking on (the
        // API's default), no topic.
        let content = json!({
            "subject": "News for {{ first_name | default: \"you\" }}", "html": HTML,
            "from": format!("Bench News <news@{DOMAIN}>"), "tracking": {"opens": true, "clicks": true},
        });
        let draft = BroadcastDraft { name: "Bench".into(), content, audience: Audience::Everyone, rate_per_hour: None };
        let broadcast = store.create_broadcast(workspace, &draft, now()).await.expect("draft").id;
        Database { dir, url, store, workspace, broadcast }
    }

    /// The broadcast's messages committed as sent.
    async fn sent(&self) -> i64 {
        let pool = sqlx::SqlitePool::connect(&self.url).await.expect("read the file");
        let sent = sqlx::query_scalar(
            "SELECT COUNT(*) FROM messages WHERE broadcast_id = ? AND status IN ('sent', 'delivered')",
        )
        .bind(self.broadcast.as_uuid())
        .fetch_one(&pool)
        .await
        .expect("count sent");
        pool.close().await;
        sent
    }

    async fn close(self) {
        self.store.close().await;
        drop(self.dir);
    }
}

/// A running `herald serve` on the database, relaying to the sink.
struct Herald {
    child: Child,
    base: String,
}

impl Herald {
    fn start(db: &Database, sink: &Sink, pool: usize, name: &str) -> Herald {
        let mut command = Command::new(env!("CARGO_BIN_EXE_herald"));
        for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("HERALD_")) {
            command.env_remove(key);
        }
        let stderr = std::fs::File::create(db.dir.path().join(format!("{name}.stderr"))).expect("stderr file");
        command
            .current_dir(db.dir.path())
            .args(["serve", "--bind", "127.0.0.1:0"])
            .env("HERALD_DATABASE_URL", &db.url)
            .env("HERALD_SECRET_KEY", SECRET_KEY)
            .env("HERALD_ADMIN_TOKEN", TOKEN)
            .env("HERALD_LOG", "warn")
            .env("HERALD_SMTP_URL", format!("smtp://127.0.0.1:{}?security=none&pool={pool}", sink.port))
            .stdout(Stdio::piped())
            .stderr(stderr);
        let mut child = command.spawn().expect("spawn herald");
        let mut stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        std::io::BufRead::read_line(&mut stdout, &mut line).expect("herald's first line");
        let base = line.trim().strip_prefix("Herald is listening on ").expect("the address line").to_owned();
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        Herald { child, base }
    }

    fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).expect("pid")
    }

    /// `VmRSS` and `VmHWM` in MB.
    fn memory(&self) -> (f64, f64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
                .map_or(f64::NAN, |kb| kb / 1024.0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// Starts the broadcast through the API.
    async fn send(&self, broadcast: BroadcastId) {
        let url = format!("{}/api/v1/broadcasts/{broadcast}/send", self.base);
        let response =
            reqwest::Client::new().post(url).bearer_auth(TOKEN).json(&json!({})).send().await.expect("send call");
        let status = response.status();
        assert!(status.is_success(), "send: {status} {}", response.text().await.unwrap_or_default());
    }

    fn signal(&mut self, signal: Signal) {
        kill(Pid::from_raw(self.pid()), signal).expect("signal herald");
        let _ = self.child.wait();
    }
}

impl Drop for Herald {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until the sink has `target` messages, no message came for `stall`, or `limit` passed;
/// samples the sink's count and Herald's RSS every second: (seconds, accepted, RSS MB).
async fn wait(sink: &Sink, herald: &Herald, target: usize, stall: Duration, limit: Duration) -> Vec<(f64, usize, f64)> {
    let began = Instant::now();
    let mut samples = Vec::new();
    let mut last = (0, Instant::now());
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let count = sink.count();
        samples.push((began.elapsed().as_secs_f64(), count, herald.memory().0));
        if count > last.0 {
            last = (count, Instant::now());
        }
        if count >= target || last.1.elapsed() > stall || began.elapsed() > limit {
            return samples;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The scenarios.

/// The sink fed by `SmtpClient` alone: `count` messages like the broadcast's, composed and
/// signed beforehand, sent at once through `pool` connections. Messages per second (overall,
/// middle 80%).
async fn baseline(db: &Database, pool: usize, count: usize) -> (f64, f64) {
    let sink = Sink::start(0).await;
    let (domain, key) = db.store.domain_key(db.workspace, DOMAIN).await.expect("key").expect("domain");
    let signer = herald_server::delivery::email::signer(&domain, &key).expect("signer");
    let messages: Vec<Composed> = (0..count)
        .map(|n| {
            let outgoing = Outgoing {
                message_id: format!("raw{n}.bench@{DOMAIN}"),
                date: time::OffsetDateTime::now_utc(),
                from: Mailbox::new(Some("Bench News"), format!("news@{DOMAIN}")),
                to: Mailbox::new(None::<String>, format!("raw{n}@bench.test")),
                reply_to: None,
                subject: "News for you".to_owned(),
                html: HTML.replace("{{ first_name | default: \"there\" }}", "there"),
                text: "Hi there, this month: a new editor, faster imports and the full changelog.".to_owned(),
                unsubscribe: Some(Unsubscribe {
                    url: format!("http://127.0.0.1/unsubscribe/{}", "A".repeat(64)),
                    mailto: Some(format!("mailto:news@{DOMAIN}?subject=unsubscribe")),
                }),
                envelope_from: None,
                herald_token: None,
            };
            compose(&outgoing, Some(&signer), time::OffsetDateTime::now_utc()).expect("compose")
        })
        .collect();
    let settings = SmtpSettings {
        host: "127.0.0.1".into(),
        port: sink.port,
        security: Security::None,
        pool_size: pool as u32,
        hello_name: Some("bench.test".into()),
        ..SmtpSettings::default()
    };
    let client = SmtpClient::new(&settings).expect("client");
    let mut sends = tokio::task::JoinSet::new();
    for message in messages {
        let client = client.clone();
        sends.spawn(async move { client.send(&message).await.map(|_| ()) });
    }
    while let Some(sent) = sends.join_next().await {
        sent.expect("send task").expect("sink accepted");
    }
    rates(&sink.times())
}

/// The broadcast to all of `db`'s contacts, measured; prints its table rows.
async fn run(db: &Database, contacts: usize, pool: usize, limit: Duration, baseline: (f64, f64)) {
    let sink = Sink::start(contacts).await;
    let mut herald = Herald::start(db, &sink, pool, "run");
    let (idle_rss, _) = herald.memory();
    let called = Instant::now();
    herald.send(db.broadcast).await;
    let answered = called.elapsed();
    let samples = wait(&sink, &herald, contacts, Duration::from_secs(60), limit).await;
    let (_, hwm) = herald.memory();
    herald.signal(Signal::SIGKILL);
    let times = sink.times();
    let first = times.first().map_or(f64::NAN, |t| (*t - called).as_secs_f64());
    let (overall, middle) = rates(&times);
    let (reached, twice, _) = sink.standing();
    let rss: Vec<f64> = samples.iter().map(|s| s.2).filter(|r| r.is_finite()).collect();
    let mut sorted = rss.clone();
    sorted.sort_by(f64::total_cmp);
    println!("\n## Broadcast to {contacts} contacts (SQLite, release `herald`, pool {pool})\n");
    println!("| measure | value | target |");
    println!("| --- | ---: | --- |");
    println!("| send call answered | {:.0} ms | — |", answered.as_secs_f64() * 1000.0);
    println!("| send call → first message accepted | {first:.2} s | < 5 s |");
    println!("| messages/s, first to last acceptance | {overall:.0}/s | ≥ 2,000/s |");
    println!("| messages/s, middle 80% | {middle:.0}/s | ≥ 2,000/s |");
    println!("| `SmtpClient` alone, same pool (baseline) | {:.0}/s (middle 80% {:.0}/s) | — |", baseline.0, baseline.1);
    println!("| broadcast / baseline | {:.0}% | — |", 100.0 * middle / baseline.1);
    println!(
        "| RSS: idle before the send; p50, max while sending; `VmHWM` | {idle_rss:.0} MB; {:.0}, {:.0} MB; {hwm:.0} MB | flat, < 300 MB |",
        percentile(&sorted, 0.5),
        sorted.last().copied().unwrap_or(f64::NAN)
    );
    println!(
        "| contacts reached / accepted twice | {reached} of {contacts} in {:.0} s / {twice} | all, 0 |",
        samples.last().map_or(0.0, |s| s.0)
    );
    let marks: Vec<String> =
        samples.iter().step_by(10).map(|(at, count, rss)| format!("{at:.0} s: {count} sent, {rss:.0} MB")).collect();
    println!("\nevery 10 s: {}", marks.join("; "));
}

/// The broadcast SIGKILLed once a random share of it is accepted, restarted, let finish.
async fn killed(db: &Database, contacts: usize, pool: usize) {
    let sink = Sink::start(contacts).await;
    let share = rand::random_range(0.1..0.9);
    let mut herald = Herald::start(db, &sink, pool, "first");
    herald.send(db.broadcast).await;
    let at = (contacts as f64 * share) as usize;
    wait(&sink, &herald, at, Duration::from_secs(60), Duration::from_secs(3600)).await;
    herald.signal(Signal::SIGKILL);
    let accepted = sink.count();
    let sent = db.sent().await;
    let window = accepted.saturating_sub(usize::try_from(sent).unwrap_or(0));
    let restarted_at = Instant::now();
    let mut restarted = Herald::start(db, &sink, pool, "restarted");
    let samples = wait(&sink, &restarted, contacts, Duration::from_secs(90), Duration::from_secs(3600)).await;
    // Every contact reached is not the end: the messages in flight at the kill are sent again
    // once the killed process's leases expire. Wait until every message is committed sent.
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut sent_after = db.sent().await;
    while sent_after < contacts as i64 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(1)).await;
        sent_after = db.sent().await;
    }
    let finished = restarted_at.elapsed().as_secs_f64();
    restarted.signal(Signal::SIGTERM);
    let (reached, twice, missed) = sink.standing();
    println!("\n## SIGKILL mid-broadcast and restart, {contacts} contacts (SQLite, pool {pool})\n");
    println!("| measure | value | target |");
    println!("| --- | ---: | --- |");
    println!("| killed after | {accepted} accepted ({:.0}% of the audience) | random 10–90% |", share * 100.0);
    println!(
        "| in flight at the kill (accepted by the sink, `sent` not committed) | {window} | the documented window |"
    );
    println!(
        "| restart → every contact reached; → every message committed sent | {:.1} s; {finished:.1} s | — |",
        samples.last().map_or(f64::NAN, |s| s.0)
    );
    println!("| contacts mailed twice | {twice} | ≤ the window ({window}) |");
    println!("| contacts missed | {missed} | 0 |");
    println!(
        "| contacts reached; messages committed sent at the end | {reached}; {sent_after} | {contacts}; {contacts} |"
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` would pass other flags.
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    let contacts = env_list("HERALD_BENCH_CONTACTS", "1000000")[0];
    let kill_contacts = env_list("HERALD_BENCH_KILL_CONTACTS", &contacts.to_string())[0];
    let pool = env_list("HERALD_BENCH_POOL", "8")[0];
    let messages = env_list("HERALD_BENCH_BASELINE", "20000")[0];
    let limit = Duration::from_secs(env_list("HERALD_BENCH_SECONDS", "3600")[0] as u64);
    let dkim = match std::env::var("HERALD_BENCH_DKIM").as_deref() {
        Ok("rsa") => DkimAlgorithm::Rsa2048,
        _ => DkimAlgorithm::Ed25519,
    };
    let only = std::env::var("HERALD_BENCH_ONLY").unwrap_or_default();
    let load = || std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average at the start: {}", load().trim());
    if only.is_empty() || only == "run" {
        let db = Database::create(contacts, dkim).await;
        let baseline = baseline(&db, pool, messages).await;
        run(&db, contacts, pool, limit, baseline).await;
        db.close().await;
        println!("\nload average: {}", load().trim());
    }
    if only.is_empty() || only == "kill" {
        let db = Database::create(kill_contacts, dkim).await;
        killed(&db, kill_contacts, pool).await;
        db.close().await;
        println!("\nload average: {}", load().trim());
    }
}
