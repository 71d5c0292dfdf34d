//! PostgreSQL only: what several `herald serve` processes sharing one database rely on,
//! with each "process" a separate connection pool that shares nothing with the others but
//! the database. (The conformance suite's concurrency case shares one pool; SQLite's single
//! writer serialises these cases, so only this backend needs them.)

use std::collections::HashSet;
use std::time::Duration;

use herald_domain::{ApiToken, JobKind, NewJob, PageRequest, Timestamp};
use herald_store::{ClaimRequest, JobStore, Store, StoreError, WorkspaceStore};
use herald_store_postgres::PgStore;
use herald_store_postgres::test_support::{TestDatabase, fresh_database};
use serde_json::json;

/// The suite's timeline starts here (2026-01-01T00:00:00Z), as in the conformance suite.
fn at(secs: u64) -> Timestamp {
    Timestamp::from_unix_millis(1_767_225_600_000) + Duration::from_secs(secs)
}

/// `n` stores on one fresh database, each with its own small pool, all migrated
/// concurrently as processes starting together would.
async fn processes(n: usize) -> (Vec<PgStore>, TestDatabase) {
    let db = fresh_database().await;
    let mut stores = Vec::new();
    for _ in 0..n {
        stores.push(PgStore::connect_with(db.url(), 4).await.expect("connect"));
    }
    let migrations: Vec<_> = stores
        .iter()
        .map(|store| {
            let store = store.clone();
            tokio::spawn(async move { store.migrate().await })
        })
        .collect();
    for migration in migrations {
        migration.await.expect("task").expect("concurrent migrate");
    }
    (stores, db)
}

async fn close(stores: Vec<PgStore>) {
    for store in stores {
        store.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn claims_from_separate_pools_never_overlap() {
    const JOBS: usize = 2_000;
    const TASKS_PER_PROCESS: usize = 4;
    let (stores, _db) = processes(2).await;
    let ws = stores[0].ensure_default_workspace(at(0)).await.expect("workspace");
    let jobs: Vec<NewJob> = (0..JOBS).map(|i| NewJob::new(JobKind::Ping, json!({ "i": i }), at(0))).collect();
    let enqueued = stores[0].enqueue_jobs(ws.id, &jobs, at(0)).await.expect("enqueue");

    let mut tasks = Vec::new();
    for (p, store) in stores.iter().enumerate() {
        for t in 0..TASKS_PER_PROCESS {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let request = ClaimRequest {
                        worker: format!("p{p}-t{t}"),
                        now: at(1),
                        lease: Duration::from_secs(30),
                        limit: 10,
                    };
                    let batch = store.claim_jobs(&request).await.expect("claim");
                    if batch.is_empty() {
                        break mine;
                    }
                    mine.extend(batch.into_iter().map(|j| j.job.id));
                }
            }));
        }
    }
    let mut claimed = Vec::new();
    for task in tasks {
        claimed.extend(task.await.expect("task"));
    }

    let distinct: HashSet<_> = claimed.iter().collect();
    assert_eq!(distinct.len(), claimed.len(), "no job claimed twice");
    assert_eq!(distinct, enqueued.iter().collect::<HashSet<_>>(), "every job claimed");
    close(stores).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_start_ups_agree_on_the_default_workspace_and_bootstrap_key() {
    let (stores, _db) = processes(6).await;
    let token = ApiToken::parse_supplied("shared-admin-token-0001").expect("token");

    // Every process runs its start-up sequence at the same moment.
    let startups: Vec<_> = stores
        .iter()
        .map(|store| {
            let store = store.clone();
            let hash = token.hash();
            tokio::spawn(async move {
                let ws = store.ensure_default_workspace(at(0)).await?;
                let key = store.install_bootstrap_key(ws.id, hash, at(0)).await?;
                Ok::<_, StoreError>((ws, key))
            })
        })
        .collect();
    let mut results = Vec::new();
    for startup in startups {
        results.push(startup.await.expect("task").expect("start-up"));
    }

    let (ws, key) = &results[0];
    for (other_ws, other_key) in &results {
        assert_eq!(other_ws, ws, "one default workspace");
        assert_eq!(other_key.id, key.id, "one bootstrap key");
    }
    assert_eq!(stores[0].list_workspaces().await.expect("list").len(), 1);
    let keys = stores[0].list_api_keys(ws.id, PageRequest::first(50)).await.expect("keys");
    assert_eq!(keys.items.len(), 1);
    close(stores).await;
}

#[tokio::test]
async fn a_database_newer_than_the_binary_is_refused() {
    let (stores, db) = processes(1).await;
    // A later herald has applied a migration this binary does not know.
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(db.url()).await.expect("connect");
    sqlx::query("INSERT INTO herald_migrations (version, name) VALUES (9999, 'from the future')")
        .execute(&mut conn)
        .await
        .expect("insert");
    let err = stores[0].migrate().await.expect_err("newer schema");
    assert!(matches!(err, StoreError::Corrupt(ref msg) if msg.contains("9999")), "{err:?}");
    close(stores).await;
}

#[tokio::test]
async fn ten_thousand_jobs_enqueue_in_one_call() {
    let (stores, _db) = processes(1).await;
    let store = &stores[0];
    let ws = store.ensure_default_workspace(at(0)).await.expect("ws");
    let jobs: Vec<NewJob> = (0..10_000).map(|i| NewJob::new(JobKind::Ping, json!({ "i": i }), at(i % 100))).collect();
    let ids = store.enqueue_jobs(ws.id, &jobs, at(0)).await.expect("enqueue");
    assert_eq!(ids.len(), 10_000);
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 10_000);
    let stats = store.queue_stats(at(1_000)).await.expect("stats");
    assert_eq!(stats.due, 10_000);

    // Each id names the job built from the same position of the input.
    let last = store.get_job(ws.id, ids[9_999]).await.expect("get");
    assert_eq!(last.payload, json!({ "i": 9_999 }));
    assert_eq!(last.run_at, at(99));
    close(stores).await;
}
