//! Several `herald serve` processes sharing one PostgreSQL database drain the job queue
//! together, each job's effect applied exactly once, also when one of them is SIGKILLed
//! while holding jobs.

mod common;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use common::process::{Server, herald};
use herald_domain::{JobKind, NewJob, Timestamp};
use herald_store::SharedStore;
use herald_store_postgres::test_support::{TestDatabase, fresh_database};
use nix::sys::signal::Signal;
use serde_json::json;

const JOBS: usize = 10_000;

/// A fresh database with `JOBS` ping jobs due now in the default workspace.
async fn database_with_jobs() -> (TestDatabase, SharedStore, herald_domain::WorkspaceId) {
    let db = fresh_database().await;
    let store: SharedStore =
        std::sync::Arc::new(herald_store_postgres::PgStore::connect(db.url()).await.expect("connect"));
    store.migrate().await.expect("migrate");
    let now = Timestamp::from_offset_date_time(time::OffsetDateTime::now_utc());
    let workspace = store.ensure_default_workspace(now).await.expect("workspace");
    let jobs: Vec<NewJob> = (0..JOBS).map(|n| NewJob::new(JobKind::Ping, json!({"n": n}), now)).collect();
    store.enqueue_jobs(workspace.id, &jobs, now).await.expect("enqueue");
    (db, store, workspace.id)
}

fn start_node(db: &TestDatabase, dir: &std::path::Path, name: &str) -> Server {
    let mut command = herald(dir);
    command
        .args(["serve", "--bind", "127.0.0.1:0"])
        .env("HERALD_DATABASE_URL", db.url())
        // A short lease so jobs held by a killed node come back quickly.
        .env("HERALD_JOB_LEASE_SECS", "2")
        .env("HERALD_QUEUE_POLL_MS", "100")
        .env("HERALD_LOG", "warn");
    Server::start(command, dir.join(format!("{name}.stderr")))
}

/// Polls until no job is due, scheduled or running (a deadline, not a timing assertion).
async fn wait_until_drained(store: &SharedStore, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let now = Timestamp::from_offset_date_time(time::OffsetDateTime::now_utc());
        let stats = store.queue_stats(now).await.expect("stats");
        if stats.due + stats.scheduled + stats.running == 0 {
            assert_eq!(stats.dead, 0);
            return;
        }
        assert!(Instant::now() < deadline, "queue not drained within {limit:?}: {stats:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Asserts every job's effect was applied exactly once; returns effects per worker.
async fn assert_exactly_once(store: &SharedStore, workspace: herald_domain::WorkspaceId) -> HashMap<String, usize> {
    let records = store.ping_records(workspace).await.expect("records");
    let distinct: HashSet<_> = records.iter().map(|r| r.job_id).collect();
    assert_eq!(distinct.len(), JOBS, "every job applied");
    assert_eq!(records.len(), JOBS, "no job applied twice");
    let mut per_worker = HashMap::new();
    for record in &records {
        *per_worker.entry(record.worker.clone()).or_insert(0) += 1;
    }
    per_worker
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_drain_ten_thousand_jobs_exactly_once() {
    let (db, store, workspace) = database_with_jobs().await;
    let dir = tempfile::tempdir().expect("dir");
    let mut a = start_node(&db, dir.path(), "a");
    let mut b = start_node(&db, dir.path(), "b");
    wait_until_drained(&store, Duration::from_secs(180)).await;
    let per_worker = assert_exactly_once(&store, workspace).await;
    assert_eq!(per_worker.len(), 2, "both processes took part: {per_worker:?}");
    for node in [&mut a, &mut b] {
        node.signal(Signal::SIGTERM);
        let status = node.wait(Duration::from_secs(15));
        assert!(status.success(), "{status:?}: {}", node.stderr());
    }
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_killed_midway_loses_and_repeats_nothing() {
    let (db, store, workspace) = database_with_jobs().await;
    let dir = tempfile::tempdir().expect("dir");
    let mut victim = start_node(&db, dir.path(), "victim");
    let mut survivor = start_node(&db, dir.path(), "survivor");

    // Kill one node once a fifth of the work is done: it dies holding leased jobs.
    let deadline = Instant::now() + Duration::from_secs(120);
    while store.ping_records(workspace).await.expect("records").len() < JOBS / 5 {
        assert!(Instant::now() < deadline, "no progress");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    victim.signal(Signal::SIGKILL);
    let status = victim.wait(Duration::from_secs(10));
    assert!(!status.success(), "killed: {status:?}");

    wait_until_drained(&store, Duration::from_secs(180)).await;
    let per_worker = assert_exactly_once(&store, workspace).await;
    assert_eq!(per_worker.len(), 2, "{per_worker:?}");
    survivor.signal(Signal::SIGTERM);
    assert!(survivor.wait(Duration::from_secs(15)).success(), "{}", survivor.stderr());
    store.close().await;
}
