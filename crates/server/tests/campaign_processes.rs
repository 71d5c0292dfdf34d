//! Journeys run by real `herald serve` processes survive SIGKILL at any point with no step
//! repeated to visible effect: on SQLite (kill and restart one node) and on PostgreSQL (two
//! nodes, one killed midway). SMTP delivery killed mid-run delivers every message, repeating
//! only those the relay had accepted before their `sent` was committed (the documented window),
//! with the same `Message-ID`. Waits are seconds long and the clock is the system's, so these
//! tests use deadlines, never timing assertions.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::process::{Server, herald};
use herald_domain::{CampaignState, ContactId, JobKind, JourneyId, NewJob, PageRequest, Timestamp, WorkspaceId};
use herald_store::campaign::{CampaignWork, MessageFilter, NewJourney};
use herald_store::{ImportOutcome, NewContact, SharedStore};
use nix::sys::signal::Signal;
use serde_json::json;

const CONTACTS: usize = 300;
const EMAILS: usize = 3;

fn now() -> Timestamp {
    Timestamp::from_offset_date_time(time::OffsetDateTime::now_utc())
}

/// An active three-email campaign with `CONTACTS` journeys enrolled and due now.
async fn enrolled(store: &SharedStore) -> (WorkspaceId, herald_domain::CampaignId) {
    let document = json!({
        "name": "Sequence",
        "trigger": {"type": "manual"},
        "steps": [
            {"id": "one", "type": "email", "from": "a@acme.test", "subject": "One", "html": "<p>1</p>"},
            {"id": "wait-1", "type": "wait", "duration": "2s"},
            {"id": "two", "type": "email", "from": "a@acme.test", "subject": "Two", "html": "<p>2</p>"},
            {"id": "wait-2", "type": "wait", "duration": "2s"},
            {"id": "three", "type": "email", "from": "a@acme.test", "subject": "Three", "html": "<p>3</p>"}
        ]
    });
    enrol(store, &document, CONTACTS).await
}

/// An active campaign of `document` with `count` journeys enrolled and due now.
async fn enrol(
    store: &SharedStore,
    document: &serde_json::Value,
    count: usize,
) -> (WorkspaceId, herald_domain::CampaignId) {
    store.migrate().await.expect("migrate");
    let workspace = store.ensure_default_workspace(now()).await.expect("workspace").id;
    let campaign = store.create_campaign(workspace, "Sequence", document, now()).await.expect("campaign");
    store
        .set_campaign_state(workspace, campaign.id, &[CampaignState::Draft], CampaignState::Active, now())
        .await
        .expect("activate");
    let contacts: Vec<NewContact> = (0..count)
        .map(|n| NewContact {
            identity: herald_domain::Identity {
                email: Some(herald_domain::EmailAddress::parse(&format!("c{n}@example.com")).expect("email")),
                ..Default::default()
            },
            ..NewContact::default()
        })
        .collect();
    let imported = store.import_contacts(workspace, &contacts, now()).await.expect("import");
    let mut work = CampaignWork::default();
    for outcome in imported {
        let Ok(ImportOutcome::Created(contact)) = outcome else { panic!("not created: {outcome:?}") };
        let id = JourneyId::from_uuid(herald_store::new_uuid(now()));
        let at = now();
        work.journeys.push(journey(id, campaign.id, contact, at));
        work.jobs.push(NewJob::new(JobKind::JourneyStep, json!({"journey": id, "step": 0, "run_at": at}), at));
    }
    store.commit_campaign_work(workspace, None, &work, now()).await.expect("enrol");
    (workspace, campaign.id)
}

fn journey(id: JourneyId, campaign: herald_domain::CampaignId, contact: ContactId, at: Timestamp) -> NewJourney {
    NewJourney {
        id,
        campaign_id: campaign,
        version: 1,
        contact_id: contact,
        event_id: None,
        exclusive: true,
        custom_variables: serde_json::Map::new(),
        goal_until: None,
        step: 0,
        run_at: at,
    }
}

fn start_node(url: &str, dir: &std::path::Path, name: &str) -> Server {
    start_node_with(url, dir, name, &[])
}

fn start_node_with(url: &str, dir: &std::path::Path, name: &str, env: &[(&str, String)]) -> Server {
    let mut command = herald(dir);
    command
        .args(["serve", "--bind", "127.0.0.1:0"])
        .env("HERALD_DATABASE_URL", url)
        .env("HERALD_JOB_LEASE_SECS", "2")
        .env("HERALD_QUEUE_POLL_MS", "100")
        .env("HERALD_LOG", "warn")
        .envs(env.iter().map(|(k, v)| (k, v)));
    Server::start(command, dir.join(format!("{name}.stderr")))
}

/// Messages per journey and subject.
async fn messages(store: &SharedStore, workspace: WorkspaceId) -> HashMap<(JourneyId, String), usize> {
    let mut counts = HashMap::new();
    let mut page = PageRequest::first(500);
    loop {
        let found = store.list_messages(workspace, &MessageFilter::default(), page).await.expect("messages");
        for m in &found.items {
            let journey = m.journey_id.expect("every message here is a campaign's");
            *counts.entry((journey, m.subject.clone())).or_insert(0) += 1;
        }
        match (found.items.last(), found.next_cursor) {
            (Some(last), Some(_)) => page = PageRequest { after: Some(last.id), limit: 500 },
            _ => return counts,
        }
    }
}

async fn wait_for_messages(store: &SharedStore, workspace: WorkspaceId, at_least: usize, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let sent: usize = messages(store, workspace).await.values().sum();
        if sent >= at_least {
            return;
        }
        assert!(Instant::now() < deadline, "only {sent} of {at_least} messages within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every journey completed with each email exactly once.
async fn assert_each_email_once(store: &SharedStore, workspace: WorkspaceId, campaign: herald_domain::CampaignId) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let stats = store.campaign_stats(workspace, campaign).await.expect("stats");
        if stats.completed == CONTACTS as u64 {
            for step in ["one", "two", "three"] {
                assert_eq!(stats.steps[step]["sent"], CONTACTS as u64, "{step}: {stats:?}");
            }
            break;
        }
        assert!(Instant::now() < deadline, "journeys did not complete: {stats:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let counts = messages(store, workspace).await;
    assert_eq!(counts.len(), CONTACTS * EMAILS, "every journey got every email");
    assert!(counts.values().all(|&n| n == 1), "no email twice: {:?}", counts.values().filter(|&&n| n > 1).count());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_node_killed_and_restarted_repeats_no_step() {
    let dir = tempfile::tempdir().expect("dir");
    let url = format!("sqlite://{}", dir.path().join("herald.db").display());
    let store: SharedStore = std::sync::Arc::new(herald_store_sqlite::SqliteStore::connect(&url).await.expect("open"));
    let (workspace, campaign) = enrolled(&store).await;
    let mut node = start_node(&url, dir.path(), "first");
    // Kill it while the first emails go out and the second ones fall due.
    wait_for_messages(&store, workspace, CONTACTS / 2, Duration::from_secs(60)).await;
    node.signal(Signal::SIGKILL);
    assert!(!node.wait(Duration::from_secs(10)).success());
    let mut restarted = start_node(&url, dir.path(), "restarted");
    assert_each_email_once(&store, workspace, campaign).await;
    restarted.signal(Signal::SIGTERM);
    assert!(restarted.wait(Duration::from_secs(15)).success(), "{}", restarted.stderr());
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_postgres_nodes_run_each_step_once_when_one_is_killed() {
    let db = herald_store_postgres::test_support::fresh_database().await;
    let store: SharedStore =
        std::sync::Arc::new(herald_store_postgres::PgStore::connect(db.url()).await.expect("connect"));
    let (workspace, campaign) = enrolled(&store).await;
    let dir = tempfile::tempdir().expect("dir");
    let mut victim = start_node(db.url(), dir.path(), "victim");
    let mut survivor = start_node(db.url(), dir.path(), "survivor");
    wait_for_messages(&store, workspace, CONTACTS + CONTACTS / 2, Duration::from_secs(60)).await;
    victim.signal(Signal::SIGKILL);
    assert!(!victim.wait(Duration::from_secs(10)).success());
    assert_each_email_once(&store, workspace, campaign).await;
    survivor.signal(Signal::SIGTERM);
    assert!(survivor.wait(Duration::from_secs(15)).success(), "{}", survivor.stderr());
    store.close().await;
}

/// The `Message-ID` header of a received message.
fn message_id(data: &[u8]) -> String {
    let text = String::from_utf8_lossy(data);
    let line = text.lines().find(|l| l.to_ascii_lowercase().starts_with("message-id:")).expect("Message-ID");
    line["message-id:".len()..].trim().trim_matches(['<', '>']).to_owned()
}

/// Messages by status.
async fn statuses(store: &SharedStore, workspace: WorkspaceId) -> HashMap<String, Vec<herald_domain::Message>> {
    let mut by_status: HashMap<String, Vec<_>> = HashMap::new();
    let mut page = PageRequest::first(500);
    loop {
        let found = store.list_messages(workspace, &MessageFilter::default(), page).await.expect("messages");
        let next = found.next_cursor.is_some().then(|| found.items.last().map(|m| m.id)).flatten();
        for m in found.items {
            by_status.entry(m.status.as_str().to_owned()).or_default().push(m);
        }
        match next {
            Some(after) => page = PageRequest { after: Some(after), limit: 500 },
            None => return by_status,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_delivery_killed_mid_run_delivers_every_message_repeating_only_the_window() {
    use herald_email::testing::smtp::SmtpSink;
    const MESSAGES: usize = 2_000;
    let sink = SmtpSink::start().expect("smtp sink");
    let dir = tempfile::tempdir().expect("dir");
    let url = format!("sqlite://{}", dir.path().join("herald.db").display());
    // The DKIM key it stores is sealed with the key the nodes run with.
    let store = herald_store_sqlite::SqliteStore::connect(&url).await.expect("open");
    let store: SharedStore = std::sync::Arc::new(store.with_secrets(common::process::secret_keys()));
    let document = json!({
        "name": "Announcement",
        "trigger": {"type": "manual"},
        "steps": [{"type": "email", "from": "News <news@mail.acme.test>", "subject": "Hello {{ email }}", "html": "<p>Hi</p>"}]
    });
    let (workspace, _) = enrol(&store, &document, MESSAGES).await;
    common::process::verified_domain(&store, workspace).await;

    let env = [("HERALD_SMTP_URL", format!("smtp://127.0.0.1:{}?security=none&pool=8", sink.port()))];
    let mut node = start_node_with(&url, dir.path(), "first", &env);
    let deadline = Instant::now() + Duration::from_secs(120);
    while sink.count() < MESSAGES / 3 {
        assert!(Instant::now() < deadline, "only {} messages reached the relay", sink.count());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    node.signal(Signal::SIGKILL);
    assert!(!node.wait(Duration::from_secs(10)).success());
    // The window: accepted by the relay (the sink stores a message before it answers 250),
    // not committed as sent.
    let committed: std::collections::HashSet<String> = statuses(&store, workspace)
        .await
        .remove("sent")
        .unwrap_or_default()
        .into_iter()
        .map(|m| m.internet_message_id)
        .collect();
    let accepted_at_kill: Vec<String> = sink.received().iter().map(|r| message_id(&r.data)).collect();
    let window: std::collections::HashSet<&String> =
        accepted_at_kill.iter().filter(|id| !committed.contains(*id)).collect();
    assert!(committed.len() >= MESSAGES / 4, "killed mid-run: {} committed", committed.len());

    let mut restarted = start_node_with(&url, dir.path(), "restarted", &env);
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let by_status = statuses(&store, workspace).await;
        let sent = by_status.get("sent").map_or(0, Vec::len);
        if sent == MESSAGES {
            break;
        }
        let counts: Vec<_> = by_status.iter().map(|(k, v)| (k.clone(), v.len())).collect();
        assert!(Instant::now() < deadline, "not all delivered: {counts:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    restarted.signal(Signal::SIGTERM);
    assert!(restarted.wait(Duration::from_secs(15)).success(), "{}", restarted.stderr());

    let mut received: HashMap<String, usize> = HashMap::new();
    for r in sink.wait_for(MESSAGES, Duration::from_secs(10)).await {
        *received.entry(message_id(&r.data)).or_insert(0) += 1;
    }
    let all: Vec<herald_domain::Message> = statuses(&store, workspace).await.remove("sent").unwrap_or_default();
    assert!(all.iter().all(|m| received.contains_key(&m.internet_message_id)), "every message reached the relay");
    let duplicated: Vec<&String> = received.iter().filter(|(_, n)| **n > 1).map(|(id, _)| id).collect();
    assert!(duplicated.iter().all(|id| window.contains(id)), "duplicates only from the window: {duplicated:?}");
    assert!(received.values().all(|&n| n <= 2), "at most one repeat each");
    eprintln!(
        "{MESSAGES} messages: {} accepted before the kill, {} of them not yet committed (the window), {} delivered twice",
        accepted_at_kill.len(),
        window.len(),
        duplicated.len()
    );
    store.close().await;
}
