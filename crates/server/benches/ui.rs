//! Web UI page times at size (the bar: no page over 200 ms of server time with
//! 100,000 contacts and 1,000,000 events), by the real path: Herald serving on loopback,
//! pages fetched over HTTP with a logged-in session.
//!
//! Setup (not measured): a fresh SQLite store under `target/bench-ui/`; N contacts imported;
//! M events committed through the store's ingest (the path inbound webhooks take), in batches,
//! spread over the contacts and 20 event names, each merging `plan` and `amount` into its
//! contact's attributes; a campaign with one journey per contact (waiting a year, so nothing
//! runs), with one sent email each (in the outbox) and a webhook call each (up to 100,000);
//! and 20 more campaigns (drafts), one triggered by each event name.
//!
//! Measured: each page fetched `HERALD_BENCH_REQUESTS` times (default 20) one after another,
//! after two unmeasured fetches, from the request's start to its body's last byte. Baseline in
//! the same run: the static stylesheet and the login page (no database read).
//!
//! Run: `cargo bench -p herald-server --bench ui` (env `HERALD_BENCH_CONTACTS`, default
//! 100000; `HERALD_BENCH_EVENTS`, default 1000000; `HERALD_BENCH_REQUESTS`).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{contacts, enrol, env_list, percentile, sent_messages};
use herald_domain::Timestamp;
use herald_server::app::App;
use herald_server::app::config::WorkerSettings;
use herald_server::clock::{SharedClock, SystemClock};
use herald_server::delivery::email::EmailSettings;
use herald_store::SharedStore;
use herald_store::ingest::IngestRequest;
use serde_json::json;
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "hk_benchmark-token-0123456789abcdefghijklmnopqrstuvwxyz";
/// Events per ingest transaction during setup.
const BATCH: usize = 5_000;
/// Webhook calls recorded during setup (each its own transaction, as the delivery job opens
/// it).
const DELIVERIES: usize = 100_000;
/// The bar each page is held to.
const BAR_MS: f64 = 200.0;

fn now() -> Timestamp {
    Timestamp::from_offset_date_time(time::OffsetDateTime::now_utc())
}

fn event_name(i: usize) -> String {
    format!("event_{:02}", i % 20)
}

/// One webhook call per journey, recorded as a webhook step's delivery job opens it, 16 at a
/// time.
async fn seed_deliveries(
    store: &SharedStore,
    workspace: herald_domain::WorkspaceId,
    campaign: herald_domain::CampaignId,
    journeys: &[(herald_domain::JourneyId, herald_domain::ContactId)],
) {
    use futures::StreamExt;
    futures::stream::iter(journeys.iter().copied())
        .map(|(journey, contact)| {
            let store = store.clone();
            async move {
                let call = herald_store::webhook::NewDelivery {
                    journey_id: Some(journey),
                    campaign_id: Some(campaign),
                    contact_id: Some(contact),
                    step: Some("notify".into()),
                    campaign_webhook_id: None,
                    idempotency_key: format!("{journey}:notify"),
                    endpoint: "https://crm.example/hook".into(),
                    request: json!({"method": "POST", "url": "https://crm.example/hook", "body": {"id": contact}}),
                    call: json!({}),
                };
                store.open_delivery(workspace, &call, now()).await.expect("delivery");
            }
        })
        .buffer_unordered(16)
        .collect::<()>()
        .await;
}

async fn seed_events(
    store: &SharedStore,
    workspace: herald_domain::WorkspaceId,
    source: herald_domain::SourceId,
    people: usize,
    events: usize,
) {
    let start = now();
    for first in (0..events).step_by(BATCH) {
        let batch: Vec<IngestRequest> = (first..(first + BATCH).min(events))
            .map(|i| {
                let body = json!({"email": format!("c{}@bench.test", i % people), "event": event_name(i),
                                  "data": {"plan": if i % 3 == 0 { "pro" } else { "free" }, "amount": i}});
                let at = start - Duration::from_secs(((events - i) / 10) as u64);
                IngestRequest {
                    workspace_id: workspace,
                    source_id: source,
                    received_at: at,
                    request: herald_domain::RequestRecord {
                        method: "POST".into(),
                        content_type: Some("application/json".into()),
                        body: body.to_string().into_bytes(),
                    },
                    idempotency_key: None,
                    event: herald_domain::inbound::parse_generic(&body).expect("payload"),
                    notes: Vec::new(),
                }
            })
            .collect();
        store.ingest(&batch, now()).await.expect("ingest");
    }
}

struct Timing {
    page: String,
    p50: f64,
    p90: f64,
    max: f64,
}

async fn time_page(client: &reqwest::Client, base: &str, cookie: &str, page: &str, requests: usize) -> Timing {
    let mut millis = Vec::with_capacity(requests);
    for round in 0..requests + 2 {
        let started = Instant::now();
        let mut request = client.get(format!("{base}{page}"));
        // The login page is the no-database baseline: without a session (with one it redirects).
        if page != "/login" {
            request = request.header(reqwest::header::COOKIE, cookie);
        }
        let response = request.send().await.expect("get");
        let status = response.status();
        let body = response.bytes().await.expect("body");
        let elapsed = started.elapsed().as_secs_f64() * 1000.0;
        assert!(status.is_success(), "{page}: {status}: {}", String::from_utf8_lossy(&body));
        if round >= 2 {
            millis.push(elapsed);
        }
    }
    millis.sort_by(f64::total_cmp);
    Timing {
        page: page.to_owned(),
        p50: percentile(&millis, 0.5),
        p90: percentile(&millis, 0.9),
        max: *millis.last().expect("timed"),
    }
}

/// Logs in with the admin key like a browser: the login page's cookie and token, then the form.
async fn log_in(client: &reqwest::Client, base: &str) -> String {
    let page = client.get(format!("{base}/login")).send().await.expect("login page");
    let cookie = page
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("herald_login="))
        .expect("login cookie")
        .split(';')
        .next()
        .expect("pair")
        .to_owned();
    let html = page.text().await.expect("html");
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker).expect("csrf") + marker.len();
    let csrf = html[start..].split('"').next().expect("token");
    let form = serde_urlencoded::to_string([("csrf", csrf), ("key", TOKEN), ("next", "/events")]).expect("form");
    let response = client
        .post(format!("{base}/login"))
        .header(reqwest::header::COOKIE, cookie)
        .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .expect("login");
    response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("herald_session="))
        .expect("a session")
        .split(';')
        .next()
        .expect("pair")
        .to_owned()
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(run());
}

async fn run() {
    let people = env_list("HERALD_BENCH_CONTACTS", "100000")[0];
    let events = env_list("HERALD_BENCH_EVENTS", "1000000")[0];
    let requests = env_list("HERALD_BENCH_REQUESTS", "20")[0];
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-ui");
    std::fs::create_dir_all(&dir).expect("bench dir");
    let dir = tempfile::tempdir_in(dir).expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("herald.db").display());
    let store: SharedStore = Arc::new(herald_store_sqlite::SqliteStore::connect(&url).await.expect("open"));
    store.migrate().await.expect("migrate");
    let clock: SharedClock = Arc::new(SystemClock);
    let token = herald_domain::ApiToken::parse_supplied(TOKEN).expect("token");
    herald_server::app::bootstrap(&store, &clock, Some(&token)).await.expect("bootstrap");
    let workspace = store.ensure_default_workspace(now()).await.expect("workspace").id;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    let app = App::new(store.clone(), clock, &base, WorkerSettings::default(), 256 * 1024, EmailSettings::default())
        .expect("app");
    let shutdown = CancellationToken::new();
    // No workers: only the pages are measured.
    let server = tokio::spawn(app.serve(listener, false, Duration::from_secs(5), shutdown.clone()));
    // Redirects are not followed: the login's answer carries the session cookie.
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let source: serde_json::Value = client
        .post(format!("{base}/api/v1/sources"))
        .bearer_auth(TOKEN)
        .json(&json!({"name": "bench", "kind": "generic"}))
        .send()
        .await
        .expect("source")
        .json()
        .await
        .expect("json");
    let source = source["id"].as_str().expect("source id").parse().expect("a source id");

    let setup = Instant::now();
    let ids = contacts(&store, workspace, people, now()).await;
    eprintln!("  {people} contacts: {:.1} s", setup.elapsed().as_secs_f64());
    seed_events(&store, workspace, source, people, events).await;
    eprintln!("  {events} events: {:.1} s", setup.elapsed().as_secs_f64());
    let document = json!({"name": "Waiting", "trigger": {"type": "manual"},
        "steps": [{"id": "hello", "type": "email", "from": "Acme <a@acme.test>", "subject": "Hi", "html": "<p>Hi</p>"}]});
    let waiting = store.create_campaign(workspace, "Waiting", &document, now()).await.expect("campaign");
    let far = now() + Duration::from_secs(365 * 86_400);
    let journeys = enrol(&store, workspace, waiting.id, &ids, |_| far, now()).await;
    let journeys: Vec<_> = journeys.into_iter().zip(ids.iter().copied()).collect();
    sent_messages(&store, workspace, waiting.id, &journeys, now()).await;
    eprintln!("  {} messages: {:.1} s", journeys.len(), setup.elapsed().as_secs_f64());
    let calls = &journeys[..journeys.len().min(DELIVERIES)];
    seed_deliveries(&store, workspace, waiting.id, calls).await;
    eprintln!("  {} webhook calls: {:.1} s", calls.len(), setup.elapsed().as_secs_f64());
    for i in 0..20 {
        let name = event_name(i);
        let document = json!({"name": name, "trigger": {"type": "event", "event": name},
            "steps": [{"type": "wait", "duration": "1d"}, {"type": "email", "from": "Acme <a@acme.test>",
                       "subject": "Hi {{ first_name }}", "html": "<p>Hi</p>"}]});
        store.create_campaign(workspace, &name, &document, now()).await.expect("campaign");
    }
    eprintln!("  setup done: {:.1} s", setup.elapsed().as_secs_f64());
    let cookie = log_in(&client, &base).await;

    let first_event = store
        .list_events(workspace, &herald_store::EventFilter::default(), herald_domain::PageRequest::first(1))
        .await
        .expect("events")
        .items[0]
        .id;
    let middle = ids[people / 2];
    let message = store
        .list_messages(
            workspace,
            &herald_store::campaign::MessageFilter::default(),
            herald_domain::PageRequest::first(1),
        )
        .await
        .expect("messages");
    let message = message.items[0].id;
    let delivery = store
        .list_deliveries(
            workspace,
            &herald_store::webhook::DeliveryFilter::default(),
            herald_domain::PageRequest::first(1),
        )
        .await
        .expect("deliveries");
    let delivery = delivery.items[0].id;
    let pages = [
        "/assets/app.css".to_owned(),
        "/login".to_owned(),
        "/events".to_owned(),
        "/events?name=event_07".to_owned(),
        format!("/events?contact=c{}%40bench.test", people / 3),
        format!("/events/{first_event}"),
        "/contacts".to_owned(),
        format!("/contacts?q=c{}%40bench.test", people - 1),
        "/contacts?q=plan%3Dpro".to_owned(),
        "/contacts?q=plan%3Dnobody".to_owned(),
        format!("/contacts/{middle}"),
        "/campaigns".to_owned(),
        format!("/campaigns/{}", waiting.id),
        format!("/campaigns/{}/edit", waiting.id),
        "/campaigns/new".to_owned(),
        "/messages".to_owned(),
        "/messages?status=failed".to_owned(),
        format!("/messages?contact=c{}%40bench.test", people / 3),
        format!("/messages/{message}"),
        "/deliveries".to_owned(),
        "/deliveries?status=failed".to_owned(),
        format!("/deliveries?campaign={}&step=notify", waiting.id),
        format!("/deliveries/{delivery}"),
        "/sources".to_owned(),
        "/domains".to_owned(),
        "/settings".to_owned(),
    ];
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "\n{people} contacts, {events} events; load average {}",
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    );
    println!("\n| page | p50 | p90 | max | over {BAR_MS} ms |\n| --- | ---: | ---: | ---: | --- |");
    for page in &pages {
        let t = time_page(&client, &base, &cookie, page, requests).await;
        let over = if t.max > BAR_MS { "**yes**" } else { "no" };
        println!("| `{}` | {:.1} ms | {:.1} ms | {:.1} ms | {over} |", t.page, t.p50, t.p90, t.max);
    }
    shutdown.cancel();
    server.await.expect("server").expect("serve");
    store.close().await;
}
