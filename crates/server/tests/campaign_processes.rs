//! Journeys run by real `herald serve` processes survive SIGKILL at any point with no step
//! repeated to visible effect: on SQLite (kill and restart one node) and on PostgreSQL (two
//! nodes, one killed midway). Waits are seconds long and the clock is the system's, so these
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
    store.migrate().await.expect("migrate");
    let workspace = store.ensure_default_workspace(now()).await.expect("workspace").id;
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
    let campaign = store.create_campaign(workspace, "Sequence", &document, now()).await.expect("campaign");
    store
        .set_campaign_state(workspace, campaign.id, &[CampaignState::Draft], CampaignState::Active, now())
        .await
        .expect("activate");
    let contacts: Vec<NewContact> = (0..CONTACTS)
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
    let mut command = herald(dir);
    command
        .args(["serve", "--bind", "127.0.0.1:0"])
        .env("HERALD_DATABASE_URL", url)
        .env("HERALD_JOB_LEASE_SECS", "2")
        .env("HERALD_QUEUE_POLL_MS", "100")
        .env("HERALD_LOG", "warn");
    Server::start(command, dir.join(format!("{name}.stderr")))
}

/// Messages per journey and subject.
async fn messages(store: &SharedStore, workspace: WorkspaceId) -> HashMap<(JourneyId, String), usize> {
    let mut counts = HashMap::new();
    let mut page = PageRequest::first(500);
    loop {
        let found = store.list_messages(workspace, &MessageFilter::default(), page).await.expect("messages");
        for m in &found.items {
            *counts.entry((m.journey_id, m.subject.clone())).or_insert(0) += 1;
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
