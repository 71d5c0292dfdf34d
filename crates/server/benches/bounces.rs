//! Bounce intake benchmark: delivery status notifications per second through the mail
//! listener on SQLite (target: at least 1,000/s).
//!
//! N messages (default 5,000) are sent to the embedded outbox by a one-email campaign, then one
//! hard-bounce DSN per message (the `dsn-hard` sample, addressed to the message's return path)
//! is sent to the listener over C SMTP connections at once (default 16), each connection one
//! transaction after another, as a receiving MTA's queue would. Measured: from the first
//! `MAIL FROM` to the last `250` after `DATA`, every DSN parsed, its token checked and the
//! message's activity committed (bounced, suppressed, event appended). Checked afterwards: all
//! N messages are `bounced`.
//!
//! Run: `cargo bench -p herald-server --bench bounces` (env `HERALD_BENCH_MESSAGES`,
//! `HERALD_BENCH_CONNECTIONS`). SQLite files go under `target/bench-bounces/`.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{contacts, enrol, env_list, percentile};
use herald_domain::{CampaignState, MessageId, MessageStatus, PageRequest, Timestamp, WorkspaceId};
use herald_server::app::App;
use herald_server::app::config::WorkerSettings;
use herald_server::clock::{SharedClock, SystemClock};
use herald_server::delivery::email::bounces::listener::{self, ListenerLimits};
use herald_server::delivery::email::bounces::token;
use herald_server::delivery::email::{Email, EmailSettings};
use herald_store::SharedStore;
use herald_store::campaign::MessageFilter;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

const SAMPLE: &str = include_str!("../../email/src/report/samples/dsn-hard.eml");

async fn fresh_store() -> (SharedStore, tempfile::TempDir) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-bounces");
    std::fs::create_dir_all(&root).expect("bench dir");
    let dir = tempfile::tempdir_in(root).expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("herald.db").display());
    let store: SharedStore = Arc::new(herald_store_sqlite::SqliteStore::connect(&url).await.expect("open"));
    store.migrate().await.expect("migrate");
    (store, dir)
}

/// `count` messages sent to the outbox; their ids and `Message-ID`s.
async fn sent_messages(
    store: &SharedStore,
    app: &App,
    workspace: WorkspaceId,
    count: usize,
) -> Vec<(MessageId, String)> {
    let start = Timestamp::from_offset_date_time(time::OffsetDateTime::now_utc());
    let document = json!({
        "name": "Bench",
        "trigger": {"type": "manual"},
        "steps": [{"id": "hello", "type": "email", "from": "Acme <news@mail.acme.test>",
                   "subject": "Hello", "html": "<p>Hi</p>"}]
    });
    let campaign = store.create_campaign(workspace, "Bench", &document, start).await.expect("campaign");
    store
        .set_campaign_state(workspace, campaign.id, &[CampaignState::Draft], CampaignState::Active, start)
        .await
        .expect("activate");
    let people = contacts(store, workspace, count, start).await;
    enrol(store, workspace, campaign.id, &people, |_| start, start).await;
    app.worker.run_until_idle().await.expect("send");
    messages(store, workspace, None).await
}

/// The workspace's messages (with this status), ids and `Message-ID`s.
async fn messages(
    store: &SharedStore,
    workspace: WorkspaceId,
    status: Option<MessageStatus>,
) -> Vec<(MessageId, String)> {
    let filter = MessageFilter { status, ..MessageFilter::default() };
    let mut all = Vec::new();
    let mut page = PageRequest::first(PageRequest::<MessageId>::MAX_LIMIT);
    loop {
        let found = store.list_messages(workspace, &filter, page).await.expect("messages");
        let Some(last) = found.items.last().map(|m| m.id) else { break };
        all.extend(found.items.into_iter().map(|m| (m.id, m.internet_message_id)));
        page = PageRequest { after: Some(last), limit: PageRequest::<MessageId>::MAX_LIMIT };
    }
    all
}

/// Reads one reply (all its lines); returns its code.
async fn reply(reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> u16 {
    let mut line = String::new();
    loop {
        line.clear();
        reader.read_line(&mut line).await.expect("reply");
        if line.as_bytes().get(3) != Some(&b'-') {
            return line.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0);
        }
    }
}

/// Sends each DSN as one transaction on one connection; returns each transaction's seconds.
async fn send_all(port: u16, dsns: Vec<(String, String)>) -> Vec<f64> {
    let stream = TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    assert_eq!(reply(&mut read).await, 220);
    write.write_all(b"EHLO bench.test\r\n").await.expect("ehlo");
    assert_eq!(reply(&mut read).await, 250);
    let mut times = Vec::with_capacity(dsns.len());
    for (to, dsn) in dsns {
        let began = Instant::now();
        write.write_all(b"MAIL FROM:<>\r\n").await.expect("mail");
        assert_eq!(reply(&mut read).await, 250);
        write.write_all(format!("RCPT TO:<{to}>\r\n").as_bytes()).await.expect("rcpt");
        assert_eq!(reply(&mut read).await, 250);
        write.write_all(b"DATA\r\n").await.expect("data");
        assert_eq!(reply(&mut read).await, 354);
        write.write_all(dsn.as_bytes()).await.expect("message");
        write.write_all(b"\r\n.\r\n").await.expect("end");
        assert_eq!(reply(&mut read).await, 250);
        times.push(began.elapsed().as_secs_f64());
    }
    write.write_all(b"QUIT\r\n").await.expect("quit");
    times
}

async fn dsn_for(email: &Email, workspace: WorkspaceId, id: MessageId, internet_id: &str) -> (String, String) {
    let token = email.return_token(workspace, id).await.expect("token");
    let return_path = token::address(&token, "mail.acme.test");
    let dsn = SAMPLE
        .replace("bounces+sampletoken@bounces.mail.acme.test", &return_path)
        .replace("X-Herald-Message: sampletoken", &format!("X-Herald-Message: {token}"))
        .replace("msg_sample@mail.acme.test", internet_id)
        .replace("dsn-0001@mx.example.org", &format!("dsn-{id}@mx.example.org"))
        .replace('\n', "\r\n");
    (return_path, dsn)
}

#[tokio::main]
async fn main() {
    let count = env_list("HERALD_BENCH_MESSAGES", "5000")[0];
    let connections = env_list("HERALD_BENCH_CONNECTIONS", "16")[0].max(1);
    let (store, _dir) = fresh_store().await;
    let clock: SharedClock = Arc::new(SystemClock);
    let workspace = store.ensure_default_workspace(clock.now()).await.expect("workspace").id;
    let app = App::new(
        store.clone(),
        clock,
        "http://127.0.0.1:1",
        WorkerSettings::default(),
        256 * 1024,
        EmailSettings::default(),
    )
    .expect("app");
    let setup = Instant::now();
    let sent = sent_messages(&store, &app, workspace, count).await;
    assert_eq!(sent.len(), count, "every message sent");
    let email = app.state.email.email.clone();
    let mut shares: Vec<Vec<(String, String)>> = vec![Vec::new(); connections];
    for (n, (id, internet_id)) in sent.iter().enumerate() {
        shares[n % connections].push(dsn_for(&email, workspace, *id, internet_id).await);
    }
    eprintln!("  setup ({count} messages sent, DSNs built): {:.1} s", setup.elapsed().as_secs_f64());

    let smtp = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = smtp.local_addr().expect("address").port();
    let stop = CancellationToken::new();
    let limits = ListenerLimits { max_connections: connections + 1, ..ListenerLimits::default() };
    tokio::spawn(listener::serve(email, smtp, limits, stop.clone()));
    let began = Instant::now();
    let senders: Vec<_> = shares.into_iter().map(|share| tokio::spawn(send_all(port, share))).collect();
    let mut times = Vec::with_capacity(count);
    for sender in senders {
        times.extend(sender.await.expect("sender"));
    }
    let elapsed = began.elapsed();
    stop.cancel();

    let bounced = messages(&store, workspace, Some(MessageStatus::Bounced)).await.len();
    assert_eq!(bounced, count, "every DSN bounced its message");
    times.sort_by(f64::total_cmp);
    let ms = |p: f64| percentile(&times, p) * 1000.0;
    println!(
        "bounce intake, SQLite, {count} DSNs over {connections} SMTP connections: {:.0} DSNs/s \
         (target >= 1000); per transaction p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({:.1} s in all)",
        count as f64 / elapsed.as_secs_f64(),
        ms(0.5),
        ms(0.99),
        ms(1.0),
        elapsed.as_secs_f64(),
    );
    // Give the listener's connections a moment to see the cancellation before the runtime ends.
    tokio::time::sleep(Duration::from_millis(10)).await;
}
