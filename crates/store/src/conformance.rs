//! The conformance suite: every storage behaviour, written once, run against each backend.
//!
//! A backend's test file calls [`conformance_suite!`](crate::conformance_suite) with an async
//! function returning a fresh, migrated, empty store; the macro expands to one `#[tokio::test]`
//! per case below, so a failure names the behaviour and the backend.

use std::collections::HashSet;
use std::time::Duration;

use herald_domain::job::{JobOutcome, JobState};
use herald_domain::{
    ApiKeyId, ApiKeyName, ApiToken, JobKind, NewJob, PageRequest, Timestamp, WorkspaceName,
};
use serde_json::json;

use crate::{ClaimRequest, NewApiKey, QueueStats, SharedStore, StoreError};

/// Expands to one test per conformance case for the store built by `$make`.
#[macro_export]
macro_rules! conformance_suite {
    ($make:path) => {
        $crate::conformance_suite!(@cases $make;
            migrate_is_idempotent,
            default_workspace_is_created_once,
            workspace_names_are_unique,
            api_keys_authenticate_until_revoked,
            api_keys_are_scoped_to_their_workspace,
            bootstrap_key_is_replaced_not_duplicated,
            api_keys_paginate_in_creation_order,
            jobs_wait_for_their_run_at,
            claims_are_exclusive_until_the_lease_expires,
            finish_records_each_outcome,
            ping_effect_is_fenced_by_the_lease,
            concurrent_claims_never_overlap,
            claims_take_the_oldest_due_first,
            queue_stats_and_next_due,
        );
    };
    (@cases $make:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                // The factory returns the store and a guard owning its resources (a temp dir);
                // the guard lives until the case ends.
                let (store, _guard): ($crate::SharedStore, _) = $make().await;
                $crate::conformance::$case(store.clone()).await;
                store.close().await;
            }
        )*
    };
}

/// Seconds after a fixed instant (2026-01-01T00:00:00Z): the suite's timeline.
fn at(secs: u64) -> Timestamp {
    Timestamp::from_unix_millis(1_767_225_600_000) + Duration::from_secs(secs)
}

fn ws_name(s: &str) -> WorkspaceName {
    WorkspaceName::parse(s).expect("valid workspace name")
}

fn new_key(name: &str, seed: u8) -> (ApiToken, NewApiKey) {
    let token = ApiToken::generate([seed; 32]);
    let key = NewApiKey {
        name: ApiKeyName::parse(name).expect("valid key name"),
        hash: token.hash(),
        hint: token.hint(),
    };
    (token, key)
}

fn ping_job(run_at: Timestamp) -> NewJob {
    NewJob::new(JobKind::Ping, json!({"n": 1}), run_at)
}

fn claim(now: Timestamp, limit: u32) -> ClaimRequest {
    ClaimRequest {
        worker: "w1".into(),
        now,
        lease: Duration::from_secs(30),
        limit,
    }
}

pub async fn migrate_is_idempotent(store: SharedStore) {
    store.migrate().await.expect("second migrate");
    store.migrate().await.expect("third migrate");
    store.ping().await.expect("ping");
}

pub async fn default_workspace_is_created_once(store: SharedStore) {
    let first = store.ensure_default_workspace(at(0)).await.expect("create");
    let again = store.ensure_default_workspace(at(5)).await.expect("ensure");
    assert_eq!(first, again);
    assert_eq!(first.name.as_str(), "default");
    assert_eq!(first.created_at, at(0));
    assert_eq!(
        store.list_workspaces().await.expect("list"),
        vec![first.clone()]
    );
    assert_eq!(store.get_workspace(first.id).await.expect("get"), first);
}

pub async fn workspace_names_are_unique(store: SharedStore) {
    let acme = store
        .create_workspace(&ws_name("acme"), at(0))
        .await
        .expect("create");
    let err = store
        .create_workspace(&ws_name("acme"), at(1))
        .await
        .expect_err("duplicate");
    assert!(
        matches!(err, StoreError::Conflict { ref constraint } if constraint == "workspaces_name"),
        "{err:?}"
    );
    assert_eq!(
        store
            .workspace_by_name(&ws_name("acme"))
            .await
            .expect("lookup"),
        Some(acme)
    );
    assert_eq!(
        store
            .workspace_by_name(&ws_name("nope"))
            .await
            .expect("lookup"),
        None
    );
}

pub async fn api_keys_authenticate_until_revoked(store: SharedStore) {
    let ws = store.ensure_default_workspace(at(0)).await.expect("ws");
    let (token, new) = new_key("ci", 1);
    let key = store
        .create_api_key(ws.id, new, at(1))
        .await
        .expect("create key");
    assert_eq!(key.name.as_str(), "ci");
    assert_eq!(key.hint, token.hint());
    assert_eq!(key.revoked_at, None);

    let principal = store
        .authenticate(&token.hash())
        .await
        .expect("auth")
        .expect("known key");
    assert_eq!(
        (principal.workspace_id, principal.api_key_id),
        (ws.id, key.id)
    );
    let stranger = ApiToken::generate([2; 32]);
    assert_eq!(
        store.authenticate(&stranger.hash()).await.expect("auth"),
        None
    );

    let revoked = store
        .revoke_api_key(ws.id, key.id, at(2))
        .await
        .expect("revoke");
    assert_eq!(revoked.revoked_at, Some(at(2)));
    let again = store
        .revoke_api_key(ws.id, key.id, at(3))
        .await
        .expect("revoke twice");
    assert_eq!(
        again.revoked_at,
        Some(at(2)),
        "the first revocation time is kept"
    );
    assert_eq!(store.authenticate(&token.hash()).await.expect("auth"), None);
}

pub async fn api_keys_are_scoped_to_their_workspace(store: SharedStore) {
    let a = store.ensure_default_workspace(at(0)).await.expect("ws a");
    let b = store
        .create_workspace(&ws_name("other"), at(0))
        .await
        .expect("ws b");
    let (_, new_a) = new_key("a-key", 1);
    let (token_b, new_b) = new_key("b-key", 2);
    let key_a = store
        .create_api_key(a.id, new_a, at(1))
        .await
        .expect("key a");
    let key_b = store
        .create_api_key(b.id, new_b, at(1))
        .await
        .expect("key b");

    let err = store
        .get_api_key(a.id, key_b.id)
        .await
        .expect_err("cross-workspace get");
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
    let err = store
        .revoke_api_key(a.id, key_b.id, at(2))
        .await
        .expect_err("cross-workspace revoke");
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
    assert!(
        store
            .authenticate(&token_b.hash())
            .await
            .expect("auth")
            .is_some(),
        "b's key still works"
    );

    let listed = store
        .list_api_keys(a.id, PageRequest::first(50))
        .await
        .expect("list a");
    assert_eq!(listed.items, vec![key_a]);
    assert_eq!(
        store.get_api_key(b.id, key_b.id).await.expect("get b"),
        key_b
    );
}

pub async fn bootstrap_key_is_replaced_not_duplicated(store: SharedStore) {
    let ws = store.ensure_default_workspace(at(0)).await.expect("ws");
    let first = ApiToken::parse_supplied("first-admin-token-0001").expect("token");
    let second = ApiToken::parse_supplied("second-admin-token-002").expect("token");

    let k1 = store
        .install_bootstrap_key(ws.id, first.hash(), at(1))
        .await
        .expect("install");
    let k1_again = store
        .install_bootstrap_key(ws.id, first.hash(), at(2))
        .await
        .expect("reinstall");
    assert_eq!(
        k1.id, k1_again.id,
        "restarting with the same token keeps the key"
    );

    let k2 = store
        .install_bootstrap_key(ws.id, second.hash(), at(3))
        .await
        .expect("rotate");
    assert_ne!(k1.id, k2.id);
    assert!(
        store
            .authenticate(&first.hash())
            .await
            .expect("auth")
            .is_none(),
        "old token revoked"
    );
    assert!(
        store
            .authenticate(&second.hash())
            .await
            .expect("auth")
            .is_some()
    );
    let keys = store
        .list_api_keys(ws.id, PageRequest::first(50))
        .await
        .expect("list");
    assert_eq!(keys.items.len(), 2);
    assert_eq!(keys.items[0].revoked_at, Some(at(3)));
}

pub async fn api_keys_paginate_in_creation_order(store: SharedStore) {
    let ws = store.ensure_default_workspace(at(0)).await.expect("ws");
    let mut created = Vec::new();
    for i in 0..7u8 {
        let (_, new) = new_key(&format!("key-{i}"), i);
        created.push(
            store
                .create_api_key(ws.id, new, at(u64::from(i)))
                .await
                .expect("create")
                .id,
        );
    }
    let mut seen: Vec<ApiKeyId> = Vec::new();
    let mut page = PageRequest::first(3);
    loop {
        let got = store.list_api_keys(ws.id, page).await.expect("page");
        assert!(got.items.len() <= 3);
        seen.extend(got.items.iter().map(|k| k.id));
        match got.next_cursor {
            Some(cursor) => {
                page.after =
                    Some(herald_domain::Cursor::decode(cursor.as_str()).expect("own cursor"));
            }
            None => break,
        }
    }
    assert_eq!(seen, created);
}

pub async fn jobs_wait_for_their_run_at(store: SharedStore) {
    let ws = store.ensure_default_workspace(at(0)).await.expect("ws");
    let ids = store
        .enqueue_jobs(ws.id, &[ping_job(at(60))], at(0))
        .await
        .expect("enqueue");
    assert!(
        store
            .claim_jobs(&claim(at(59), 10))
            .await
            .expect("claim early")
            .is_empty()
    );
    let claimed = store
        .claim_jobs(&claim(at(60), 10))
        .await
        .expect("claim on time");
    assert_eq!(claimed.len(), 1);
    let job = &claimed[0].job;
    assert_eq!(job.id, ids[0]);
    assert_eq!(job.workspace_id, ws.id);
    assert_eq!(job.kind, "ping");
    assert_eq!(job.payload, json!({"n": 1}));
    assert_eq!(job.state, JobState::Running);
    assert_eq!(job.attempts, 1);
    assert_eq!(claimed[0].lease.expires_at, at(90));
}

pub async fn claims_are_exclusive_until_the_lease_expires(store: SharedStore) {
    let ws = store.ensure_default_workspace(at(0)).await.expect("ws");
    store
        .enqueue_jobs(ws.id, &[ping_job(at(0))], at(0))
        .await
        .expect("enqueue");
    let first = store
        .claim_jobs(&claim(at(1), 10))
        .await
        .expect("claim")
        .remove(0);
    assert!(
        store
            .claim_jobs(&claim(at(30), 10))
            .await
            .expect("claim while leased")
            .is_empty()
    );

    // The worker "died": its lease runs out at 31 s and the job is claimable again.
    let second = store
        .claim_jobs(&claim(at(31), 10))
        .await
        .expect("reclaim")
        .remove(0);
    assert_eq!(second.job.id, first.job.id);
    assert_eq!(second.job.attempts, 2);
    assert_ne!(second.lease.lease_id, first.lease.lease_id);

    let err = store
        .finish_job(&first.lease, &JobOutcome::Done, at(32))
        .await
        .expect_err("stale lease");
    assert!(matches!(err, StoreError::LeaseLost), "{err:?}");
    store
        .finish_job(&second.lease, &JobOutcome::Done, at(32))
        .await
        .expect("live lease");
    let job = store.get_job(ws.id, first.job.id).await.expect("get");
    assert_eq!(job.state, JobState::Done);
    let err = store
        .finish_job(&second.lease, &JobOutcome::Done, at(33))
        .await
        .expect_err("finish twice");
    assert!(matches!(err, StoreError::LeaseLost), "{err:?}");
}

pub async fn finish_records_each_outcome(store: SharedStore) {
    let ws = store.ensure_default_workspace(at(0)).await.expect("ws");
    let ids = store
        .enqueue_jobs(ws.id, &[ping_job(at(0)), ping_job(at(0))], at(0))
        .await
        .expect("enqueue");
    let claimed = store.claim_jobs(&claim(at(0), 10)).await.expect("claim");
    assert_eq!(claimed.len(), 2);

    let retry = JobOutcome::Retry {
        at: at(100),
        error: "receiver answered 503".into(),
    };
    store
        .finish_job(&claimed[0].lease, &retry, at(1))
        .await
        .expect("retry");
    let dead = JobOutcome::Dead {
        error: "gave up".into(),
    };
    store
        .finish_job(&claimed[1].lease, &dead, at(1))
        .await
        .expect("dead");

    let job = store.get_job(ws.id, claimed[0].job.id).await.expect("get");
    assert_eq!((job.state, job.run_at), (JobState::Queued, at(100)));
    assert_eq!(job.last_error.as_deref(), Some("receiver answered 503"));
    assert!(
        store
            .claim_jobs(&claim(at(99), 10))
            .await
            .expect("claim")
            .is_empty()
    );
    let again = store.claim_jobs(&claim(at(100), 10)).await.expect("claim");
    assert_eq!(again.len(), 1, "the dead job is never claimed again");
    assert_eq!(
        (again[0].job.id, again[0].job.attempts),
        (claimed[0].job.id, 2)
    );
    store
        .finish_job(&again[0].lease, &JobOutcome::Done, at(101))
        .await
        .expect("done");
    let job = store.get_job(ws.id, claimed[0].job.id).await.expect("get");
    assert_eq!(job.state, JobState::Done);
    assert_eq!(
        job.last_error.as_deref(),
        Some("receiver answered 503"),
        "the last error is kept for the record"
    );

    let job = store.get_job(ws.id, claimed[1].job.id).await.expect("get");
    assert_eq!(job.state, JobState::Dead);
    assert_eq!(job.last_error.as_deref(), Some("gave up"));
    assert!(ids.contains(&job.id));
    assert!(
        store
            .claim_jobs(&claim(at(10_000), 10))
            .await
            .expect("claim")
            .is_empty()
    );

    let other = store
        .create_workspace(&ws_name("other"), at(0))
        .await
        .expect("ws b");
    let err = store.get_job(other.id, job.id).await.expect_err("scoped");
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
}

pub async fn ping_effect_is_fenced_by_the_lease(store: SharedStore) {
    let ws = store.ensure_default_workspace(at(0)).await.expect("ws");
    store
        .enqueue_jobs(ws.id, &[ping_job(at(0))], at(0))
        .await
        .expect("enqueue");
    let stale = store
        .claim_jobs(&claim(at(0), 1))
        .await
        .expect("claim")
        .remove(0);
    let live = store
        .claim_jobs(&claim(at(31), 1))
        .await
        .expect("reclaim")
        .remove(0);

    let err = store
        .complete_ping(&stale.lease, "slow-worker", at(32))
        .await
        .expect_err("stale");
    assert!(matches!(err, StoreError::LeaseLost), "{err:?}");
    assert!(
        store.ping_records(ws.id).await.expect("records").is_empty(),
        "no effect without the lease"
    );

    store
        .complete_ping(&live.lease, "w2", at(33))
        .await
        .expect("complete");
    let records = store.ping_records(ws.id).await.expect("records");
    assert_eq!(records.len(), 1);
    assert_eq!(
        (
            records[0].job_id,
            records[0].worker.as_str(),
            records[0].applied_at
        ),
        (live.job.id, "w2", at(33))
    );
    assert_eq!(
        store.get_job(ws.id, live.job.id).await.expect("get").state,
        JobState::Done
    );
    let err = store
        .complete_ping(&live.lease, "w2", at(34))
        .await
        .expect_err("twice");
    assert!(matches!(err, StoreError::LeaseLost), "{err:?}");
    assert_eq!(store.ping_records(ws.id).await.expect("records").len(), 1);
}

pub async fn concurrent_claims_never_overlap(store: SharedStore) {
    let ws = store.ensure_default_workspace(at(0)).await.expect("ws");
    let jobs: Vec<NewJob> = (0..400).map(|_| ping_job(at(0))).collect();
    store
        .enqueue_jobs(ws.id, &jobs, at(0))
        .await
        .expect("enqueue");

    let mut tasks = Vec::new();
    for w in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let request = ClaimRequest {
                    worker: format!("w{w}"),
                    now: at(1),
                    lease: Duration::from_secs(30),
                    limit: 7,
                };
                let batch = store.claim_jobs(&request).await.expect("claim");
                if batch.is_empty() {
                    break mine;
                }
                mine.extend(batch.into_iter().map(|j| j.job.id));
            }
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("task"));
    }
    let distinct: HashSet<_> = all.iter().collect();
    assert_eq!(all.len(), 400, "every job claimed");
    assert_eq!(distinct.len(), 400, "no job claimed twice");
}

pub async fn claims_take_the_oldest_due_first(store: SharedStore) {
    let ws = store.ensure_default_workspace(at(0)).await.expect("ws");
    let ids = store
        .enqueue_jobs(
            ws.id,
            &[
                ping_job(at(30)),
                ping_job(at(10)),
                ping_job(at(20)),
                ping_job(at(500)),
            ],
            at(0),
        )
        .await
        .expect("enqueue");
    let first = store.claim_jobs(&claim(at(40), 2)).await.expect("claim");
    assert_eq!(
        first.iter().map(|j| j.job.id).collect::<Vec<_>>(),
        vec![ids[1], ids[2]]
    );
    let second = store.claim_jobs(&claim(at(40), 2)).await.expect("claim");
    assert_eq!(
        second.iter().map(|j| j.job.id).collect::<Vec<_>>(),
        vec![ids[0]]
    );
}

pub async fn queue_stats_and_next_due(store: SharedStore) {
    let ws = store.ensure_default_workspace(at(0)).await.expect("ws");
    assert_eq!(store.next_job_due().await.expect("next"), None);
    assert_eq!(
        store.queue_stats(at(0)).await.expect("stats"),
        QueueStats::default()
    );

    store
        .enqueue_jobs(
            ws.id,
            &[ping_job(at(5)), ping_job(at(10)), ping_job(at(3600))],
            at(0),
        )
        .await
        .expect("enqueue");
    assert_eq!(store.next_job_due().await.expect("next"), Some(at(5)));
    assert_eq!(
        store.queue_stats(at(7)).await.expect("stats"),
        QueueStats {
            due: 1,
            scheduled: 2,
            running: 0,
            dead: 0
        }
    );

    let leased = store
        .claim_jobs(&claim(at(10), 1))
        .await
        .expect("claim")
        .remove(0);
    assert_eq!(
        store.next_job_due().await.expect("next"),
        Some(at(10)),
        "the other due job"
    );
    assert_eq!(
        store.queue_stats(at(10)).await.expect("stats"),
        QueueStats {
            due: 1,
            scheduled: 1,
            running: 1,
            dead: 0
        }
    );
    store
        .finish_job(
            &leased.lease,
            &JobOutcome::Dead { error: "x".into() },
            at(11),
        )
        .await
        .expect("finish");
    let leased = store
        .claim_jobs(&claim(at(11), 1))
        .await
        .expect("claim")
        .remove(0);
    assert_eq!(
        store.next_job_due().await.expect("next"),
        Some(at(41)),
        "lease expiry is a due time"
    );
    assert_eq!(
        store.queue_stats(at(50)).await.expect("stats"),
        QueueStats {
            due: 1,
            scheduled: 1,
            running: 0,
            dead: 1
        },
        "an expired lease counts as due"
    );
    store
        .finish_job(&leased.lease, &JobOutcome::Done, at(12))
        .await
        .expect("finish");
    assert_eq!(store.next_job_due().await.expect("next"), Some(at(3600)));
}
