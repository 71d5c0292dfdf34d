//! What the server's benchmarks share: their `HERALD_BENCH_*` number knobs, percentiles, and
//! contacts, journeys and sent messages written straight into the store (setup, not what is
//! measured).

#![allow(dead_code)] // each benchmark binary uses a different part

use herald_domain::{CampaignId, ContactId, JobKind, JourneyId, MessageId, NewJob, Timestamp, WorkspaceId};
use herald_store::campaign::{CampaignWork, NewJourney};
use herald_store::{ImportOutcome, NewContact, SharedStore};
use serde_json::json;

/// Rows per setup transaction.
const CHUNK: usize = 20_000;

/// A comma separated list of numbers from the environment (`_` allowed as a separator).
pub fn env_list(name: &str, default: &str) -> Vec<usize> {
    std::env::var(name)
        .unwrap_or_else(|_| default.to_owned())
        .split(',')
        .map(|n| n.trim().replace('_', "").parse().unwrap_or_else(|_| panic!("{name}: not a number list")))
        .collect()
}

/// The `p` quantile of `sorted` (nearest rank).
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(index).copied().unwrap_or(f64::NAN)
}

/// `count` contacts `c0@bench.test`, `c1@bench.test`, …, imported in chunks; their ids.
pub async fn contacts(store: &SharedStore, workspace: WorkspaceId, count: usize, now: Timestamp) -> Vec<ContactId> {
    let mut ids = Vec::with_capacity(count);
    for start in (0..count).step_by(CHUNK) {
        let rows: Vec<NewContact> = (start..(start + CHUNK).min(count))
            .map(|n| NewContact {
                identity: herald_domain::Identity {
                    email: Some(herald_domain::EmailAddress::parse(&format!("c{n}@bench.test")).expect("email")),
                    ..Default::default()
                },
                ..NewContact::default()
            })
            .collect();
        for outcome in store.import_contacts(workspace, &rows, now).await.expect("import") {
            match outcome {
                Ok(ImportOutcome::Created(id) | ImportOutcome::Updated(id)) => ids.push(id),
                Err(e) => panic!("import: {e}"),
            }
        }
    }
    ids
}

/// One journey per contact at step 0 of `campaign`, the `n`th due at `run_at(n)`, with their
/// step jobs, as the trigger would write them; their ids in the contacts' order.
pub async fn enrol(
    store: &SharedStore,
    workspace: WorkspaceId,
    campaign: CampaignId,
    contacts: &[ContactId],
    run_at: impl Fn(usize) -> Timestamp,
    now: Timestamp,
) -> Vec<JourneyId> {
    let mut ids = Vec::with_capacity(contacts.len());
    for (chunk_index, chunk) in contacts.chunks(CHUNK).enumerate() {
        let mut work = CampaignWork::default();
        for (offset, contact) in chunk.iter().enumerate() {
            let id = JourneyId::from_uuid(herald_store::new_uuid(now));
            let run_at = run_at(chunk_index * CHUNK + offset);
            work.journeys.push(NewJourney::at_start(id, campaign, *contact, run_at));
            work.jobs.push(NewJob::new(
                JobKind::JourneyStep,
                json!({"journey": id, "step": 0, "run_at": run_at}),
                run_at,
            ));
            ids.push(id);
        }
        store.commit_campaign_work(workspace, None, &work, now).await.expect("enrol");
    }
    ids
}

/// Messages per setup transaction, as the journey runner commits them.
const MESSAGE_CHUNK: usize = 5_000;

/// One sent email per journey (in the outbox, as an email step with no relay records it),
/// committed in chunks as the runner commits them; their ids in the journeys' order.
pub async fn sent_messages(
    store: &SharedStore,
    workspace: WorkspaceId,
    campaign: CampaignId,
    journeys: &[(JourneyId, ContactId)],
    now: Timestamp,
) -> Vec<MessageId> {
    let mut ids = Vec::with_capacity(journeys.len());
    for chunk in journeys.chunks(MESSAGE_CHUNK) {
        let mut work = CampaignWork::default();
        for (n, (journey, contact)) in chunk.iter().enumerate() {
            let id = MessageId::from_uuid(herald_store::new_uuid(now));
            work.messages.push(herald_domain::Message {
                id,
                workspace_id: workspace,
                campaign_id: Some(campaign),
                journey_id: Some(*journey),
                step: "hello".into(),
                contact_id: *contact,
                status: herald_domain::MessageStatus::Sent,
                status_reason: None,
                to: format!("c{n}@bench.test"),
                from: "Acme <a@acme.test>".into(),
                reply_to: None,
                subject: "Hi".into(),
                html: "<p>Hi there, this is the body of a short email.</p>".into(),
                text: "Hi there, this is the body of a short email.".into(),
                headers: serde_json::Map::new(),
                warnings: Vec::new(),
                transport: "outbox".into(),
                internet_message_id: format!("{id}@acme.test"),
                attempts: 1,
                reply: None,
                bounce: None,
                tracking: herald_domain::Tracking::default(),
                topic: None,
                created_at: now,
                sent_at: Some(now),
            });
            ids.push(id);
        }
        store.commit_campaign_work(workspace, None, &work, now).await.expect("messages");
    }
    ids
}

/// A fresh store for a benchmark: the PostgreSQL database of `HERALD_TEST_POSTGRES_URL` with
/// `HERALD_BENCH_BACKEND=postgres`, else a new SQLite file under `target/<folder>/` (not /tmp,
/// which may be a tmpfs where fsync is free), deleted with the returned directory.
pub async fn bench_store(folder: &str) -> (SharedStore, Option<tempfile::TempDir>) {
    if std::env::var("HERALD_BENCH_BACKEND").as_deref() == Ok("postgres") {
        let url = std::env::var("HERALD_TEST_POSTGRES_URL").expect("HERALD_TEST_POSTGRES_URL");
        let store: SharedStore =
            std::sync::Arc::new(herald_store_postgres::PgStore::connect(&url).await.expect("connect"));
        store.migrate().await.expect("migrate");
        return (store, None);
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target").join(folder);
    std::fs::create_dir_all(&dir).expect("bench dir");
    let dir = tempfile::tempdir_in(dir).expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("herald.db").display());
    let store: SharedStore = std::sync::Arc::new(herald_store_sqlite::SqliteStore::connect(&url).await.expect("open"));
    store.migrate().await.expect("migrate");
    (store, Some(dir))
}

/// The allocator `herald serve` runs with, so Herald measured in this process allocates as it
/// does there.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
