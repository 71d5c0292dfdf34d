//! The conformance suite: every storage behaviour, written once, run against each backend.
//!
//! A backend's test file calls [`conformance_suite!`](crate::conformance_suite) with an async
//! function returning a fresh, migrated, empty store; the macro expands to one `#[tokio::test]`
//! per case below, so a failure names the behaviour and the backend.

use std::collections::HashSet;
use std::time::Duration;

use herald_domain::inbound::parse_generic;
use herald_domain::job::{JobOutcome, JobState};
use herald_domain::{
    ApiKeyId, ApiKeyName, ApiToken, ContactAction, ContactId, EmailAddress, JobKind, NewJob, PageRequest, PasswordHash,
    RequestRecord, SavedAction, SourceId, SourceKind, SourceToken, Timestamp, UserId, WorkspaceId, WorkspaceName,
};
use serde_json::{Value, json};

use crate::ingest::{IngestRequest, IngestResult, Receipt};
use crate::{
    ClaimRequest, ContactFilter, ContactPatch, EventFilter, ImportOutcome, NewApiKey, NewContact, NewSource,
    QueueSignal, QueueStats, Rejection, Sample, SharedStore, SourceUpdate, StoreError, StoreResult,
};

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
            users_are_unique_per_workspace_and_change_passwords,
            first_run_links_work_once_and_only_while_nobody_can_log_in,
            jobs_wait_for_their_run_at,
            claims_are_exclusive_until_the_lease_expires,
            finish_records_each_outcome,
            ping_effect_is_fenced_by_the_lease,
            follow_ups_commit_with_the_job_under_its_lease,
            concurrent_claims_never_overlap,
            claims_take_the_oldest_due_first,
            queue_stats_and_next_due,
            sources_are_managed_per_workspace,
            source_tokens_rotate_with_and_without_grace,
            rejections_and_samples_are_bounded,
            ingest_creates_then_updates_one_contact,
            ingest_replays_idempotency_keys_for_a_day,
            ingest_unmatched_is_refused_or_skipped,
            ingest_records_identity_conflicts,
            ingest_batches_race_safely,
            events_filter_and_paginate,
            events_filter_by_outcome,
            contacts_are_created_filtered_updated_and_deleted,
            numbers_round_trip_exactly,
            attribute_limits_hold_in_every_write,
            contact_import_upserts_by_email,
            attribute_search_examines_a_bounded_window,
            expired_idempotency_keys_are_purged,
            finished_jobs_are_purged_after_their_retention,
            campaigns_keep_versions_and_move_through_states,
            campaign_work_commits_whole_and_guarded,
            domains_release_held_messages_when_verified,
            deliveries_are_fenced_by_the_lease,
            bounces_are_recorded_with_their_suppression_and_soft_ones_counted,
            suppressions_transports_and_secrets,
            webhook_deliveries_are_idempotent_and_fenced,
            webhook_batches_apply_each_item_alone,
            journey_steps_record_the_calls_they_made,
            steps_that_failed_to_render_are_kept_and_never_resent,
            webhook_deliveries_filter_by_action_and_step,
            signing_keys_rotate_with_an_overlap,
            saved_actions_are_named_updated_and_soft_deleted,
            drafts_are_held_listed_and_settled_once,
            archiving_exits_journeys_and_queues_their_calls,
            endpoints_fail_recover_and_are_disabled_once,
            campaign_webhooks_are_scoped_and_keep_their_secrets,
            follow_ups_commit_with_suppressions_and_deliveries,
            contact_history_is_scoped_to_its_workspace,
            commits_that_make_jobs_due_wake_the_worker,
            sealed_secrets_read_back_and_need_no_second_sealing,
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
    let key =
        NewApiKey { name: ApiKeyName::parse(name).expect("valid key name"), hash: token.hash(), hint: token.hint() };
    (token, key)
}

fn ping_job(run_at: Timestamp) -> NewJob {
    NewJob::new(JobKind::Ping, json!({"n": 1}), run_at)
}

fn claim(now: Timestamp, limit: u32) -> ClaimRequest {
    ClaimRequest { worker: "w1".into(), now, lease: Duration::from_secs(30), limit }
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
    assert_eq!(store.list_workspaces().await.expect("list"), vec![first.clone()]);
    assert_eq!(store.get_workspace(first.id).await.expect("get"), first);
}

pub async fn workspace_names_are_unique(store: SharedStore) {
    let acme = store.create_workspace(&ws_name("acme"), at(0)).await.expect("create");
    let err = store.create_workspace(&ws_name("acme"), at(1)).await.expect_err("duplicate");
    assert!(matches!(err, StoreError::Conflict { ref constraint } if constraint == "workspaces_name"), "{err:?}");
    assert_eq!(store.workspace_by_name(&ws_name("acme")).await.expect("lookup"), Some(acme));
    assert_eq!(store.workspace_by_name(&ws_name("nope")).await.expect("lookup"), None);
}

pub async fn api_keys_authenticate_until_revoked(store: SharedStore) {
    let ws = store.ensure_default_workspace(at(0)).await.expect("ws");
    let (token, new) = new_key("ci", 1);
    let key = store.create_api_key(ws.id, new, at(1)).await.expect("create key");
    assert_eq!(key.name.as_str(), "ci");
    assert_eq!(key.hint, token.hint());
    assert_eq!(key.revoked_at, None);

    let principal = store.authenticate(&token.hash()).await.expect("auth").expect("known key");
    assert_eq!((principal.workspace_id, principal.api_key_id), (ws.id, key.id));
    let stranger = ApiToken::generate([2; 32]);
    assert_eq!(store.authenticate(&stranger.hash()).await.expect("auth"), None);

    let revoked = store.revoke_api_key(ws.id, key.id, at(2)).await.expect("revoke");
    assert_eq!(revoked.revoked_at, Some(at(2)));
    let again = store.revoke_api_key(ws.id, key.id, at(3)).await.expect("revoke twice");
    assert_eq!(again.revoked_at, Some(at(2)), "the first revocation time is kept");
    assert_eq!(store.authenticate(&token.hash()).await.expect("auth"), None);
}

pub async fn api_keys_are_scoped_to_their_workspace(store: SharedStore) {
    let a = store.ensure_default_workspace(at(0)).await.expect("ws a");
    let b = store.create_workspace(&ws_name("other"), at(0)).await.expect("ws b");
    let (_, new_a) = new_key("a-key", 1);
    let (token_b, new_b) = new_key("b-key", 2);
    let key_a = store.create_api_key(a.id, new_a, at(1)).await.expect("key a");
    let key_b = store.create_api_key(b.id, new_b, at(1)).await.expect("key b");

    let err = store.get_api_key(a.id, key_b.id).await.expect_err("cross-workspace get");
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
    let err = store.revoke_api_key(a.id, key_b.id, at(2)).await.expect_err("cross-workspace revoke");
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
    assert!(store.authenticate(&token_b.hash()).await.expect("auth").is_some(), "b's key still works");

    let listed = store.list_api_keys(a.id, PageRequest::first(50)).await.expect("list a");
    assert_eq!(listed.items, vec![key_a]);
    assert_eq!(store.get_api_key(b.id, key_b.id).await.expect("get b"), key_b);
}

pub async fn bootstrap_key_is_replaced_not_duplicated(store: SharedStore) {
    let ws = store.ensure_default_workspace(at(0)).await.expect("ws");
    let first = ApiToken::parse_supplied("first-admin-token-0001").expect("token");
    let second = ApiToken::parse_supplied("second-admin-token-002").expect("token");

    let k1 = store.install_bootstrap_key(ws.id, first.hash(), at(1)).await.expect("install");
    let k1_again = store.install_bootstrap_key(ws.id, first.hash(), at(2)).await.expect("reinstall");
    assert_eq!(k1.id, k1_again.id, "restarting with the same token keeps the key");

    let k2 = store.install_bootstrap_key(ws.id, second.hash(), at(3)).await.expect("rotate");
    assert_ne!(k1.id, k2.id);
    assert!(store.authenticate(&first.hash()).await.expect("auth").is_none(), "old token revoked");
    assert!(store.authenticate(&second.hash()).await.expect("auth").is_some());
    let keys = store.list_api_keys(ws.id, PageRequest::first(50)).await.expect("list");
    assert_eq!(keys.items.len(), 2);
    assert_eq!(keys.items[0].revoked_at, Some(at(3)));
}

pub async fn api_keys_paginate_in_creation_order(store: SharedStore) {
    let ws = store.ensure_default_workspace(at(0)).await.expect("ws");
    let mut created = Vec::new();
    for i in 0..7u8 {
        let (_, new) = new_key(&format!("key-{i}"), i);
        created.push(store.create_api_key(ws.id, new, at(u64::from(i))).await.expect("create").id);
    }
    let mut seen: Vec<ApiKeyId> = Vec::new();
    let mut page = PageRequest::first(3);
    loop {
        let got = store.list_api_keys(ws.id, page).await.expect("page");
        assert!(got.items.len() <= 3);
        seen.extend(got.items.iter().map(|k| k.id));
        match got.next_cursor {
            Some(cursor) => {
                page.after = Some(herald_domain::Cursor::decode(cursor.as_str()).expect("own cursor"));
            }
            None => break,
        }
    }
    assert_eq!(seen, created);
}

pub async fn users_are_unique_per_workspace_and_change_passwords(store: SharedStore) {
    let a = store.ensure_default_workspace(at(0)).await.expect("ws a");
    let b = store.create_workspace(&ws_name("other"), at(0)).await.expect("ws b");
    let email = |s: &str| EmailAddress::parse(s).expect("valid email");
    // The store keeps hashes opaque: any PHC-looking string will do here.
    let hash = |s: &str| PasswordHash::from_phc(format!("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA${s}"));

    let ada = store.create_user(a.id, &email(" Ada@Example.com "), &hash("one"), at(1)).await.expect("create");
    assert_eq!(ada.email.as_str(), "ada@example.com");
    assert_eq!((ada.workspace_id, ada.created_at, ada.password_changed_at), (a.id, at(1), at(1)));
    assert_eq!(ada.password_hash, hash("one"));
    let err = store.create_user(a.id, &email("ADA@example.com"), &hash("two"), at(2)).await.expect_err("duplicate");
    assert!(matches!(err, StoreError::Conflict { ref constraint } if constraint == "users_email"), "{err:?}");
    let other = store.create_user(b.id, &email("ada@example.com"), &hash("three"), at(2)).await.expect("other ws");
    let bob = store.create_user(a.id, &email("bob@example.com"), &hash("four"), at(3)).await.expect("bob");

    assert_eq!(store.user_by_email(a.id, &email("ada@example.com")).await.expect("find"), Some(ada.clone()));
    assert_eq!(store.user_by_email(b.id, &email("ada@example.com")).await.expect("find"), Some(other.clone()));
    assert_eq!(store.user_by_email(a.id, &email("eve@example.com")).await.expect("find"), None);
    assert_eq!(store.get_user(a.id, ada.id).await.expect("get"), ada);
    let err = store.get_user(a.id, other.id).await.expect_err("cross-workspace get");
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
    let listed = store.list_users(a.id).await.expect("list");
    assert_eq!(listed, vec![ada.clone(), bob.clone()]);

    let changed = store.set_user_password(a.id, ada.id, &hash("five"), at(4)).await.expect("set password");
    assert_eq!(
        (changed.password_hash.clone(), changed.password_changed_at, changed.created_at),
        (hash("five"), at(4), at(1))
    );
    assert_eq!(store.get_user(a.id, ada.id).await.expect("get"), changed);
    let err = store.set_user_password(a.id, other.id, &hash("six"), at(5)).await.expect_err("cross-workspace set");
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
    assert_eq!(store.get_user(b.id, other.id).await.expect("get"), other, "untouched");

    let err = store.delete_user(a.id, other.id).await.expect_err("cross-workspace delete");
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
    store.delete_user(a.id, ada.id).await.expect("delete");
    let err = store.get_user(a.id, ada.id).await.expect_err("gone");
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
    let err = store.delete_user(a.id, ada.id).await.expect_err("delete twice");
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
    assert_eq!(store.list_users(a.id).await.expect("list"), vec![bob]);
    // The email is free again.
    let again = store.create_user(a.id, &email("ada@example.com"), &hash("seven"), at(6)).await.expect("re-create");
    assert_ne!(again.id, ada.id);
}

pub async fn first_run_links_work_once_and_only_while_nobody_can_log_in(store: SharedStore) {
    use crate::user::LoginLinkUse;
    let ws = store.ensure_default_workspace(at(0)).await.expect("ws");
    let token = |n: u8| ApiToken::generate([n; 32]).hash();
    let new_key = |n: u8| NewApiKey {
        name: ApiKeyName::parse("first-run link").expect("name"),
        hash: ApiToken::generate([100 + n; 32]).hash(),
        hint: "first-run link".into(),
    };
    let expires = at(900);
    assert!(store.create_first_run_link(ws.id, &token(1), expires, at(0)).await.expect("create"));
    assert!(store.create_first_run_link(ws.id, &token(2), expires, at(0)).await.expect("a second start"));
    assert_eq!(store.redeem_login_link(&token(9), new_key(9), at(1)).await.expect("use"), LoginLinkUse::Unknown);
    assert_eq!(store.redeem_login_link(&token(2), new_key(2), at(900)).await.expect("use"), LoginLinkUse::Expired);

    // Used at the same time twice: one redeems, the other finds it used.
    let link = token(1);
    let (one, two) = tokio::join!(
        store.redeem_login_link(&link, new_key(1), at(899)),
        store.redeem_login_link(&link, new_key(3), at(899)),
    );
    let mut uses = [one.expect("first use"), two.expect("second use")];
    uses.sort_by_key(|u| matches!(u, LoginLinkUse::Used));
    let [LoginLinkUse::Redeemed(key), LoginLinkUse::Used] = &uses else { panic!("{uses:?}") };
    assert_eq!((key.workspace_id, key.name.as_str(), key.revoked_at), (ws.id, "first-run link", None));
    let principal = store.authenticate(&new_key(1).hash).await.expect("auth");
    let principal = principal.or(store.authenticate(&new_key(3).hash).await.expect("auth")).expect("the key works");
    assert_eq!(principal.api_key_id, key.id);
    assert_eq!(store.redeem_login_link(&token(1), new_key(4), at(2)).await.expect("use"), LoginLinkUse::Used);

    // Not while a key lives; again once it is revoked; not while a user exists.
    assert!(!store.create_first_run_link(ws.id, &token(5), at(1000), at(100)).await.expect("create"));
    store.revoke_api_key(ws.id, key.id, at(101)).await.expect("revoke");
    assert!(store.create_first_run_link(ws.id, &token(6), at(1000), at(102)).await.expect("create"));
    let other = store.create_workspace(&ws_name("other"), at(103)).await.expect("ws");
    let hash = PasswordHash::from_phc("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$x".to_owned());
    store
        .create_user(other.id, &EmailAddress::parse("ada@example.com").expect("email"), &hash, at(104))
        .await
        .expect("user");
    assert!(!store.create_first_run_link(ws.id, &token(7), at(1000), at(105)).await.expect("create"));
}

pub async fn jobs_wait_for_their_run_at(store: SharedStore) {
    let ws = store.ensure_default_workspace(at(0)).await.expect("ws");
    let ids = store.enqueue_jobs(ws.id, &[ping_job(at(60))], at(0)).await.expect("enqueue");
    assert!(store.claim_jobs(&claim(at(59), 10)).await.expect("claim early").is_empty());
    let claimed = store.claim_jobs(&claim(at(60), 10)).await.expect("claim on time");
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
    store.enqueue_jobs(ws.id, &[ping_job(at(0))], at(0)).await.expect("enqueue");
    let first = store.claim_jobs(&claim(at(1), 10)).await.expect("claim").remove(0);
    assert!(store.claim_jobs(&claim(at(30), 10)).await.expect("claim while leased").is_empty());

    // The worker "died": its lease runs out at 31 s and the job is claimable again.
    let second = store.claim_jobs(&claim(at(31), 10)).await.expect("reclaim").remove(0);
    assert_eq!(second.job.id, first.job.id);
    assert_eq!(second.job.attempts, 2);
    assert_ne!(second.lease.lease_id, first.lease.lease_id);

    let err = store.finish_job(ws.id, &first.lease, &JobOutcome::Done, at(32)).await.expect_err("stale lease");
    assert!(matches!(err, StoreError::LeaseLost), "{err:?}");
    store.finish_job(ws.id, &second.lease, &JobOutcome::Done, at(32)).await.expect("live lease");
    let job = store.get_job(ws.id, first.job.id).await.expect("get");
    assert_eq!(job.state, JobState::Done);
    let err = store.finish_job(ws.id, &second.lease, &JobOutcome::Done, at(33)).await.expect_err("finish twice");
    assert!(matches!(err, StoreError::LeaseLost), "{err:?}");
}

pub async fn finish_records_each_outcome(store: SharedStore) {
    let ws = store.ensure_default_workspace(at(0)).await.expect("ws");
    let ids = store.enqueue_jobs(ws.id, &[ping_job(at(0)), ping_job(at(0))], at(0)).await.expect("enqueue");
    let claimed = store.claim_jobs(&claim(at(0), 10)).await.expect("claim");
    assert_eq!(claimed.len(), 2);

    let retry = JobOutcome::Retry { at: at(100), error: "receiver answered 503".into() };
    store.finish_job(ws.id, &claimed[0].lease, &retry, at(1)).await.expect("retry");
    let dead = JobOutcome::Dead { error: "gave up".into() };
    store.finish_job(ws.id, &claimed[1].lease, &dead, at(1)).await.expect("dead");

    let job = store.get_job(ws.id, claimed[0].job.id).await.expect("get");
    assert_eq!((job.state, job.run_at), (JobState::Queued, at(100)));
    assert_eq!(job.last_error.as_deref(), Some("receiver answered 503"));
    assert!(store.claim_jobs(&claim(at(99), 10)).await.expect("claim").is_empty());
    let again = store.claim_jobs(&claim(at(100), 10)).await.expect("claim");
    assert_eq!(again.len(), 1, "the dead job is never claimed again");
    assert_eq!((again[0].job.id, again[0].job.attempts), (claimed[0].job.id, 2));
    store.finish_job(ws.id, &again[0].lease, &JobOutcome::Done, at(101)).await.expect("done");
    let job = store.get_job(ws.id, claimed[0].job.id).await.expect("get");
    assert_eq!(job.state, JobState::Done);
    assert_eq!(job.last_error.as_deref(), Some("receiver answered 503"), "the last error is kept for the record");

    let job = store.get_job(ws.id, claimed[1].job.id).await.expect("get");
    assert_eq!(job.state, JobState::Dead);
    assert_eq!(job.last_error.as_deref(), Some("gave up"));
    assert!(ids.contains(&job.id));
    assert!(store.claim_jobs(&claim(at(10_000), 10)).await.expect("claim").is_empty());

    let other = store.create_workspace(&ws_name("other"), at(0)).await.expect("ws b");
    let err = store.get_job(other.id, job.id).await.expect_err("scoped");
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
}

pub async fn ping_effect_is_fenced_by_the_lease(store: SharedStore) {
    let ws = store.ensure_default_workspace(at(0)).await.expect("ws");
    store.enqueue_jobs(ws.id, &[ping_job(at(0))], at(0)).await.expect("enqueue");
    let stale = store.claim_jobs(&claim(at(0), 1)).await.expect("claim").remove(0);
    let live = store.claim_jobs(&claim(at(31), 1)).await.expect("reclaim").remove(0);

    let err = store.complete_ping(ws.id, &stale.lease, "slow-worker", at(32)).await.expect_err("stale");
    assert!(matches!(err, StoreError::LeaseLost), "{err:?}");
    assert!(store.ping_records(ws.id).await.expect("records").is_empty(), "no effect without the lease");

    store.complete_ping(ws.id, &live.lease, "w2", at(33)).await.expect("complete");
    let records = store.ping_records(ws.id).await.expect("records");
    assert_eq!(records.len(), 1);
    assert_eq!((records[0].job_id, records[0].worker.as_str(), records[0].applied_at), (live.job.id, "w2", at(33)));
    assert_eq!(store.get_job(ws.id, live.job.id).await.expect("get").state, JobState::Done);
    let err = store.complete_ping(ws.id, &live.lease, "w2", at(34)).await.expect_err("twice");
    assert!(matches!(err, StoreError::LeaseLost), "{err:?}");
    assert_eq!(store.ping_records(ws.id).await.expect("records").len(), 1);
}

pub async fn follow_ups_commit_with_the_job_under_its_lease(store: SharedStore) {
    let ws = store.ensure_default_workspace(at(0)).await.expect("ws");
    let other = store.create_workspace(&ws_name("other"), at(0)).await.expect("other");
    store.enqueue_jobs(ws.id, &[ping_job(at(0))], at(0)).await.expect("enqueue");
    let stale = store.claim_jobs(&claim(at(0), 1)).await.expect("claim").remove(0);
    let live = store.claim_jobs(&claim(at(31), 1)).await.expect("reclaim").remove(0);
    let follow = |n: u32| NewJob::new(JobKind::Ping, json!({"follow": n}), at(40));
    let only_the_job_running = QueueStats { due: 0, scheduled: 0, running: 1, dead: 0 };

    // A lost lease, or another workspace's id, finishes nothing and enqueues nothing.
    let err = store
        .finish_job_and_enqueue(ws.id, &stale.lease, &JobOutcome::Done, &[follow(1)], at(32))
        .await
        .expect_err("stale lease");
    assert!(matches!(err, StoreError::LeaseLost), "{err:?}");
    let err = store
        .finish_job_and_enqueue(other.id, &live.lease, &JobOutcome::Done, &[follow(2)], at(32))
        .await
        .expect_err("another workspace");
    assert!(matches!(err, StoreError::LeaseLost), "{err:?}");
    assert_eq!(store.queue_stats(at(40)).await.expect("stats"), only_the_job_running);
    assert_eq!(store.get_job(ws.id, live.job.id).await.expect("job").state, JobState::Running);

    // The live lease finishes the job and enqueues its follow-ups together, in its workspace.
    store
        .finish_job_and_enqueue(ws.id, &live.lease, &JobOutcome::Done, &[follow(3), follow(4)], at(33))
        .await
        .expect("finish");
    assert_eq!(store.get_job(ws.id, live.job.id).await.expect("job").state, JobState::Done);
    assert!(store.claim_jobs(&claim(at(39), 10)).await.expect("not yet").is_empty(), "follow-ups keep their run_at");
    let followed = store.claim_jobs(&claim(at(40), 10)).await.expect("claim follow-ups");
    let mut payloads: Vec<_> = followed.iter().map(|j| j.job.payload["follow"].as_u64()).collect();
    payloads.sort();
    assert_eq!(payloads, [Some(3), Some(4)]);
    assert!(followed.iter().all(|j| j.job.workspace_id == ws.id));

    // Finishing again is refused whole: no second set of follow-ups.
    let err = store
        .finish_job_and_enqueue(ws.id, &live.lease, &JobOutcome::Done, &[follow(5)], at(41))
        .await
        .expect_err("finish twice");
    assert!(matches!(err, StoreError::LeaseLost), "{err:?}");
    for job in &followed {
        store.finish_job(ws.id, &job.lease, &JobOutcome::Done, at(41)).await.expect("finish follow-up");
    }
    assert_eq!(store.queue_stats(at(10_000)).await.expect("stats"), QueueStats::default());

    // A retry with follow-ups: the job waits for its next run and the follow-ups are queued.
    store.enqueue_jobs(ws.id, &[ping_job(at(50))], at(50)).await.expect("enqueue");
    let leased = store.claim_jobs(&claim(at(50), 1)).await.expect("claim").remove(0);
    let retry = JobOutcome::Retry { at: at(200), error: "later".into() };
    store.finish_job_and_enqueue(ws.id, &leased.lease, &retry, &[follow(6)], at(51)).await.expect("retry");
    let job = store.get_job(ws.id, leased.job.id).await.expect("job");
    assert_eq!((job.state, job.run_at), (JobState::Queued, at(200)));
    assert_eq!(
        store.queue_stats(at(60)).await.expect("stats"),
        QueueStats { due: 1, scheduled: 1, running: 0, dead: 0 }
    );

    // The ping effect is fenced by the workspace too.
    let again = store.claim_jobs(&claim(at(200), 10)).await.expect("claim");
    let ping = again.iter().find(|j| j.job.id == leased.job.id).expect("the retried job");
    let err = store.complete_ping(other.id, &ping.lease, "w1", at(201)).await.expect_err("other workspace");
    assert!(matches!(err, StoreError::LeaseLost), "{err:?}");
    assert!(store.ping_records(other.id).await.expect("records").is_empty());
    assert!(store.ping_records(ws.id).await.expect("records").is_empty());
    assert_eq!(store.get_job(ws.id, ping.job.id).await.expect("job").state, JobState::Running);
}

pub async fn concurrent_claims_never_overlap(store: SharedStore) {
    let ws = store.ensure_default_workspace(at(0)).await.expect("ws");
    let jobs: Vec<NewJob> = (0..400).map(|_| ping_job(at(0))).collect();
    store.enqueue_jobs(ws.id, &jobs, at(0)).await.expect("enqueue");

    let mut tasks = Vec::new();
    for w in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let request =
                    ClaimRequest { worker: format!("w{w}"), now: at(1), lease: Duration::from_secs(30), limit: 7 };
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
        .enqueue_jobs(ws.id, &[ping_job(at(30)), ping_job(at(10)), ping_job(at(20)), ping_job(at(500))], at(0))
        .await
        .expect("enqueue");
    let first = store.claim_jobs(&claim(at(40), 2)).await.expect("claim");
    assert_eq!(first.iter().map(|j| j.job.id).collect::<Vec<_>>(), vec![ids[1], ids[2]]);
    let second = store.claim_jobs(&claim(at(40), 2)).await.expect("claim");
    assert_eq!(second.iter().map(|j| j.job.id).collect::<Vec<_>>(), vec![ids[0]]);
}

pub async fn queue_stats_and_next_due(store: SharedStore) {
    let ws = store.ensure_default_workspace(at(0)).await.expect("ws");
    assert_eq!(store.next_job_due().await.expect("next"), None);
    assert_eq!(store.queue_stats(at(0)).await.expect("stats"), QueueStats::default());

    store.enqueue_jobs(ws.id, &[ping_job(at(5)), ping_job(at(10)), ping_job(at(3600))], at(0)).await.expect("enqueue");
    assert_eq!(store.next_job_due().await.expect("next"), Some(at(5)));
    assert_eq!(
        store.queue_stats(at(7)).await.expect("stats"),
        QueueStats { due: 1, scheduled: 2, running: 0, dead: 0 }
    );

    let leased = store.claim_jobs(&claim(at(10), 1)).await.expect("claim").remove(0);
    assert_eq!(store.next_job_due().await.expect("next"), Some(at(10)), "the other due job");
    assert_eq!(
        store.queue_stats(at(10)).await.expect("stats"),
        QueueStats { due: 1, scheduled: 1, running: 1, dead: 0 }
    );
    store.finish_job(ws.id, &leased.lease, &JobOutcome::Dead { error: "x".into() }, at(11)).await.expect("finish");
    let leased = store.claim_jobs(&claim(at(11), 1)).await.expect("claim").remove(0);
    assert_eq!(store.next_job_due().await.expect("next"), Some(at(41)), "lease expiry is a due time");
    assert_eq!(
        store.queue_stats(at(50)).await.expect("stats"),
        QueueStats { due: 1, scheduled: 1, running: 0, dead: 1 },
        "an expired lease counts as due"
    );
    store.finish_job(ws.id, &leased.lease, &JobOutcome::Done, at(12)).await.expect("finish");
    assert_eq!(store.next_job_due().await.expect("next"), Some(at(3600)));
}

/// Whether a worker asleep until `until` is woken by `commit`. Each poll of the sleep is
/// immediate (a zero timeout polls it once): the signal is given before the commit returns.
async fn wakes<T>(signal: &QueueSignal, until: Timestamp, commit: impl Future<Output = StoreResult<T>>) -> bool {
    signal.looking();
    let mut sleep = std::pin::pin!(signal.woken_before(until));
    assert!(tokio::time::timeout(Duration::ZERO, sleep.as_mut()).await.is_err(), "asleep before the commit");
    commit.await.expect("commit");
    tokio::time::timeout(Duration::ZERO, sleep.as_mut()).await.is_ok()
}

pub async fn commits_that_make_jobs_due_wake_the_worker(store: SharedStore) {
    let (ws, source) = with_source(&store).await;
    let signal = store.queue_signal().clone();
    assert!(!wakes(&signal, at(60), store.enqueue_jobs(ws, &[ping_job(at(61))], at(0))).await, "due after the sleep");
    assert!(wakes(&signal, at(60), store.enqueue_jobs(ws, &[ping_job(at(3600)), ping_job(at(0))], at(0))).await);

    // A retry sooner than the sleep's end; then one later.
    let leased = store.claim_jobs(&claim(at(0), 1)).await.expect("claim").remove(0);
    let retry = JobOutcome::Retry { at: at(10), error: "busy".into() };
    assert!(wakes(&signal, at(60), store.finish_job(ws, &leased.lease, &retry, at(1))).await);
    let leased = store.claim_jobs(&claim(at(10), 1)).await.expect("claim").remove(0);
    let retry = JobOutcome::Retry { at: at(100), error: "busy".into() };
    assert!(!wakes(&signal, at(60), store.finish_job(ws, &leased.lease, &retry, at(11))).await);

    // Ingest wakes it only where a live campaign gives the events an evaluation job.
    let event =
        |n: u32| vec![request(ws, source, json!({"email": format!("u{n}@example.com"), "event": "e"}), None, at(1))];
    assert!(!wakes(&signal, at(60), store.ingest(&event(1), at(1))).await, "no campaign, nothing to evaluate");
    let campaign = store.create_campaign(ws, "Welcome", &json!({}), at(1)).await.expect("campaign");
    let draft = [herald_domain::CampaignState::Draft];
    store.set_campaign_state(ws, campaign.id, &draft, herald_domain::CampaignState::Active, at(1)).await.expect("on");
    assert!(wakes(&signal, at(60), store.ingest(&event(2), at(2))).await);
}

fn new_source(name: &str, seed: u8) -> (SourceToken, NewSource) {
    let token = SourceToken::generate([seed; 32]);
    let source =
        NewSource { name: name.into(), kind: SourceKind::Generic, token_hash: token.hash(), token_hint: token.hint() };
    (token, source)
}

/// A store with the default workspace and one generic source.
async fn with_source(store: &SharedStore) -> (WorkspaceId, SourceId) {
    let ws = store.ensure_default_workspace(at(0)).await.expect("ws");
    let (_, source) = new_source("website", 1);
    let source = store.create_source(ws.id, source, at(0)).await.expect("source");
    (ws.id, source.id)
}

fn request(ws: WorkspaceId, source: SourceId, body: Value, key: Option<&str>, t: Timestamp) -> IngestRequest {
    IngestRequest {
        workspace_id: ws,
        source_id: source,
        received_at: t,
        request: RequestRecord {
            method: "POST".into(),
            content_type: Some("application/json".into()),
            body: body.to_string().into_bytes(),
        },
        idempotency_key: key.map(str::to_owned),
        event: parse_generic(&body).expect("valid payload"),
        notes: Vec::new(),
    }
}

fn accepted(result: &IngestResult) -> Receipt {
    match result {
        IngestResult::Accepted(receipt) => receipt.clone(),
        other => panic!("expected Accepted, got {other:?}"),
    }
}

fn email(s: &str) -> EmailAddress {
    EmailAddress::parse(s).expect("email")
}

pub async fn sources_are_managed_per_workspace(store: SharedStore) {
    let ws = store.ensure_default_workspace(at(0)).await.expect("ws");
    let other = store.create_workspace(&ws_name("other"), at(0)).await.expect("other");
    let (token, new) = new_source("website", 1);
    let source = store.create_source(ws.id, new, at(1)).await.expect("create");
    assert_eq!((source.name.as_str(), source.kind, source.enabled), ("website", SourceKind::Generic, true));
    assert_eq!(source.token_hint, token.hint());
    assert_eq!(store.get_source(ws.id, source.id).await.expect("get"), source);
    let (_, second) = new_source("posthog", 2);
    let second =
        store.create_source(ws.id, NewSource { kind: SourceKind::Posthog, ..second }, at(2)).await.expect("create");
    let page = store.list_sources(ws.id, PageRequest::first(1)).await.expect("list");
    assert_eq!(page.items, vec![source.clone()]);
    assert!(page.next_cursor.is_some());
    assert!(store.list_sources(other.id, PageRequest::first(10)).await.expect("list").items.is_empty());
    assert!(matches!(store.get_source(other.id, source.id).await, Err(StoreError::NotFound { .. })));

    let update = SourceUpdate {
        name: Some("site".into()),
        enabled: Some(false),
        rate_limit_per_second: Some(Some(5)),
        mapping: Some(Some(json!({"email": "customer.email"}))),
    };
    let updated = store.update_source(ws.id, source.id, update, at(3)).await.expect("update");
    assert_eq!((updated.name.as_str(), updated.enabled, updated.rate_limit_per_second), ("site", false, Some(5)));
    assert_eq!(updated.mapping, Some(json!({"email": "customer.email"})));
    assert_eq!(updated.updated_at, at(3));
    assert!(store.source_by_token(&token.hash(), at(3)).await.expect("lookup").is_none(), "disabled");
    let cleared = SourceUpdate { mapping: Some(None), rate_limit_per_second: Some(None), ..SourceUpdate::default() };
    let cleared = store.update_source(ws.id, source.id, cleared, at(4)).await.expect("update");
    assert_eq!((cleared.mapping, cleared.rate_limit_per_second, cleared.name.as_str()), (None, None, "site"));
    assert!(matches!(
        store.update_source(other.id, source.id, SourceUpdate::default(), at(4)).await,
        Err(StoreError::NotFound { .. })
    ));

    assert!(matches!(store.delete_source(other.id, source.id).await, Err(StoreError::NotFound { .. })));
    store.delete_source(ws.id, source.id).await.expect("delete");
    assert!(matches!(store.get_source(ws.id, source.id).await, Err(StoreError::NotFound { .. })));
    assert_eq!(store.list_sources(ws.id, PageRequest::first(10)).await.expect("list").items, vec![second]);
}

pub async fn source_tokens_rotate_with_and_without_grace(store: SharedStore) {
    let ws = store.ensure_default_workspace(at(0)).await.expect("ws");
    let (first, new) = new_source("website", 1);
    let source = store.create_source(ws.id, new, at(0)).await.expect("create");
    assert_eq!(store.source_by_token(&first.hash(), at(1)).await.expect("lookup").map(|s| s.id), Some(source.id));
    assert!(store.source_by_token(&SourceToken::generate([9; 32]).hash(), at(1)).await.expect("lookup").is_none());

    let second = SourceToken::generate([2; 32]);
    let rotated =
        store.rotate_source_token(ws.id, source.id, second.hash(), second.hint(), None, at(2)).await.expect("rotate");
    assert_eq!(rotated.token_hint, second.hint());
    assert!(store.source_by_token(&first.hash(), at(2)).await.expect("lookup").is_none(), "old token dead at once");
    assert!(store.source_by_token(&second.hash(), at(2)).await.expect("lookup").is_some());

    let third = SourceToken::generate([3; 32]);
    let rotated = store
        .rotate_source_token(ws.id, source.id, third.hash(), third.hint(), Some(at(60)), at(3))
        .await
        .expect("rotate with grace");
    assert_eq!(rotated.previous_token_expires_at, Some(at(60)));
    assert!(store.source_by_token(&second.hash(), at(59)).await.expect("lookup").is_some(), "grace period");
    assert!(store.source_by_token(&second.hash(), at(60)).await.expect("lookup").is_none(), "grace over");
    assert!(store.source_by_token(&third.hash(), at(60)).await.expect("lookup").is_some());
    assert!(store.source_by_token(&first.hash(), at(3)).await.expect("lookup").is_none());
}

pub async fn rejections_and_samples_are_bounded(store: SharedStore) {
    let (ws, source) = with_source(&store).await;
    let rejections: Vec<Rejection> = (0..105u64)
        .map(|i| Rejection {
            workspace_id: ws,
            source_id: source,
            received_at: at(i),
            status: 400,
            code: "validation_failed".into(),
            reason: format!("email: bad #{i}"),
            body_prefix: format!("{{\"n\": {i}}}").into_bytes(),
        })
        .collect();
    store.record_rejections(&rejections[..50]).await.expect("record");
    store.record_rejections(&rejections[50..]).await.expect("record");
    let kept = store.list_rejections(ws, source).await.expect("list");
    assert_eq!(kept.len(), 100);
    assert_eq!(kept[0], rejections[104], "newest first");
    assert_eq!(kept[99], rejections[5]);

    let samples: Vec<Sample> = (0..25u64)
        .map(|i| Sample { workspace_id: ws, source_id: source, received_at: at(i), body: json!({"n": i}) })
        .collect();
    store.record_samples(&samples).await.expect("record");
    let kept = store.list_samples(ws, source).await.expect("list");
    assert_eq!(kept.len(), 20);
    assert_eq!(kept[0], samples[24]);

    let other = store.create_workspace(&ws_name("other"), at(0)).await.expect("other");
    assert!(store.list_rejections(other.id, source).await.expect("list").is_empty(), "scoped");
    assert!(store.list_samples(other.id, source).await.expect("list").is_empty(), "scoped");

    // Written with another workspace's id, the source's log gets nothing; the rest of the
    // batch is kept.
    let stray = Rejection { workspace_id: other.id, received_at: at(200), ..rejections[0].clone() };
    let last = Rejection { received_at: at(201), ..rejections[0].clone() };
    store.record_rejections(&[stray, last.clone()]).await.expect("record");
    let kept = store.list_rejections(ws, source).await.expect("list");
    assert_eq!((kept.len(), &kept[0], &kept[1]), (100, &last, &rejections[104]));
    let stray =
        Sample { workspace_id: other.id, source_id: source, received_at: at(200), body: json!({"stray": true}) };
    store.record_samples(&[stray]).await.expect("record");
    assert_eq!(store.list_samples(ws, source).await.expect("list")[0], samples[24]);
    assert!(store.list_samples(other.id, source).await.expect("list").is_empty());
}

pub async fn ingest_creates_then_updates_one_contact(store: SharedStore) {
    let (ws, source) = with_source(&store).await;
    let first = json!({"email": "User@Example.com", "event": "user_signed_up", "data": {"name": "Alex", "plan": "free", "company": {"name": "Acme"}}});
    let second = json!({"email": "user@example.com", "event": "plan_changed", "userId": "usr_1", "data": {"plan": "pro", "company": {"size": 10}}});
    let results = store
        .ingest(&[request(ws, source, first.clone(), None, at(1)), request(ws, source, second, None, at(2))], at(2))
        .await
        .expect("ingest");
    let (a, b) = (accepted(&results[0]), accepted(&results[1]));
    assert_eq!(a.contact_id, b.contact_id, "one contact for both spellings");
    let contact_id = a.contact_id.expect("contact");
    let contact = store.get_contact(ws, contact_id).await.expect("contact");
    assert_eq!(contact.email, Some(email("user@example.com")));
    assert_eq!(contact.user_id.as_ref().map(UserId::as_str), Some("usr_1"));
    assert_eq!(contact.name.as_deref(), Some("Alex"));
    assert_eq!(
        Value::Object(contact.attributes.clone()),
        json!({"name": "Alex", "plan": "pro", "company": {"name": "Acme", "size": 10}})
    );
    assert_eq!(contact.created_at, at(2));

    let event = store.get_event(ws, a.event_id).await.expect("event");
    assert_eq!(event.name.as_deref(), Some("user_signed_up"));
    assert_eq!(event.contact_id, Some(contact_id));
    assert_eq!(event.source_id, Some(source));
    assert_eq!(event.received_at, at(1));
    assert_eq!(event.outcome.contact, ContactAction::Created);
    let kept = event.request.expect("request kept");
    assert_eq!(kept.body, first.to_string().into_bytes());
    assert_eq!((kept.method.as_str(), kept.content_type.as_deref()), ("POST", Some("application/json")));
    assert_eq!(store.get_event(ws, b.event_id).await.expect("event").outcome.contact, ContactAction::Updated);

    // A later batch with nothing new leaves the contact unchanged.
    let again = json!({"email": "user@example.com", "data": {"plan": "pro"}});
    let results = store.ingest(&[request(ws, source, again, None, at(3))], at(3)).await.expect("ingest");
    let event = store.get_event(ws, accepted(&results[0]).event_id).await.expect("event");
    assert_eq!(event.outcome.contact, ContactAction::Unchanged);
    assert!(event.outcome.notes.iter().any(|n| n.contains("No event name")), "{:?}", event.outcome.notes);
    assert_eq!(store.get_contact(ws, contact_id).await.expect("contact").updated_at, at(2));
}

pub async fn ingest_replays_idempotency_keys_for_a_day(store: SharedStore) {
    let (ws, source) = with_source(&store).await;
    let body = json!({"email": "a@example.com", "event": "paid"});
    let first = store.ingest(&[request(ws, source, body.clone(), Some("k-1"), at(0))], at(0)).await.expect("ingest");
    let receipt = accepted(&first[0]);
    // Same key later, and twice within one batch: the original receipt, nothing new.
    let replays = store
        .ingest(
            &[
                request(ws, source, body.clone(), Some("k-1"), at(10)),
                request(ws, source, body.clone(), Some("k-1"), at(10)),
            ],
            at(10),
        )
        .await
        .expect("ingest");
    assert_eq!(replays, vec![IngestResult::Replayed(receipt.clone()), IngestResult::Replayed(receipt.clone())]);
    let in_batch = store
        .ingest(
            &[
                request(ws, source, body.clone(), Some("k-2"), at(11)),
                request(ws, source, body.clone(), Some("k-2"), at(11)),
            ],
            at(11),
        )
        .await
        .expect("ingest");
    assert_eq!(in_batch[1], IngestResult::Replayed(accepted(&in_batch[0])));
    let events = store.list_events(ws, &EventFilter::default(), PageRequest::first(50)).await.expect("list");
    assert_eq!(events.items.len(), 2);

    let day_later = at(24 * 3600 + 1);
    let after = store.ingest(&[request(ws, source, body, Some("k-1"), day_later)], day_later).await.expect("ingest");
    assert_ne!(accepted(&after[0]).event_id, receipt.event_id, "the key expired after 24 h");
}

pub async fn ingest_unmatched_is_refused_or_skipped(store: SharedStore) {
    let (ws, source) = with_source(&store).await;
    let refused = store
        .ingest(&[request(ws, source, json!({"userId": "nobody", "event": "x"}), None, at(1))], at(1))
        .await
        .expect("ingest");
    assert_eq!(refused, vec![IngestResult::Unmatched]);
    assert!(
        store.list_events(ws, &EventFilter::default(), PageRequest::first(10)).await.expect("list").items.is_empty()
    );

    let mut skipped = request(ws, source, json!({"userId": "anon-1", "event": "$pageview"}), None, at(2));
    skipped.event.when_unmatched = herald_domain::inbound::WhenUnmatched::Skip;
    let results = store.ingest(&[skipped], at(2)).await.expect("ingest");
    let receipt = accepted(&results[0]);
    assert_eq!(receipt.contact_id, None);
    let event = store.get_event(ws, receipt.event_id).await.expect("event");
    assert_eq!(event.outcome.contact, ContactAction::Skipped);
    assert!(
        store
            .list_contacts(ws, &ContactFilter::default(), PageRequest::first(10))
            .await
            .expect("list")
            .items
            .is_empty()
    );

    // Known by user id: matched without an email.
    store
        .ingest(&[request(ws, source, json!({"email": "k@example.com", "userId": "known"}), None, at(3))], at(3))
        .await
        .expect("ingest");
    let results = store
        .ingest(&[request(ws, source, json!({"userId": "known", "event": "x"}), None, at(4))], at(4))
        .await
        .expect("ingest");
    assert!(accepted(&results[0]).contact_id.is_some());
}

pub async fn ingest_records_identity_conflicts(store: SharedStore) {
    let (ws, source) = with_source(&store).await;
    let setup = store
        .ingest(
            &[
                request(ws, source, json!({"email": "x@example.com"}), None, at(1)),
                request(ws, source, json!({"email": "y@example.com", "userId": "u-y"}), None, at(1)),
            ],
            at(1),
        )
        .await
        .expect("ingest");
    let (x, y) = (accepted(&setup[0]).contact_id.expect("x"), accepted(&setup[1]).contact_id.expect("y"));
    let results = store
        .ingest(
            &[request(
                ws,
                source,
                json!({"email": "x@example.com", "userId": "u-y", "data": {"plan": "pro"}}),
                None,
                at(2),
            )],
            at(2),
        )
        .await
        .expect("ingest");
    let receipt = accepted(&results[0]);
    assert_eq!(receipt.contact_id, Some(x), "email wins");
    let event = store.get_event(ws, receipt.event_id).await.expect("event");
    assert_eq!(
        event.outcome.conflicts,
        vec![herald_domain::contact::IdentityConflict::HeldByOther {
            field: "user_id".into(),
            value: "u-y".into(),
            contact: y
        }]
    );
    let y_after = store.get_contact(ws, y).await.expect("y");
    assert!(y_after.attributes.is_empty(), "y untouched");
    assert_eq!(y_after.user_id.as_ref().map(UserId::as_str), Some("u-y"));
    assert_eq!(store.get_contact(ws, x).await.expect("x").user_id, None, "x does not take y's id");
}

pub async fn ingest_batches_race_safely(store: SharedStore) {
    let (ws, source) = with_source(&store).await;
    let mut tasks = Vec::new();
    for task in 0..6u64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for round in 0..10u64 {
                let batch: Vec<IngestRequest> = (0..20u64)
                    .map(|n| {
                        let body = json!({"email": format!("p{n}@example.com"), "event": "tick", "data": {format!("t{task}"): round}});
                        request(ws, source, body, None, at(round))
                    })
                    .collect();
                let results = store.ingest(&batch, at(round)).await.expect("ingest");
                assert!(results.iter().all(|r| matches!(r, IngestResult::Accepted(_))));
            }
        }));
    }
    for task in tasks {
        task.await.expect("task");
    }
    let contacts = store.list_contacts(ws, &ContactFilter::default(), PageRequest::first(100)).await.expect("list");
    assert_eq!(contacts.items.len(), 20, "one contact per email");
    for contact in &contacts.items {
        for task in 0..6 {
            assert_eq!(contact.attributes[&format!("t{task}")], 9, "no lost update: {:?}", contact.attributes);
        }
    }
    let mut page = PageRequest::first(500);
    let mut events = 0;
    loop {
        let got = store.list_events(ws, &EventFilter::default(), page).await.expect("events");
        events += got.items.len();
        match got.next_cursor {
            Some(c) => page.after = Some(herald_domain::Cursor::decode(c.as_str()).expect("cursor")),
            None => break,
        }
    }
    assert_eq!(events, 6 * 10 * 20);
}

pub async fn events_filter_and_paginate(store: SharedStore) {
    let (ws, source) = with_source(&store).await;
    let (_, other_source) = new_source("other", 2);
    let other_source = store.create_source(ws, other_source, at(0)).await.expect("source");
    let mut ids = Vec::new();
    for i in 0..6u64 {
        let src = if i % 2 == 0 { source } else { other_source.id };
        let body = json!({"email": format!("e{}@example.com", i % 3), "event": if i < 3 { "a" } else { "B" }});
        let results = store.ingest(&[request(ws, src, body, None, at(i * 10))], at(i * 10)).await.expect("ingest");
        ids.push(accepted(&results[0]));
    }
    let list = |filter: EventFilter| {
        let store = store.clone();
        async move {
            store
                .list_events(ws, &filter, PageRequest::first(50))
                .await
                .expect("list")
                .items
                .iter()
                .map(|e| e.id)
                .collect::<Vec<_>>()
        }
    };
    let all = list(EventFilter::default()).await;
    assert_eq!(all, ids.iter().rev().map(|r| r.event_id).collect::<Vec<_>>(), "newest first");
    assert_eq!(list(EventFilter { name: Some("B".into()), ..EventFilter::default() }).await.len(), 3);
    assert_eq!(list(EventFilter { name: Some("b".into()), ..EventFilter::default() }).await.len(), 0, "case-sensitive");
    assert_eq!(list(EventFilter { source: Some(source), ..EventFilter::default() }).await.len(), 3);
    assert_eq!(
        list(EventFilter { contact: ids[0].contact_id, ..EventFilter::default() }).await,
        vec![ids[3].event_id, ids[0].event_id]
    );
    assert_eq!(
        list(EventFilter { from: Some(at(20)), until: Some(at(40)), ..EventFilter::default() }).await,
        vec![ids[3].event_id, ids[2].event_id]
    );
    let page = store.list_events(ws, &EventFilter::default(), PageRequest::first(4)).await.expect("page");
    assert!(page.items.iter().all(|e| e.request.is_none()), "lists leave bodies out");
    let cursor = page.next_cursor.expect("more");
    let rest = store
        .list_events(
            ws,
            &EventFilter::default(),
            PageRequest { after: Some(herald_domain::Cursor::decode(cursor.as_str()).expect("c")), limit: 4 },
        )
        .await
        .expect("page");
    assert_eq!(rest.items.iter().map(|e| e.id).collect::<Vec<_>>(), vec![ids[1].event_id, ids[0].event_id]);
    let other = store.create_workspace(&ws_name("other"), at(0)).await.expect("ws");
    assert!(matches!(store.get_event(other.id, ids[0].event_id).await, Err(StoreError::NotFound { .. })));

    let mut names = store.event_names(ws, 10).await.expect("names");
    names.sort();
    assert_eq!(names, vec!["B".to_owned(), "a".to_owned()], "each name once, case kept");
    assert_eq!(store.event_names(ws, 1).await.expect("names").len(), 1, "limited");
    assert!(store.event_names(other.id, 10).await.expect("names").is_empty(), "scoped to the workspace");
}

pub async fn events_filter_by_outcome(store: SharedStore) {
    use crate::OutcomeFilter;
    use crate::campaign::CampaignWork;
    use herald_domain::campaign::{CampaignReaction, ReactionKind};
    let (ws, source) = with_source(&store).await;
    let mut ids = Vec::new();
    // Created, updated, unchanged (then a journey starts with it), unchanged (a campaign skips it).
    let bodies = [
        json!({"email": "o@example.com", "event": "a"}),
        json!({"email": "o@example.com", "event": "a", "data": {"plan": "pro"}}),
        json!({"email": "o@example.com", "event": "a", "data": {"plan": "pro"}}),
        json!({"email": "o@example.com", "event": "a", "data": {"plan": "pro"}}),
    ];
    for (i, body) in bodies.into_iter().enumerate() {
        let t = at(10 * (i as u64 + 1));
        let results = store.ingest(&[request(ws, source, body, None, t)], t).await.expect("ingest");
        ids.push(accepted(&results[0]).event_id);
    }
    let reaction = |action| CampaignReaction {
        campaign_id: herald_domain::CampaignId::from_uuid(crate::new_uuid(at(1))),
        campaign: "Welcome".into(),
        action,
        detail: String::new(),
    };
    let work = CampaignWork {
        reactions: vec![
            (ids[2], vec![reaction(ReactionKind::Started)]),
            (ids[3], vec![reaction(ReactionKind::Skipped)]),
        ],
        ..CampaignWork::default()
    };
    store.commit_campaign_work(ws, None, &work, at(50)).await.expect("reactions");
    let list = |outcome| {
        let store = store.clone();
        async move {
            let filter = EventFilter { outcome: Some(outcome), ..EventFilter::default() };
            store
                .list_events(ws, &filter, PageRequest::first(50))
                .await
                .expect("list")
                .items
                .iter()
                .map(|e| e.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(list(OutcomeFilter::ContactCreated).await, [ids[0]]);
    assert_eq!(list(OutcomeFilter::ContactUpdated).await, [ids[1]]);
    assert_eq!(list(OutcomeFilter::StartedCampaign).await, [ids[2]]);
    assert_eq!(list(OutcomeFilter::Nothing).await, [ids[3]], "a skip is nothing; a start is something");
    let with_name =
        EventFilter { outcome: Some(OutcomeFilter::ContactCreated), name: Some("b".into()), ..EventFilter::default() };
    assert!(store.list_events(ws, &with_name, PageRequest::first(50)).await.expect("list").items.is_empty());
}

pub async fn contacts_are_created_filtered_updated_and_deleted(store: SharedStore) {
    let (ws, source) = with_source(&store).await;
    let new = |e: &str, plan: &str| NewContact {
        identity: herald_domain::Identity { email: Some(email(e)), ..Default::default() },
        first_name: Some("Ann".into()),
        attributes: json!({"plan": plan}).as_object().cloned().expect("object"),
        ..NewContact::default()
    };
    let a = store.create_contact(ws, new("a@example.com", "free"), at(1)).await.expect("create");
    let b = store.create_contact(ws, new("b@example.com", "pro"), at(2)).await.expect("create");
    let err = store.create_contact(ws, new("a@example.com", "x"), at(3)).await.expect_err("duplicate");
    assert!(matches!(err, StoreError::Conflict { ref constraint } if constraint == "contacts_email"), "{err:?}");

    let filter = |f: ContactFilter| {
        let store = store.clone();
        async move {
            store
                .list_contacts(ws, &f, PageRequest::first(10))
                .await
                .expect("list")
                .items
                .iter()
                .map(|c| c.id)
                .collect::<Vec<ContactId>>()
        }
    };
    assert_eq!(filter(ContactFilter::default()).await, vec![a.id, b.id]);
    assert_eq!(filter(ContactFilter { email: Some(email("b@example.com")), ..Default::default() }).await, vec![b.id]);
    assert_eq!(
        filter(ContactFilter { attribute: Some(("plan".into(), json!("free"))), ..Default::default() }).await,
        vec![a.id]
    );

    let patch = ContactPatch {
        user_id: Some(Some(UserId::parse("u-a").expect("id"))),
        last_name: Some(Some("Lee".into())),
        first_name: Some(None),
        attributes: json!({"plan": null, "seats": 3}).as_object().cloned().expect("object"),
        ..ContactPatch::default()
    };
    let updated = store.update_contact(ws, a.id, patch, at(5)).await.expect("update");
    assert_eq!((updated.first_name.as_deref(), updated.last_name.as_deref()), (None, Some("Lee")));
    assert_eq!(Value::Object(updated.attributes.clone()), json!({"seats": 3}));
    assert_eq!(updated.updated_at, at(5));
    assert_eq!(
        filter(ContactFilter { user_id: Some(UserId::parse("u-a").expect("id")), ..Default::default() }).await,
        vec![a.id]
    );
    let taken = ContactPatch { email: Some(Some(email("a@example.com"))), ..ContactPatch::default() };
    assert!(matches!(store.update_contact(ws, b.id, taken, at(6)).await, Err(StoreError::Conflict { .. })));

    let results = store
        .ingest(&[request(ws, source, json!({"email": "a@example.com", "event": "x"}), None, at(7))], at(7))
        .await
        .expect("ingest");
    let event_id = accepted(&results[0]).event_id;
    let other = store.create_workspace(&ws_name("other"), at(0)).await.expect("ws");
    assert!(matches!(store.delete_contact(other.id, a.id).await, Err(StoreError::NotFound { .. })));
    store.delete_contact(ws, a.id).await.expect("delete");
    assert!(matches!(store.get_contact(ws, a.id).await, Err(StoreError::NotFound { .. })));
    assert!(matches!(store.get_event(ws, event_id).await, Err(StoreError::NotFound { .. })), "events erased");
    assert_eq!(filter(ContactFilter::default()).await, vec![b.id]);
}

/// Every number serde_json holds comes back as it went in: integers of 64 bits on both sides
/// of 2^53, floats from the smallest subnormal to the largest, through ingest, a contact
/// update and a campaign step's attribute change (SQLite's `json_set`, PostgreSQL's `jsonb`).
pub async fn numbers_round_trip_exactly(store: SharedStore) {
    use crate::campaign::{AttributeChange, CampaignWork};
    let (ws, source) = with_source(&store).await;
    let numbers = json!({
        "u64": u64::MAX, "i64": i64::MIN, "p53": 9_007_199_254_740_993_u64, "id": 12_345_678_901_234_567_890_u64,
        "tenth": 0.1, "third": 1.0 / 3.0, "avogadro": 6.02e23, "max": f64::MAX, "tiny": 5e-324, "neg": -2.5e-300,
    });
    let body = json!({"email": "n@example.com", "event": "numbers", "data": numbers});
    let results = store.ingest(&[request(ws, source, body, None, at(1))], at(1)).await.expect("ingest");
    let receipt = accepted(&results[0]);
    let contact_id = receipt.contact_id.expect("contact");
    assert_eq!(Value::Object(store.get_event(ws, receipt.event_id).await.expect("event").properties), numbers);
    assert_eq!(Value::Object(store.get_contact(ws, contact_id).await.expect("contact").attributes), numbers);

    let patched = json!({"patched": u64::MAX - 1, "tenth": -0.1});
    let patch = ContactPatch { attributes: patched.as_object().cloned().expect("object"), ..ContactPatch::default() };
    store.update_contact(ws, contact_id, patch, at(2)).await.expect("update");
    let stepped = json!([u64::MAX, i64::MIN, f64::MAX, 5e-324, 9_007_199_254_740_993_u64]);
    let change = AttributeChange { contact_id, attribute: "stepped".into(), value: Some(stepped.clone()) };
    let work = CampaignWork { attributes: vec![change], ..CampaignWork::default() };
    store.commit_campaign_work(ws, None, &work, at(3)).await.expect("step");
    let mut expected = numbers.clone();
    expected["patched"] = json!(u64::MAX - 1);
    expected["tenth"] = json!(-0.1);
    expected["stepped"] = stepped;
    assert_eq!(Value::Object(store.get_contact(ws, contact_id).await.expect("contact").attributes), expected);
}

/// The attribute limits hold in every write that merges attributes, and a refused write
/// changes nothing.
pub async fn attribute_limits_hold_in_every_write(store: SharedStore) {
    use herald_domain::contact::{AttributeLimit, MAX_ATTRIBUTES};
    let (ws, source) = with_source(&store).await;
    let full: serde_json::Map<String, Value> = (0..MAX_ATTRIBUTES).map(|i| (format!("a{i:03}"), json!(i))).collect();
    let body = json!({"email": "full@example.com", "data": full});
    let results = store.ingest(&[request(ws, source, body, None, at(1))], at(1)).await.expect("ingest");
    let contact_id = accepted(&results[0]).contact_id.expect("contact");

    let over = json!({"email": "full@example.com", "event": "more", "data": {"more": 1}});
    let fine = json!({"email": "full@example.com", "data": {"a000": "changed"}});
    let results = store
        .ingest(&[request(ws, source, over, None, at(2)), request(ws, source, fine, None, at(2))], at(2))
        .await
        .expect("ingest");
    match &results[0] {
        IngestResult::OverLimit(e) => assert_eq!((e.name.as_str(), &e.reason), ("more", &AttributeLimit::TooMany)),
        other => panic!("expected OverLimit, got {other:?}"),
    }
    accepted(&results[1]);
    let filter = EventFilter { name: Some("more".into()), ..EventFilter::default() };
    assert!(store.list_events(ws, &filter, PageRequest::first(10)).await.expect("events").items.is_empty());

    let patch = |value: Value| ContactPatch {
        name: Some(Some("Changed".into())),
        attributes: value.as_object().cloned().expect("object"),
        ..ContactPatch::default()
    };
    let err = store.update_contact(ws, contact_id, patch(json!({"more": 1})), at(3)).await.expect_err("over");
    assert!(matches!(&err, StoreError::OverLimit(e) if e.name == "more"), "{err:?}");
    let contact = store.get_contact(ws, contact_id).await.expect("contact");
    assert_eq!((contact.name, contact.attributes.len()), (None, MAX_ATTRIBUTES), "nothing changed");
    assert_eq!(contact.attributes["a000"], "changed");
    store.update_contact(ws, contact_id, patch(json!({"a001": null, "more": 1})), at(3)).await.expect("room made");

    let wide = NewContact {
        identity: herald_domain::Identity { email: Some(email("wide@example.com")), ..Default::default() },
        attributes: (0..=MAX_ATTRIBUTES).map(|i| (format!("w{i:03}"), json!(i))).collect(),
        ..NewContact::default()
    };
    let err = store.create_contact(ws, wide.clone(), at(4)).await.expect_err("over");
    assert!(matches!(&err, StoreError::OverLimit(e) if e.name == "w300"), "{err:?}");
    let results = store.import_contacts(ws, &[wide], at(4)).await.expect("import");
    assert!(matches!(&results[0], Err(message) if message.starts_with("attributes.w300: ")), "{results:?}");
    assert!(
        store.list_contacts(ws, &ContactFilter::default(), PageRequest::first(10)).await.expect("list").items.len()
            == 1
    );
}

pub async fn contact_import_upserts_by_email(store: SharedStore) {
    let ws = store.ensure_default_workspace(at(0)).await.expect("ws");
    let existing = store
        .create_contact(
            ws.id,
            NewContact {
                identity: herald_domain::Identity {
                    email: Some(email("old@example.com")),
                    user_id: Some(UserId::parse("u-old").expect("id")),
                    phone: None,
                },
                ..NewContact::default()
            },
            at(0),
        )
        .await
        .expect("create");
    let mut rows: Vec<NewContact> = (0..2000)
        .map(|i| NewContact {
            identity: herald_domain::Identity {
                email: Some(email(&format!("row{i}@example.com"))),
                ..Default::default()
            },
            first_name: Some(format!("R{i}")),
            attributes: json!({"i": i}).as_object().cloned().expect("object"),
            ..NewContact::default()
        })
        .collect();
    rows.push(NewContact {
        identity: herald_domain::Identity { email: Some(email("old@example.com")), ..Default::default() },
        attributes: json!({"plan": "pro"}).as_object().cloned().expect("object"),
        ..NewContact::default()
    });
    rows.push(NewContact {
        identity: herald_domain::Identity {
            email: Some(email("thief@example.com")),
            user_id: Some(UserId::parse("u-old").expect("id")),
            phone: None,
        },
        ..NewContact::default()
    });
    let results = store.import_contacts(ws.id, &rows, at(1)).await.expect("import");
    assert_eq!(results.len(), 2002);
    assert!(results[..2000].iter().all(|r| matches!(r, Ok(ImportOutcome::Created(_)))));
    assert_eq!(results[2000], Ok(ImportOutcome::Updated(existing.id)));
    assert!(results[2001].as_ref().is_err_and(|e| e.contains("user_id")), "{:?}", results[2001]);
    let old = store.get_contact(ws.id, existing.id).await.expect("get");
    assert_eq!(old.attributes["plan"], "pro");
    let all = store.list_contacts(ws.id, &ContactFilter::default(), PageRequest::first(500)).await.expect("list");
    assert_eq!(all.items.len(), 500);
    let found = store
        .list_contacts(
            ws.id,
            &ContactFilter { email: Some(email("row1999@example.com")), ..Default::default() },
            PageRequest::first(5),
        )
        .await
        .expect("list");
    assert_eq!(found.items[0].first_name.as_deref(), Some("R1999"));
    assert!(
        store
            .list_contacts(
                ws.id,
                &ContactFilter { email: Some(email("thief@example.com")), ..Default::default() },
                PageRequest::first(5)
            )
            .await
            .expect("list")
            .items
            .is_empty()
    );
}

pub async fn attribute_search_examines_a_bounded_window(store: SharedStore) {
    let (ws, _) = with_source(&store).await;
    let total = ContactFilter::SCAN_WINDOW as usize + 5;
    let rows: Vec<NewContact> = (0..total)
        .map(|i| NewContact {
            identity: herald_domain::Identity {
                email: Some(email(&format!("w{i}@example.com"))),
                ..Default::default()
            },
            attributes: json!({"plan": "free"}).as_object().cloned().expect("object"),
            ..NewContact::default()
        })
        .collect();
    store.import_contacts(ws, &rows, at(1)).await.expect("import");
    let mut ids = Vec::new();
    let mut after = None;
    loop {
        let page =
            store.list_contacts(ws, &ContactFilter::default(), PageRequest { after, limit: 500 }).await.expect("list");
        ids.extend(page.items.iter().map(|c| c.id));
        match page.next_cursor {
            Some(cursor) => after = Some(herald_domain::Cursor::decode(cursor.as_str()).expect("cursor")),
            None => break,
        }
    }
    assert_eq!(ids.len(), total);
    let rare = ContactPatch {
        attributes: json!({"plan": "rare"}).as_object().cloned().expect("object"),
        ..ContactPatch::default()
    };
    // One match past the first window only.
    let late = ids[ContactFilter::SCAN_WINDOW as usize + 2];
    store.update_contact(ws, late, rare.clone(), at(2)).await.expect("update");
    let search = ContactFilter { attribute: Some(("plan".into(), json!("rare"))), ..ContactFilter::default() };
    let first = store.list_contacts(ws, &search, PageRequest::first(10)).await.expect("list");
    assert!(first.items.is_empty(), "the first window holds no match");
    let window_end = ids[ContactFilter::SCAN_WINDOW as usize - 1];
    assert_eq!(
        first.next_cursor,
        Some(herald_domain::Cursor::after(&window_end)),
        "continues after the contacts examined"
    );
    let second =
        store.list_contacts(ws, &search, PageRequest { after: Some(window_end), limit: 10 }).await.expect("list");
    assert_eq!(second.items.iter().map(|c| c.id).collect::<Vec<_>>(), vec![late]);
    assert_eq!(second.next_cursor, None, "the window reached the end");

    // Matches that fill a page end it at the last match, as any list does.
    for id in &ids[..2] {
        store.update_contact(ws, *id, rare.clone(), at(3)).await.expect("update");
    }
    let full = store.list_contacts(ws, &search, PageRequest::first(1)).await.expect("list");
    assert_eq!(full.items.iter().map(|c| c.id).collect::<Vec<_>>(), vec![ids[0]]);
    assert_eq!(full.next_cursor, Some(herald_domain::Cursor::after(&ids[0])));
    // An exact identifier is an index lookup, not a window.
    let by_email = ContactFilter { email: Some(email("w3@example.com")), ..search.clone() };
    let found = store.list_contacts(ws, &by_email, PageRequest::first(10)).await.expect("list");
    assert_eq!((found.items.len(), found.next_cursor), (0, None));
}

pub async fn expired_idempotency_keys_are_purged(store: SharedStore) {
    let (ws, source) = with_source(&store).await;
    let body = json!({"email": "p@example.com", "event": "paid"});
    let old = store.ingest(&[request(ws, source, body.clone(), Some("old"), at(0))], at(0)).await.expect("ingest");
    let recent =
        store.ingest(&[request(ws, source, body.clone(), Some("recent"), at(100))], at(100)).await.expect("ingest");
    assert_eq!(store.purge_idempotency_keys(at(50)).await.expect("purge"), 1);
    assert_eq!(store.purge_idempotency_keys(at(50)).await.expect("purge"), 0, "idempotent");
    // The recent key still replays; the purged one is simply new again.
    let again =
        store.ingest(&[request(ws, source, body.clone(), Some("recent"), at(101))], at(101)).await.expect("ingest");
    assert_eq!(again[0], IngestResult::Replayed(accepted(&recent[0])));
    let fresh = store.ingest(&[request(ws, source, body, Some("old"), at(102))], at(102)).await.expect("ingest");
    assert_ne!(accepted(&fresh[0]).event_id, accepted(&old[0]).event_id);
}

pub async fn finished_jobs_are_purged_after_their_retention(store: SharedStore) {
    let ws = store.ensure_default_workspace(at(0)).await.expect("ws");
    let jobs = [ping_job(at(0)), ping_job(at(0)), ping_job(at(0)), ping_job(at(500))];
    store.enqueue_jobs(ws.id, &jobs, at(0)).await.expect("enqueue");
    let claimed = store.claim_jobs(&claim(at(0), 10)).await.expect("claim");
    assert_eq!(claimed.len(), 3);
    store.finish_job(ws.id, &claimed[0].lease, &JobOutcome::Done, at(10)).await.expect("done");
    store
        .finish_job(ws.id, &claimed[1].lease, &JobOutcome::Dead { error: "gave up".into() }, at(10))
        .await
        .expect("dead");
    // claimed[2] stays running; the fourth job stays queued.
    assert_eq!(store.purge_finished_jobs(at(10), at(10), 100).await.expect("purge"), 0, "not older than the cut");
    assert_eq!(store.purge_finished_jobs(at(11), at(10), 100).await.expect("purge"), 1, "the done one");
    assert!(matches!(store.get_job(ws.id, claimed[0].job.id).await, Err(StoreError::NotFound { .. })));
    assert_eq!(store.get_job(ws.id, claimed[1].job.id).await.expect("dead kept").state, JobState::Dead);
    assert_eq!(store.purge_finished_jobs(at(11), at(11), 100).await.expect("purge"), 1, "the dead one");
    assert_eq!(store.purge_finished_jobs(at(10_000), at(10_000), 100).await.expect("purge"), 0, "unfinished jobs stay");
    assert_eq!(store.get_job(ws.id, claimed[2].job.id).await.expect("running").state, JobState::Running);
    let stats = store.queue_stats(at(0)).await.expect("stats");
    assert_eq!((stats.running, stats.scheduled), (1, 1));
}

// ---- Campaigns -------------------------------------------------------------------------

pub async fn campaigns_keep_versions_and_move_through_states(store: SharedStore) {
    use herald_domain::CampaignState::{Active, Archived, Draft, Paused};
    let (ws, _) = with_source(&store).await;
    let other = store.create_workspace(&WorkspaceName::parse("other").expect("name"), at(0)).await.expect("ws");
    let created = store.create_campaign(ws, "Onboarding", &json!({"v": 1}), at(1)).await.expect("create");
    assert_eq!((created.state, created.version, &created.document), (Draft, 1, &json!({"v": 1})));
    let updated = store.update_campaign(ws, created.id, "Onboarding 2", &json!({"v": 2}), at(2)).await.expect("update");
    assert_eq!((updated.version, updated.name.as_str(), &updated.document), (2, "Onboarding 2", &json!({"v": 2})));
    assert_eq!(store.campaign_version(ws, created.id, 1).await.expect("v1"), json!({"v": 1}));
    assert!(matches!(store.get_campaign(other.id, created.id).await, Err(StoreError::NotFound { .. })));
    assert!(store.live_campaigns(ws).await.expect("live").is_empty());

    let active = store.set_campaign_state(ws, created.id, &[Draft], Active, at(3)).await.expect("activate");
    assert_eq!(active.state, Active);
    let err = store.set_campaign_state(ws, created.id, &[Draft], Active, at(4)).await.expect_err("not a draft");
    assert!(matches!(err, StoreError::Conflict { ref constraint } if constraint == "campaign_state"), "{err:?}");
    store.set_campaign_state(ws, created.id, &[Active], Paused, at(4)).await.expect("pause");
    assert_eq!(store.live_campaigns(ws).await.expect("live").len(), 1);
    store.set_campaign_state(ws, created.id, &[Paused], Archived, at(5)).await.expect("archive");
    let err = store.update_campaign(ws, created.id, "x", &json!({}), at(6)).await.expect_err("archived");
    assert!(matches!(err, StoreError::Conflict { ref constraint } if constraint == "campaign_archived"), "{err:?}");
    let page = store.list_campaigns(ws, PageRequest::first(10)).await.expect("list");
    assert_eq!(page.items.iter().map(|c| c.id).collect::<Vec<_>>(), [created.id]);
    store.delete_campaign(ws, created.id).await.expect("delete");
    assert!(matches!(store.get_campaign(ws, created.id).await, Err(StoreError::NotFound { .. })));
}

pub async fn campaign_work_commits_whole_and_guarded(store: SharedStore) {
    use crate::campaign::{AttributeChange, CampaignWork, JourneyUpdate, MessageFilter, NewJourney, StepRecord};
    use herald_domain::{CampaignState, JourneyId, JourneyStatus, Message, MessageId, MessageStatus};
    let (ws, _) = with_source(&store).await;
    let contact = store
        .create_contact(
            ws,
            NewContact {
                identity: herald_domain::Identity { email: Some(email("j@example.com")), ..Default::default() },
                attributes: json!({"keep": 1, "drop": 2}).as_object().cloned().expect("object"),
                ..NewContact::default()
            },
            at(1),
        )
        .await
        .expect("contact");
    let campaign = store.create_campaign(ws, "C", &json!({}), at(1)).await.expect("campaign");
    let journey = |id: JourneyId| NewJourney {
        id,
        campaign_id: campaign.id,
        version: 1,
        contact_id: contact.id,
        event_id: None,
        exclusive: true,
        custom_variables: serde_json::Map::new(),
        goal_until: None,
        step: 0,
        run_at: at(2),
    };
    let first = JourneyId::from_uuid(crate::new_uuid(at(2)));
    let work = CampaignWork {
        journeys: vec![journey(first)],
        jobs: vec![NewJob::new(JobKind::JourneyStep, json!({}), at(2))],
        ..CampaignWork::default()
    };
    store.commit_campaign_work(ws, None, &work, at(2)).await.expect("enrol");

    // A second exclusive journey for the same contact fails, and nothing of its work stays.
    let message = Message {
        id: MessageId::from_uuid(crate::new_uuid(at(3))),
        workspace_id: ws,
        campaign_id: campaign.id,
        journey_id: first,
        step: "s".into(),
        contact_id: contact.id,
        status: MessageStatus::Sent,
        status_reason: None,
        to: "j@example.com".into(),
        from: "a@acme.test".into(),
        reply_to: None,
        subject: "Hi \u{e9}".into(),
        html: "<p>x</p>".into(),
        text: "x".into(),
        headers: serde_json::Map::new(),
        warnings: vec!["w".into()],
        transport: "outbox".into(),
        internet_message_id: "m1@acme.test".into(),
        attempts: 0,
        reply: None,
        bounce: None,
        created_at: at(3),
        sent_at: Some(at(3)),
    };
    let second = CampaignWork {
        journeys: vec![journey(JourneyId::from_uuid(crate::new_uuid(at(3))))],
        messages: vec![message.clone()],
        ..CampaignWork::default()
    };
    let err = store.commit_campaign_work(ws, None, &second, at(3)).await.expect_err("exclusive");
    assert!(
        matches!(err, StoreError::Conflict { ref constraint } if constraint == "journeys_campaign_id_contact_id"),
        "{err:?}"
    );
    assert!(
        store
            .list_messages(ws, &MessageFilter::default(), PageRequest::first(10))
            .await
            .expect("list")
            .items
            .is_empty()
    );

    // An update that expects another place fails; the right one applies with its effects.
    let update = |expect_step, status| JourneyUpdate {
        id: first,
        expect: Some((Some(expect_step), Some(at(2)))),
        status,
        step: None,
        run_at: None,
        held: false,
        custom_variables: Some(json!({"stage": "done"}).as_object().cloned().expect("object")),
        exit_reason: None,
        converted: false,
        conversion_step: None,
    };
    let moved = CampaignWork { updates: vec![update(7, JourneyStatus::Completed)], ..CampaignWork::default() };
    let err = store.commit_campaign_work(ws, None, &moved, at(3)).await.expect_err("moved");
    assert!(matches!(err, StoreError::Conflict { ref constraint } if constraint == "journey_moved"), "{err:?}");
    let done = CampaignWork {
        updates: vec![update(0, JourneyStatus::Completed)],
        messages: vec![message.clone()],
        steps: vec![StepRecord {
            journey_id: first,
            campaign_id: campaign.id,
            step: "s".into(),
            outcome: "sent".into(),
            detail: json!({}),
            message_id: Some(message.id),
            at: at(3),
        }],
        attributes: vec![
            AttributeChange { contact_id: contact.id, attribute: "added".into(), value: Some(json!({"n": [1]})) },
            AttributeChange { contact_id: contact.id, attribute: "drop".into(), value: None },
        ],
        ..CampaignWork::default()
    };
    store.commit_campaign_work(ws, None, &done, at(3)).await.expect("complete");
    let finished = store.journey_context(ws, first).await.expect("journey").journey;
    assert_eq!((finished.status, finished.ended_at, finished.step), (JourneyStatus::Completed, Some(at(3)), None));
    assert_eq!(finished.custom_variables["stage"], "done");
    assert_eq!(store.get_message(ws, message.id).await.expect("message"), message);
    let filter =
        MessageFilter { contact: Some(contact.id), status: Some(MessageStatus::Sent), ..MessageFilter::default() };
    assert_eq!(store.list_messages(ws, &filter, PageRequest::first(10)).await.expect("list").items.len(), 1);
    let attributes = store.get_contact(ws, contact.id).await.expect("contact").attributes;
    assert_eq!(Value::Object(attributes), json!({"keep": 1, "added": {"n": [1]}}));
    let stats = store.campaign_stats(ws, campaign.id).await.expect("stats");
    assert_eq!((stats.entered, stats.completed, stats.active), (1, 1, 0));
    assert_eq!(stats.steps["s"]["sent"], 1);
    assert_eq!(store.contact_journeys(ws, contact.id, Some(campaign.id), 10).await.expect("journeys").len(), 1);
    let other = store.create_campaign(ws, "other", &json!({}), at(1)).await.expect("campaign");
    assert!(store.contact_journeys(ws, contact.id, Some(other.id), 10).await.expect("none").is_empty());
    let elsewhere = JourneyId::from_uuid(crate::new_uuid(at(4)));
    let enrol = CampaignWork {
        journeys: vec![crate::campaign::NewJourney::at_start(elsewhere, other.id, contact.id, at(4))],
        ..CampaignWork::default()
    };
    store.commit_campaign_work(ws, None, &enrol, at(4)).await.expect("enrol elsewhere");
    let all = store.contact_journeys(ws, contact.id, None, 10).await.expect("all campaigns");
    assert_eq!(all.iter().map(|j| j.id).collect::<Vec<_>>(), [elsewhere, first], "every campaign, newest first");

    // Held journeys get their step job back when the campaign becomes active again.
    let held = JourneyId::from_uuid(crate::new_uuid(at(4)));
    let hold = CampaignWork { journeys: vec![journey(held)], ..CampaignWork::default() };
    store.commit_campaign_work(ws, None, &hold, at(4)).await.expect("enrol again");
    let mark = JourneyUpdate {
        id: held,
        expect: None,
        status: JourneyStatus::Active,
        step: Some(0),
        run_at: Some(at(2)),
        held: true,
        custom_variables: None,
        exit_reason: None,
        converted: false,
        conversion_step: None,
    };
    store
        .commit_campaign_work(ws, None, &CampaignWork { updates: vec![mark], ..CampaignWork::default() }, at(4))
        .await
        .expect("hold");
    store
        .set_campaign_state(ws, campaign.id, &[CampaignState::Draft], CampaignState::Paused, at(5))
        .await
        .expect("paused");
    let before = store.queue_stats(at(5)).await.expect("stats").due;
    store
        .set_campaign_state(ws, campaign.id, &[CampaignState::Paused], CampaignState::Active, at(5))
        .await
        .expect("resume");
    assert_eq!(store.queue_stats(at(5)).await.expect("stats").due, before + 1);
    assert!(!store.journey_context(ws, held).await.expect("journey").journey.held);

    // Journeys read together: unknown ids and other workspaces' journeys are left out.
    let unknown = JourneyId::from_uuid(crate::new_uuid(at(6)));
    let mut read: Vec<JourneyId> = store
        .journey_contexts(ws, &[held, unknown, first, elsewhere])
        .await
        .expect("contexts")
        .into_iter()
        .map(|c| c.journey.id)
        .collect();
    read.sort();
    let mut expected = vec![first, held, elsewhere];
    expected.sort();
    assert_eq!(read, expected);
    let stranger = store.create_workspace(&ws_name("stranger"), at(6)).await.expect("workspace").id;
    assert!(store.journey_contexts(stranger, &[first, held]).await.expect("none").is_empty());
    assert!(matches!(store.journey_context(stranger, held).await, Err(StoreError::NotFound { .. })));

    // Updates committed together: one whose journey moved is refused alone, as is a second
    // update of a journey in the same batch; the others apply.
    let place = |id, expect_step, step| JourneyUpdate {
        id,
        expect: Some((Some(expect_step), Some(at(2)))),
        status: JourneyStatus::Active,
        step: Some(step),
        run_at: Some(at(9)),
        held: false,
        custom_variables: None,
        exit_reason: None,
        converted: false,
        conversion_step: None,
    };
    let works = [
        CampaignWork { updates: vec![place(held, 0, 1)], ..CampaignWork::default() },
        CampaignWork { updates: vec![place(elsewhere, 5, 1)], ..CampaignWork::default() },
        CampaignWork { updates: vec![place(held, 0, 2)], ..CampaignWork::default() },
    ];
    let items: Vec<_> =
        works.iter().map(|work| crate::campaign::WorkCommit { workspace: ws, lease: None, work }).collect();
    let results = store.commit_campaign_batch(&items, at(7)).await.expect("batch");
    assert!(results[0].is_ok(), "{:?}", results[0]);
    for refused in &results[1..] {
        assert!(
            matches!(refused, Err(StoreError::Conflict { constraint }) if constraint == "journey_moved"),
            "{refused:?}"
        );
    }
    let moved = store.journey_context(ws, held).await.expect("journey").journey;
    assert_eq!((moved.step, moved.run_at), (Some(1), Some(at(9))));
    let kept = store.journey_context(ws, elsewhere).await.expect("journey").journey;
    assert_eq!((kept.step, kept.run_at), (Some(0), Some(at(4))));
}

/// A contact with a journey in a fresh campaign, for the email cases.
async fn journey_for(store: &SharedStore, address: &str) -> (WorkspaceId, ContactId, herald_domain::JourneyId) {
    use crate::campaign::CampaignWork;
    let ws = store.ensure_default_workspace(at(0)).await.expect("ws").id;
    let contact = store
        .create_contact(
            ws,
            NewContact {
                identity: herald_domain::Identity { email: Some(email(address)), ..Default::default() },
                ..NewContact::default()
            },
            at(1),
        )
        .await
        .expect("contact");
    let campaign = store.create_campaign(ws, address, &json!({}), at(1)).await.expect("campaign");
    let journey = herald_domain::JourneyId::from_uuid(crate::new_uuid(at(1)));
    let work = CampaignWork {
        journeys: vec![crate::campaign::NewJourney::at_start(journey, campaign.id, contact.id, at(1))],
        ..CampaignWork::default()
    };
    store.commit_campaign_work(ws, None, &work, at(1)).await.expect("enrol");
    (ws, contact.id, journey)
}

fn queued_message(
    ws: WorkspaceId,
    contact: ContactId,
    journey: herald_domain::JourneyId,
    campaign: herald_domain::CampaignId,
    from: &str,
    status: herald_domain::MessageStatus,
) -> herald_domain::Message {
    let id = herald_domain::MessageId::from_uuid(crate::new_uuid(at(2)));
    herald_domain::Message {
        id,
        workspace_id: ws,
        campaign_id: campaign,
        journey_id: journey,
        step: "s".into(),
        contact_id: contact,
        status,
        status_reason: (status == herald_domain::MessageStatus::Held).then(|| crate::email::DOMAIN_UNVERIFIED.into()),
        to: "to@example.com".into(),
        from: from.into(),
        reply_to: None,
        subject: "s".into(),
        html: "h".into(),
        text: "t".into(),
        headers: serde_json::Map::new(),
        warnings: vec![],
        transport: "smtp".into(),
        internet_message_id: format!("{id}@example.com"),
        attempts: 0,
        reply: None,
        bounce: None,
        created_at: at(2),
        sent_at: None,
    }
}

fn new_domain(name: &str) -> crate::email::NewDomain {
    crate::email::NewDomain {
        name: name.into(),
        selector: "herald1".into(),
        algorithm: "ed25519".into(),
        private_key: format!("secret-of-{name}"),
        records: json!([{"purpose": "dkim", "name": format!("herald1._domainkey.{name}")}]),
    }
}

pub async fn domains_release_held_messages_when_verified(store: SharedStore) {
    use crate::campaign::CampaignWork;
    use crate::email::DomainCheck;
    use herald_domain::{DomainStatus, MessageStatus};
    let (ws, contact, journey) = journey_for(&store, "held@example.com").await;
    let campaign = store.journey_context(ws, journey).await.expect("journey").journey.campaign_id;
    let domain = store.create_domain(ws, new_domain("mail.acme.test"), at(1)).await.expect("domain");
    assert_eq!((domain.status, domain.checked_at), (DomainStatus::Pending, None));
    let err = store.create_domain(ws, new_domain("mail.acme.test"), at(1)).await.expect_err("duplicate");
    assert!(matches!(err, StoreError::Conflict { ref constraint } if constraint == "domains_name"), "{err:?}");
    let other = store.create_workspace(&ws_name("other"), at(0)).await.expect("other");
    store.create_domain(other.id, new_domain("mail.acme.test"), at(1)).await.expect("same name elsewhere");
    assert!(matches!(store.get_domain(other.id, domain.id).await, Err(StoreError::NotFound { .. })));
    let (found, key) = store.domain_key(ws, "mail.acme.test").await.expect("key").expect("present");
    assert_eq!((found.id, key.as_str()), (domain.id, "secret-of-mail.acme.test"));
    assert!(store.domain_key(ws, "other.test").await.expect("key").is_none());

    let held = queued_message(ws, contact, journey, campaign, "Acme <News@Mail.Acme.test>", MessageStatus::Held);
    let elsewhere = queued_message(ws, contact, journey, campaign, "x@other.test", MessageStatus::Held);
    let work = CampaignWork { messages: vec![held.clone(), elsewhere.clone()], ..CampaignWork::default() };
    store.commit_campaign_work(ws, None, &work, at(2)).await.expect("messages");

    // A failed check releases nothing; a passing one releases this domain's held messages.
    let failed = DomainCheck { status: DomainStatus::Failed, checks: json!([{"status": "missing"}]), warning: None };
    let (after, released) = store.record_domain_check(ws, domain.id, &failed, at(3)).await.expect("check");
    assert_eq!(
        (after.status, after.checked_at, after.verified_at, released),
        (DomainStatus::Failed, Some(at(3)), None, 0)
    );
    let before = store.queue_stats(at(4)).await.expect("stats").due;
    let passed = DomainCheck { status: DomainStatus::Verified, checks: json!([{"status": "matching"}]), warning: None };
    let (after, released) = store.record_domain_check(ws, domain.id, &passed, at(4)).await.expect("check");
    assert_eq!((after.status, after.verified_at, released), (DomainStatus::Verified, Some(at(4)), 1));
    assert_eq!(after.checks, json!([{"status": "matching"}]));
    assert_eq!(store.queue_stats(at(4)).await.expect("stats").due, before + 1);
    let released = store.get_message(ws, held.id).await.expect("message");
    assert_eq!((released.status, released.status_reason), (MessageStatus::Queued, None));
    assert_eq!(store.get_message(ws, elsewhere.id).await.expect("message").status, MessageStatus::Held);
    let jobs = store.claim_jobs(&claim(at(4), 10)).await.expect("claim");
    let delivery = jobs.iter().find(|j| j.job.kind == JobKind::DeliverMessage.as_str()).expect("delivery job");
    assert_eq!(delivery.job.payload["message"], json!(held.id));

    // Verified stays verified (and keeps its first verification time) with a warning.
    let warned = DomainCheck { warning: Some("the SPF record disappeared".into()), ..passed };
    let (after, _) = store.record_domain_check(ws, domain.id, &warned, at(9)).await.expect("check");
    assert_eq!((after.verified_at, after.warning.as_deref()), (Some(at(4)), Some("the SPF record disappeared")));
    assert_eq!(store.domains_to_check(at(9), 10).await.expect("due").len(), 1, "the other workspace's");
    assert_eq!(store.domains_to_check(at(10), 10).await.expect("due").len(), 2);
    store.delete_domain(ws, domain.id).await.expect("delete");
    assert!(store.list_domains(ws).await.expect("list").is_empty());
    assert!(matches!(store.delete_domain(ws, domain.id).await, Err(StoreError::NotFound { .. })));
}

pub async fn deliveries_are_fenced_by_the_lease(store: SharedStore) {
    use crate::campaign::CampaignWork;
    use crate::email::{Delivery, delivery_job};
    use herald_domain::MessageStatus;
    let (ws, contact, journey) = journey_for(&store, "d@example.com").await;
    let campaign = store.journey_context(ws, journey).await.expect("journey").journey.campaign_id;
    let message = queued_message(ws, contact, journey, campaign, "a@acme.test", MessageStatus::Queued);
    let work = CampaignWork {
        messages: vec![message.clone()],
        jobs: vec![delivery_job(message.id, at(2))],
        ..CampaignWork::default()
    };
    store.commit_campaign_work(ws, None, &work, at(2)).await.expect("queue");
    let first = store.claim_jobs(&claim(at(2), 1)).await.expect("claim").pop().expect("job");
    // The lease expires and another worker claims the job: the first one's result is refused.
    let second = store.claim_jobs(&claim(at(40), 1)).await.expect("claim").pop().expect("job again");
    let sent = Delivery {
        status: MessageStatus::Sent,
        reason: None,
        reply: Some("250 2.0.0 Ok: queued as A1".into()),
        attempts: 1,
        sent_at: Some(at(40)),
        bounce: None,
        suppress: None,
    };
    let err = store
        .record_delivery(ws, &first.lease, message.id, &sent, &JobOutcome::Done, &[], at(40))
        .await
        .expect_err("stale lease");
    assert!(matches!(err, StoreError::LeaseLost), "{err:?}");
    assert_eq!(store.get_message(ws, message.id).await.expect("message").status, MessageStatus::Queued);
    // A transient failure keeps the message queued and the job coming back.
    let retry = Delivery {
        status: MessageStatus::Queued,
        reason: Some("451 4.3.0 Try again later".into()),
        reply: Some("451 4.3.0 Try again later".into()),
        attempts: 1,
        sent_at: None,
        bounce: None,
        suppress: None,
    };
    let outcome = JobOutcome::Retry { at: at(100), error: "451".into() };
    store.record_delivery(ws, &second.lease, message.id, &retry, &outcome, &[], at(41)).await.expect("retry");
    let third = store.claim_jobs(&claim(at(100), 1)).await.expect("claim").pop().expect("retried job");
    let sent = Delivery { attempts: 2, sent_at: Some(at(100)), ..sent };
    store.record_delivery(ws, &third.lease, message.id, &sent, &JobOutcome::Done, &[], at(100)).await.expect("sent");
    let stored = store.get_message(ws, message.id).await.expect("message");
    assert_eq!(
        (stored.status, stored.status_reason, stored.reply.as_deref(), stored.attempts, stored.sent_at),
        (MessageStatus::Sent, None, Some("250 2.0.0 Ok: queued as A1"), 2, Some(at(100)))
    );
    assert_eq!(stored.internet_message_id, message.internet_message_id);
    assert_eq!(store.get_job(ws, third.job.id).await.expect("job").state, JobState::Done);
}

/// A hard bounce commits the message `bounced` and its address suppressed with the job's
/// completion; soft bounces are counted per address (in any case) and time, per workspace.
pub async fn bounces_are_recorded_with_their_suppression_and_soft_ones_counted(store: SharedStore) {
    use crate::campaign::CampaignWork;
    use crate::email::{Delivery, delivery_job};
    use herald_domain::{BounceKind, MessageStatus, Suppression};
    let (ws, contact, journey) = journey_for(&store, "b@example.com").await;
    let campaign = store.journey_context(ws, journey).await.expect("journey").journey.campaign_id;
    let hard = queued_message(ws, contact, journey, campaign, "a@acme.test", MessageStatus::Queued);
    let soft = herald_domain::Message {
        id: herald_domain::MessageId::from_uuid(crate::new_uuid(at(3))),
        to: "Soft@Example.com".into(),
        ..queued_message(ws, contact, journey, campaign, "a@acme.test", MessageStatus::Queued)
    };
    let work = CampaignWork {
        messages: vec![hard.clone(), soft.clone()],
        jobs: vec![delivery_job(hard.id, at(2)), delivery_job(soft.id, at(2))],
        ..CampaignWork::default()
    };
    store.commit_campaign_work(ws, None, &work, at(2)).await.expect("queue");
    let mut jobs = store.claim_jobs(&claim(at(2), 2)).await.expect("claim");
    assert_eq!(jobs.len(), 2);
    let (first, second) = (jobs.remove(0), jobs.remove(0));
    let suppression = Suppression {
        email: "to@example.com".into(),
        contact_id: Some(contact),
        reason: "hard_bounce".into(),
        detail: Some("550 5.1.1 No such user".into()),
        created_at: at(5),
    };
    let bounced = Delivery {
        status: MessageStatus::Bounced,
        reason: Some("permanent: 550 5.1.1 No such user".into()),
        reply: Some("550 5.1.1 No such user".into()),
        attempts: 1,
        sent_at: None,
        bounce: Some(BounceKind::Hard),
        suppress: Some(suppression.clone()),
    };
    let lease_of = |leased: &herald_domain::LeasedJob, id| {
        if leased.job.payload["message"] == json!(id) { Some(leased.lease) } else { None }
    };
    let (hard_lease, soft_lease) = match lease_of(&first, hard.id) {
        Some(lease) => (lease, second.lease),
        None => (second.lease, first.lease),
    };
    store.record_delivery(ws, &hard_lease, hard.id, &bounced, &JobOutcome::Done, &[], at(5)).await.expect("bounce");
    let stored = store.get_message(ws, hard.id).await.expect("message");
    assert_eq!((stored.status, stored.bounce), (MessageStatus::Bounced, Some(BounceKind::Hard)));
    assert_eq!(store.suppression(ws, "to@example.com").await.expect("read"), Some(suppression.clone()));

    let gave_up = Delivery {
        status: MessageStatus::Failed,
        reason: Some("gave up after 30 attempts: transient: 451 4.3.0 Try again later".into()),
        reply: Some("451 4.3.0 Try again later".into()),
        attempts: 30,
        sent_at: None,
        bounce: Some(BounceKind::Soft),
        // An address already suppressed keeps its first record.
        suppress: Some(Suppression { reason: "soft_bounce".into(), created_at: at(6), ..suppression.clone() }),
    };
    store.record_delivery(ws, &soft_lease, soft.id, &gave_up, &JobOutcome::Done, &[], at(6)).await.expect("soft");
    assert_eq!(store.get_message(ws, soft.id).await.expect("message").bounce, Some(BounceKind::Soft));
    assert_eq!(store.suppression(ws, "to@example.com").await.expect("read"), Some(suppression));
    // Counted by address in any case, from a time on, in this workspace only.
    assert_eq!(store.soft_bounces(ws, "soft@example.com", at(0)).await.expect("count"), 1);
    assert_eq!(store.soft_bounces(ws, "SOFT@example.com", at(2)).await.expect("count"), 1);
    assert_eq!(store.soft_bounces(ws, "soft@example.com", at(3)).await.expect("count"), 0);
    assert_eq!(store.soft_bounces(ws, "to@example.com", at(0)).await.expect("count"), 0, "a hard bounce");
    let other = store.create_workspace(&ws_name("bounces-elsewhere"), at(0)).await.expect("other");
    assert_eq!(store.soft_bounces(other.id, "soft@example.com", at(0)).await.expect("count"), 0);
}

pub async fn suppressions_transports_and_secrets(store: SharedStore) {
    use crate::email::TransportRecord;
    use herald_domain::Suppression;
    let (ws, contact, journey) = journey_for(&store, "s@example.com").await;
    let context = store.journey_context(ws, journey).await.expect("journey");
    assert_eq!((context.suppressed, context.workspace_smtp), (false, false));

    let suppression = |address: &str, reason: &str, t| Suppression {
        email: address.into(),
        contact_id: Some(contact),
        reason: reason.into(),
        detail: Some("from a test".into()),
        created_at: at(t),
    };
    let first = store.add_suppression(ws, &suppression("s@example.com", "unsubscribed", 3), &[]).await.expect("add");
    let again = store.add_suppression(ws, &suppression("s@example.com", "manual", 4), &[]).await.expect("again");
    assert_eq!(again, first, "the first record stays");
    assert_eq!(store.suppression(ws, "s@example.com").await.expect("read"), Some(first.clone()));
    assert!(store.journey_context(ws, journey).await.expect("journey").suppressed);
    for address in ["a@example.com", "b@example.com", "c@example.com"] {
        store.add_suppression(ws, &suppression(address, "manual", 5), &[]).await.expect("add");
    }
    let mut seen = Vec::new();
    let mut page = PageRequest::first(2);
    loop {
        let listed = store.list_suppressions(ws, page.clone()).await.expect("list");
        seen.extend(listed.items.into_iter().map(|s| s.email));
        match listed.next_cursor {
            Some(c) => page.after = Some(herald_domain::Cursor::decode(c.as_str()).expect("cursor")),
            None => break,
        }
    }
    assert_eq!(seen, ["a@example.com", "b@example.com", "c@example.com", "s@example.com"]);
    let other = store.create_workspace(&ws_name("other"), at(0)).await.expect("other");
    assert_eq!(store.suppression(other.id, "s@example.com").await.expect("read"), None);
    store.remove_suppression(ws, "s@example.com").await.expect("remove");
    assert!(matches!(store.remove_suppression(ws, "s@example.com").await, Err(StoreError::NotFound { .. })));
    assert!(!store.journey_context(ws, journey).await.expect("journey").suppressed);

    let transport = TransportRecord {
        settings: json!({"host": "smtp.example.com", "port": 587}),
        password: Some("hunter2".into()),
        updated_at: at(6),
    };
    assert_eq!(store.transport(ws).await.expect("none"), None);
    store.set_transport(ws, Some(&transport)).await.expect("set");
    store.set_transport(ws, Some(&transport)).await.expect("replace");
    assert_eq!(store.transport(ws).await.expect("read"), Some(transport));
    assert!(store.journey_context(ws, journey).await.expect("journey").workspace_smtp);
    assert_eq!(store.transport(other.id).await.expect("other"), None);
    store.set_transport(ws, None).await.expect("clear");
    assert_eq!(store.transport(ws).await.expect("cleared"), None);

    let secret = store.email_secret(ws, "first").await.expect("secret");
    assert_eq!(secret, "first");
    assert_eq!(store.email_secret(ws, "second").await.expect("secret"), "first");
    assert_eq!(store.email_secret(other.id, "third").await.expect("secret"), "third");
}

/// Secrets written through the store are sealed with the store's current key: they read back
/// as written, and sealing again on start finds nothing to do.
pub async fn sealed_secrets_read_back_and_need_no_second_sealing(store: SharedStore) {
    use crate::email::TransportRecord;
    use crate::webhook::SigningKeyRecord;
    assert_eq!(store.reseal_secrets().await.expect("an empty database"), 0);
    let ws = store.ensure_default_workspace(at(0)).await.expect("workspace").id;
    let transport =
        TransportRecord { settings: json!({"host": "relay.test"}), password: Some("pw".into()), updated_at: at(1) };
    store.set_transport(ws, Some(&transport)).await.expect("transport");
    let key = SigningKeyRecord { id: "whk_1".into(), secret: vec![7; 32], created_at: at(1), retires_at: None };
    store.rotate_signing_key(ws, &key, at(1)).await.expect("key");
    let definition = json!({"url": "https://crm.test/x", "basic_auth": {"username": "u", "password": "p"}});
    let action = store.create_action(ws, "Ticket", &definition, at(1)).await.expect("action");
    assert_eq!(store.email_secret(ws, "unsubscribe-secret").await.expect("secret"), "unsubscribe-secret");
    // Secrets inside documents: a campaign's webhook step, a queued call and a delivery's call.
    let document = json!({"name": "Hooks", "steps": [{"id": "crm", "type": "webhook",
        "basic_auth": {"username": "u", "password": "step-pw"}, "headers": {"X-Api-Key": "step-key"}}]});
    let campaign = store.create_campaign(ws, "Hooks", &document, at(1)).await.expect("campaign");
    let call = json!({"endpoint": "https://crm.test:443", "basic_auth": "u:call-pw", "secret": "own",
                      "request": {"headers": [["Authorization", "Bearer t"], ["X-Team", "growth"]]}});
    store.enqueue_jobs(ws, &[crate::webhook::webhook_job(call.clone(), at(1))], at(1)).await.expect("job");
    let delivery = crate::webhook::NewDelivery {
        journey_id: None,
        campaign_id: None,
        contact_id: None,
        step: None,
        campaign_webhook_id: None,
        idempotency_key: "sealed".into(),
        endpoint: "https://crm.test:443".into(),
        request: json!({}),
        call: call.clone(),
    };
    store.open_delivery(ws, &delivery, at(1)).await.expect("delivery");
    assert_eq!(store.reseal_secrets().await.expect("reseal"), 0, "everything is sealed with the current key already");
    assert_eq!(store.transport(ws).await.expect("read"), Some(transport));
    assert_eq!(store.signing_keys(ws, at(2)).await.expect("keys")[0].secret, key.secret);
    assert_eq!(store.actions_by_ids(ws, &[action.id]).await.expect("actions")[0].definition, definition);
    assert_eq!(store.email_secret(ws, "other").await.expect("secret"), "unsubscribe-secret");
    assert_eq!(store.get_campaign(ws, campaign.id).await.expect("campaign").document, document);
    assert_eq!(store.campaign_version(ws, campaign.id, 1).await.expect("version"), document);
    assert_eq!(store.claim_jobs(&claim(at(2), 1)).await.expect("claim")[0].job.payload, call);
}

pub async fn webhook_deliveries_are_idempotent_and_fenced(store: SharedStore) {
    use crate::webhook::{DeliveryFilter, DeliveryProgress, NewDelivery, webhook_job};
    use herald_domain::{WebhookAttempt, WebhookStatus};
    let (ws, contact, journey) = journey_for(&store, "w@example.com").await;
    let new = NewDelivery {
        journey_id: Some(journey),
        campaign_id: None,
        contact_id: Some(contact),
        step: Some("crm".into()),
        campaign_webhook_id: None,
        idempotency_key: "jrn.crm".into(),
        endpoint: "https://crm.example.com:443".into(),
        request: json!({"method": "POST", "url": "https://crm.example.com/leads", "body": "{}"}),
        call: json!({"endpoint": "https://crm.example.com:443", "basic_auth": "u:p"}),
    };
    let first = store.open_delivery(ws, &new, at(2)).await.expect("open");
    assert_eq!((first.status, first.attempts), (WebhookStatus::Pending, 0));
    let again = store.open_delivery(ws, &new, at(3)).await.expect("open again");
    assert_eq!(again.id, first.id, "the same idempotency key is the same call");

    store.enqueue_jobs(ws, &[webhook_job(json!({"delivery": first.id}), at(2))], at(2)).await.expect("job");
    let stale = store.claim_jobs(&claim(at(2), 1)).await.expect("claim").pop().expect("job");
    let current = store.claim_jobs(&claim(at(40), 1)).await.expect("claim").pop().expect("job again");
    let attempt = |number, status: Option<u16>| WebhookAttempt {
        number,
        at: at(40),
        request_line: "POST https://crm.example.com/leads".into(),
        request_headers: json!({"authorization": "***"}),
        status,
        latency_ms: 12,
        response_body: None,
        error: status.is_none().then(|| "timed out after 4 s".into()),
    };
    let retry = DeliveryProgress {
        status: WebhookStatus::Pending,
        last_status: Some(500),
        last_error: Some("500".into()),
        response: Value::Null,
    };
    let again_later = JobOutcome::Retry { at: at(100), error: "500".into() };
    let err = store
        .record_attempt(ws, &stale.lease, first.id, &attempt(1, Some(500)), &retry, &again_later, &[], at(40))
        .await
        .expect_err("stale lease");
    assert!(matches!(err, StoreError::LeaseLost), "{err:?}");
    store
        .record_attempt(ws, &current.lease, first.id, &attempt(1, Some(500)), &retry, &again_later, &[], at(41))
        .await
        .expect("retry");
    let next = store.claim_jobs(&claim(at(100), 1)).await.expect("claim").pop().expect("retried");
    let done = DeliveryProgress {
        status: WebhookStatus::Succeeded,
        last_status: Some(200),
        last_error: None,
        response: json!({"lead_id": 7}),
    };
    let follow = NewJob::new(JobKind::JourneyStep, json!({"journey": journey}), at(100));
    store
        .record_attempt(ws, &next.lease, first.id, &attempt(2, Some(200)), &done, &JobOutcome::Done, &[follow], at(100))
        .await
        .expect("succeeded");
    let (stored, attempts) = store.get_delivery(ws, first.id).await.expect("get");
    assert_eq!(
        (stored.status, stored.attempts, stored.last_status, stored.finished_at),
        (WebhookStatus::Succeeded, 2, Some(200), Some(at(100)))
    );
    assert_eq!(stored.response, json!({"lead_id": 7}));
    assert_eq!(attempts.iter().map(|a| a.status).collect::<Vec<_>>(), [Some(500), Some(200)]);
    assert_eq!(attempts[0].request_headers, json!({"authorization": "***"}));
    let follow_up = store.claim_jobs(&claim(at(100), 5)).await.expect("claim");
    assert!(follow_up.iter().any(|j| j.job.kind == JobKind::JourneyStep.as_str()), "the journey goes on");
    let by_contact = DeliveryFilter { contact: Some(contact), ..DeliveryFilter::default() };
    assert_eq!(store.list_deliveries(ws, &by_contact, PageRequest::first(10)).await.expect("list").items.len(), 1);
    let failed = DeliveryFilter { status: Some(WebhookStatus::Failed), ..DeliveryFilter::default() };
    assert!(store.list_deliveries(ws, &failed, PageRequest::first(10)).await.expect("list").items.is_empty());
    let other = store.create_workspace(&ws_name("other"), at(0)).await.expect("other");
    assert!(matches!(store.get_delivery(other.id, first.id).await, Err(StoreError::NotFound { .. })));

    // Resending: by id, or every call of a status finished in a time range; each gets its
    // stored call back as a job.
    let none = store
        .resend_deliveries(ws, &[], Some(WebhookStatus::Failed), at(0), at(1000), 10, at(200))
        .await
        .expect("none failed");
    assert!(none.is_empty());
    let by_range = store
        .resend_deliveries(ws, &[], Some(WebhookStatus::Succeeded), at(0), at(1000), 10, at(200))
        .await
        .expect("resend");
    assert_eq!(by_range, [first.id]);
    let (stored, _) = store.get_delivery(ws, first.id).await.expect("get");
    assert_eq!((stored.status, stored.finished_at), (WebhookStatus::Pending, None));
    let jobs = store.claim_jobs(&claim(at(200), 10)).await.expect("claim");
    let resent = jobs.iter().find(|j| j.job.kind == JobKind::DeliverWebhook.as_str()).expect("a delivery job");
    assert_eq!(resent.job.payload["basic_auth"], "u:p", "the stored call, secrets included");
    let pending = store.resend_deliveries(ws, &[first.id], None, at(0), at(0), 10, at(201)).await.expect("pending");
    assert!(pending.is_empty(), "a pending call is not resent twice");
    assert!(
        store
            .resend_deliveries(other.id, &[first.id], None, at(0), at(0), 10, at(201))
            .await
            .expect("other")
            .is_empty()
    );
}

/// A call of journey step `key` (its idempotency key too) to a CRM.
fn crm_call(journey: herald_domain::JourneyId, contact: ContactId, key: &str) -> crate::webhook::NewDelivery {
    crate::webhook::NewDelivery {
        journey_id: Some(journey),
        campaign_id: None,
        contact_id: Some(contact),
        step: Some(key.into()),
        campaign_webhook_id: None,
        idempotency_key: key.into(),
        endpoint: "https://crm.example.com:443".into(),
        request: json!({"method": "POST", "url": "https://crm.example.com/leads"}),
        call: json!({"endpoint": "https://crm.example.com:443"}),
    }
}

pub async fn journey_steps_record_the_calls_they_made(store: SharedStore) {
    use crate::campaign::CampaignWork;
    use crate::webhook::{CallRecord, DeliveryProgress, webhook_job};
    use herald_domain::{WebhookAttempt, WebhookDeliveryId, WebhookStatus};
    let (ws, contact, journey) = journey_for(&store, "calls@example.com").await;
    let call = |key: &str, status: u16, progress: WebhookStatus| CallRecord {
        id: WebhookDeliveryId::from_uuid(crate::new_uuid(at(2))),
        delivery: crm_call(journey, contact, key),
        attempt: WebhookAttempt {
            number: 1,
            at: at(2),
            request_line: "POST https://crm.example.com/leads".into(),
            request_headers: json!({"x-herald-signature": "***"}),
            status: Some(status),
            latency_ms: 3,
            response_body: Some(format!("{{\"status\": {status}}}")),
            error: None,
        },
        progress: DeliveryProgress {
            status: progress,
            last_status: Some(status),
            last_error: (status >= 300).then(|| format!("HTTP {status}")),
            response: if status < 300 { json!({"lead_id": 7}) } else { Value::Null },
        },
    };
    // A call that succeeded at once, and one that will be retried by its delivery job.
    let succeeded = call("jrn.crm", 200, WebhookStatus::Succeeded);
    let retried = call("jrn.erp", 503, WebhookStatus::Pending);
    let work = CampaignWork {
        calls: vec![succeeded.clone(), retried.clone()],
        jobs: vec![webhook_job(retried.delivery.call.clone(), at(60))],
        ..CampaignWork::default()
    };
    store.commit_campaign_work(ws, None, &work, at(2)).await.expect("commit");
    let (stored, attempts) = store.get_delivery(ws, succeeded.id).await.expect("succeeded call");
    assert_eq!(
        (stored.status, stored.attempts, stored.last_status, stored.finished_at),
        (WebhookStatus::Succeeded, 1, Some(200), Some(at(2)))
    );
    assert_eq!((stored.journey_id, stored.step.as_deref()), (Some(journey), Some("jrn.crm")));
    assert_eq!(stored.response, json!({"lead_id": 7}));
    assert_eq!(attempts, std::slice::from_ref(&succeeded.attempt));
    let (stored, attempts) = store.get_delivery(ws, retried.id).await.expect("retried call");
    assert_eq!(
        (stored.status, stored.attempts, stored.last_error.as_deref(), stored.finished_at),
        (WebhookStatus::Pending, 1, Some("HTTP 503"), None)
    );
    assert_eq!(attempts.len(), 1);
    // The delivery job finds the call already open, with its first attempt counted.
    let reopened = store.open_delivery(ws, &retried.delivery, at(60)).await.expect("open");
    assert_eq!((reopened.id, reopened.attempts), (retried.id, 1));
    let jobs = store.claim_jobs(&claim(at(60), 10)).await.expect("claim");
    assert!(jobs.iter().any(|j| j.job.kind == JobKind::DeliverWebhook.as_str()), "the retry is queued");

    // A second call under a key already open is refused with the work that made it, and only
    // that work: the rest of its batch applies.
    let twice = CallRecord {
        id: WebhookDeliveryId::from_uuid(crate::new_uuid(at(3))),
        ..call("jrn.crm", 200, WebhookStatus::Succeeded)
    };
    let fresh = CallRecord {
        id: WebhookDeliveryId::from_uuid(crate::new_uuid(at(3))),
        ..call("jrn.billing", 200, WebhookStatus::Succeeded)
    };
    let refused = CampaignWork { calls: vec![twice.clone()], ..CampaignWork::default() };
    let applied = CampaignWork { calls: vec![fresh.clone()], ..CampaignWork::default() };
    let items = [
        crate::campaign::WorkCommit { workspace: ws, lease: None, work: &refused },
        crate::campaign::WorkCommit { workspace: ws, lease: None, work: &applied },
    ];
    let results = store.commit_campaign_batch(&items, at(3)).await.expect("batch");
    assert!(
        matches!(&results[0], Err(StoreError::Conflict { constraint }) if constraint == "webhook_deliveries_idempotency_key"),
        "{results:?}"
    );
    assert!(results[1].is_ok(), "{results:?}");
    assert!(matches!(store.get_delivery(ws, twice.id).await, Err(StoreError::NotFound { .. })));
    assert_eq!(store.get_delivery(ws, fresh.id).await.expect("the other call").0.status, WebhookStatus::Succeeded);
    let (kept, attempts) = store.get_delivery(ws, succeeded.id).await.expect("first call");
    assert_eq!((kept.finished_at, attempts.len()), (Some(at(2)), 1), "the first call is untouched");
}

/// An email or webhook step whose templates failed to render: its message is kept `failed`
/// without a transport and its call `failed` without a call to make, committed with the step's
/// `failed` outcome. The step counts as failed once, and the call is never resent.
pub async fn steps_that_failed_to_render_are_kept_and_never_resent(store: SharedStore) {
    use crate::campaign::{CampaignWork, MessageFilter, StepRecord};
    use crate::webhook::{CallRecord, DeliveryProgress};
    use herald_domain::{MessageStatus, PageRequest, WebhookAttempt, WebhookDeliveryId, WebhookStatus};
    let (ws, contact, journey) = journey_for(&store, "unrendered@example.com").await;
    let campaign = store.journey_context(ws, journey).await.expect("journey").journey.campaign_id;
    let reason = "html: the template needed more than 100000 steps";
    let message = herald_domain::Message {
        status_reason: Some(reason.into()),
        html: String::new(),
        text: String::new(),
        transport: herald_domain::Message::NO_TRANSPORT.into(),
        ..queued_message(ws, contact, journey, campaign, "a@example.com", MessageStatus::Failed)
    };
    let failed = |message_id| StepRecord {
        journey_id: journey,
        campaign_id: campaign,
        step: "s".into(),
        outcome: "failed".into(),
        detail: json!({ "reason": reason }),
        message_id,
        at: at(2),
    };
    let call = |key: &str, call: Value| CallRecord {
        id: WebhookDeliveryId::from_uuid(crate::new_uuid(at(2))),
        delivery: crate::webhook::NewDelivery { call, ..crm_call(journey, contact, key) },
        attempt: WebhookAttempt {
            number: 1,
            at: at(2),
            request_line: "POST https://crm.example.com/leads".into(),
            request_headers: json!({}),
            status: None,
            latency_ms: 0,
            response_body: None,
            error: Some(reason.into()),
        },
        progress: DeliveryProgress {
            status: WebhookStatus::Failed,
            last_status: None,
            last_error: Some(reason.into()),
            response: Value::Null,
        },
    };
    let unrendered = call("s.unrendered", Value::Null);
    let refused = call("s.refused", json!({"endpoint": "https://crm.example.com:443"}));
    let work = CampaignWork {
        steps: vec![failed(Some(message.id)), failed(None)],
        messages: vec![message.clone()],
        calls: vec![unrendered.clone(), refused.clone()],
        ..CampaignWork::default()
    };
    store.commit_campaign_work(ws, None, &work, at(2)).await.expect("commit");

    assert_eq!(store.get_message(ws, message.id).await.expect("message"), message);
    let filter = MessageFilter { status: Some(MessageStatus::Failed), ..MessageFilter::default() };
    let listed = store.list_messages(ws, &filter, PageRequest { after: None, limit: 10 }).await.expect("list");
    assert_eq!(listed.items, vec![message]);
    let stats = store.campaign_stats(ws, campaign).await.expect("stats");
    assert_eq!(stats.steps["s"]["failed"], 2, "each step counted once, the message not again: {stats:?}");

    // Resending failed calls, by status or by id, leaves the one without a call as it is.
    let resent =
        store.resend_deliveries(ws, &[], Some(WebhookStatus::Failed), at(0), at(10), 10, at(3)).await.expect("resend");
    assert_eq!(resent, vec![refused.id]);
    assert!(
        store.resend_deliveries(ws, &[unrendered.id], None, at(0), at(0), 10, at(3)).await.expect("by id").is_empty()
    );
    let (kept, attempts) = store.get_delivery(ws, unrendered.id).await.expect("unrendered call");
    assert_eq!(
        (kept.status, kept.finished_at, kept.last_error.as_deref()),
        (WebhookStatus::Failed, Some(at(2)), Some(reason))
    );
    assert_eq!(attempts, vec![unrendered.attempt]);
    let jobs = store.claim_jobs(&claim(at(3), 10)).await.expect("claim");
    let deliveries = jobs.iter().filter(|j| j.job.kind == JobKind::DeliverWebhook.as_str()).count();
    assert_eq!(deliveries, 1, "one delivery job, for the refused call: {jobs:?}");
}

pub async fn webhook_batches_apply_each_item_alone(store: SharedStore) {
    use crate::webhook::{AttemptRecord, DeliveryProgress, webhook_job};
    use herald_domain::{WebhookAttempt, WebhookStatus};
    let (ws, contact, journey) = journey_for(&store, "b@example.com").await;
    let call = |key: &str| crm_call(journey, contact, key);
    // Opened together, a key seen twice in one batch is still one call.
    let calls = [(ws, call("b")), (ws, call("a")), (ws, call("b"))];
    let opened: Vec<_> =
        store.open_deliveries(&calls, at(2)).await.expect("batch").into_iter().map(|r| r.expect("open")).collect();
    assert_eq!(opened[0].id, opened[2].id);
    assert_ne!(opened[0].id, opened[1].id);
    assert_eq!(opened[1].step.as_deref(), Some("a"), "results in the order given");

    let jobs = [webhook_job(json!({"n": 0}), at(2)), webhook_job(json!({"n": 1}), at(2))];
    store.enqueue_jobs(ws, &jobs, at(2)).await.expect("jobs");
    let leased = store.claim_jobs(&claim(at(2), 2)).await.expect("claim");
    assert_eq!(leased.len(), 2);
    let record =
        |lease: herald_domain::job::JobLease, delivery: &herald_domain::WebhookDelivery, status: u16| AttemptRecord {
            workspace: ws,
            lease,
            delivery: delivery.id,
            attempt: WebhookAttempt {
                number: 1,
                at: at(3),
                request_line: "POST https://crm.example.com/leads".into(),
                request_headers: json!({}),
                status: Some(status),
                latency_ms: 5,
                response_body: None,
                error: None,
            },
            progress: DeliveryProgress {
                status: WebhookStatus::Succeeded,
                last_status: Some(status),
                last_error: None,
                response: Value::Null,
            },
            outcome: JobOutcome::Done,
            follow_up: vec![NewJob::new(JobKind::JourneyStep, json!({"after": delivery.id}), at(3))],
        };
    let mut stale = leased[1].lease;
    stale.lease_id = herald_domain::LeaseId::from_uuid(crate::new_uuid(at(3)));
    let records = [
        record(leased[0].lease, &opened[0], 200),
        record(stale, &opened[1], 201),
        record(leased[1].lease, &opened[1], 202),
    ];
    let results = store.record_attempts(&records, at(3)).await.expect("batch");
    assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
    assert!(matches!(results[1], Err(StoreError::LeaseLost)), "only the stale record is refused: {results:?}");
    for (delivery, status) in [(&opened[0], 200), (&opened[1], 202)] {
        let (stored, attempts) = store.get_delivery(ws, delivery.id).await.expect("get");
        assert_eq!((stored.status, stored.last_status), (WebhookStatus::Succeeded, Some(status)));
        assert_eq!(attempts.len(), 1, "the refused record left nothing behind");
    }
    let follow_ups = store.claim_jobs(&claim(at(3), 10)).await.expect("claim");
    assert_eq!(follow_ups.len(), 2, "one follow-up per applied record: {follow_ups:?}");

    // A batch nobody refuses applies whole: a retry and a success side by side.
    let opened: Vec<_> = store
        .open_deliveries(&[(ws, call("c")), (ws, call("d"))], at(4))
        .await
        .expect("batch")
        .into_iter()
        .map(|r| r.expect("open"))
        .collect();
    store.enqueue_jobs(ws, &jobs, at(4)).await.expect("jobs");
    let leased = store.claim_jobs(&claim(at(4), 2)).await.expect("claim");
    let mut retried = record(leased[0].lease, &opened[0], 503);
    retried.progress.status = WebhookStatus::Pending;
    retried.outcome = JobOutcome::Retry { at: at(20), error: "HTTP 503".into() };
    retried.follow_up.clear();
    let records = [retried, record(leased[1].lease, &opened[1], 200)];
    let results = store.record_attempts(&records, at(5)).await.expect("batch");
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let (pending, attempts) = store.get_delivery(ws, opened[0].id).await.expect("get");
    assert_eq!((pending.status, pending.attempts, pending.finished_at), (WebhookStatus::Pending, 1, None));
    assert_eq!(attempts[0].status, Some(503));
    let (done, _) = store.get_delivery(ws, opened[1].id).await.expect("get");
    assert_eq!((done.status, done.finished_at), (WebhookStatus::Succeeded, Some(at(5))));
    let due: Vec<_> = store.claim_jobs(&claim(at(5), 10)).await.expect("claim");
    assert_eq!(due.len(), 1, "the success's follow-up only; the retry waits: {due:?}");
    let later = store.claim_jobs(&claim(at(20), 10)).await.expect("claim");
    assert_eq!(later.iter().map(|j| j.job.id).collect::<Vec<_>>(), [leased[0].job.id], "the retry is due at its time");
    assert_eq!(later[0].job.last_error.as_deref(), Some("HTTP 503"));
}

pub async fn webhook_deliveries_filter_by_action_and_step(store: SharedStore) {
    use crate::webhook::{ActionCalls, DeliveryFilter, NewDelivery};
    use herald_domain::{ActionId, CampaignId, WebhookDeliveryId};
    let (ws, contact, journey) = journey_for(&store, "f@example.com").await;
    let campaign = CampaignId::from_uuid(crate::new_uuid(at(1)));
    let other_campaign = CampaignId::from_uuid(crate::new_uuid(at(1)));
    let action = ActionId::from_uuid(crate::new_uuid(at(1)));
    let other_action = ActionId::from_uuid(crate::new_uuid(at(1)));
    let open = |secs: u64, campaign: Option<CampaignId>, step: Option<&'static str>, call: Value| {
        let store = store.clone();
        async move {
            let new = NewDelivery {
                journey_id: campaign.map(|_| journey),
                campaign_id: campaign,
                contact_id: Some(contact),
                step: step.map(str::to_owned),
                campaign_webhook_id: None,
                idempotency_key: format!("key-{secs}"),
                endpoint: "https://crm.example.com:443".into(),
                request: json!({"method": "POST", "url": "https://crm.example.com/leads"}),
                call,
            };
            store.open_delivery(ws, &new, at(secs)).await.expect("open").id
        }
    };
    // A campaign step that uses the action, another step of the same campaign, the same step
    // id in another campaign, a run of the action for one contact and a run of another action.
    let crm = open(2, Some(campaign), Some("crm"), json!({"step": "crm"})).await;
    let mail = open(3, Some(campaign), Some("notify"), json!({"step": "notify"})).await;
    let elsewhere = open(4, Some(other_campaign), Some("crm"), json!({"step": "crm"})).await;
    let run = open(5, None, None, json!({"action": action.to_string(), "contact": contact})).await;
    let other_run = open(6, None, None, json!({"action": other_action.to_string(), "contact": contact})).await;
    let ids = |filter: DeliveryFilter| {
        let store = store.clone();
        async move {
            let page = store.list_deliveries(ws, &filter, PageRequest::first(10)).await.expect("list");
            page.items.iter().map(|d| d.id).collect::<Vec<WebhookDeliveryId>>()
        }
    };
    let by_action = |steps| DeliveryFilter { action: Some(ActionCalls { action, steps }), ..DeliveryFilter::default() };
    assert_eq!(ids(by_action(vec![(campaign, "crm".into())])).await, [run, crm], "newest first");
    assert_eq!(ids(by_action(Vec::new())).await, [run], "no step uses it: only its runs");
    let step = |campaign, step: &str| DeliveryFilter {
        campaign: Some(campaign),
        step: Some(step.into()),
        ..DeliveryFilter::default()
    };
    assert_eq!(ids(step(campaign, "crm")).await, [crm]);
    assert_eq!(ids(step(other_campaign, "crm")).await, [elsewhere]);
    assert_eq!(ids(step(campaign, "notify")).await, [mail]);
    assert!(ids(step(campaign, "missing")).await.is_empty());
    let with_status = DeliveryFilter { status: Some(herald_domain::WebhookStatus::Succeeded), ..by_action(Vec::new()) };
    assert!(ids(with_status).await.is_empty(), "filters combine");
    let everything = ids(DeliveryFilter::default()).await;
    assert_eq!(everything, [other_run, run, elsewhere, mail, crm]);
    let other = store.create_workspace(&ws_name("other"), at(0)).await.expect("other");
    let elsewhere_ws = store
        .list_deliveries(other.id, &by_action(vec![(campaign, "crm".into())]), PageRequest::first(10))
        .await
        .expect("list");
    assert!(elsewhere_ws.items.is_empty(), "scoped to the workspace");
}

pub async fn signing_keys_rotate_with_an_overlap(store: SharedStore) {
    use crate::webhook::SigningKeyRecord;
    let ws = store.ensure_default_workspace(at(0)).await.expect("ws").id;
    assert!(store.signing_keys(ws, at(1)).await.expect("keys").is_empty());
    let key = |id: &str, t| SigningKeyRecord {
        id: id.into(),
        secret: id.as_bytes().to_vec(),
        created_at: at(t),
        retires_at: None,
    };
    store.rotate_signing_key(ws, &key("k1", 1), at(1)).await.expect("first");
    store.rotate_signing_key(ws, &key("k2", 10), at(10 + 3600)).await.expect("rotate");
    let ids = |keys: Vec<SigningKeyRecord>| keys.into_iter().map(|k| k.id).collect::<Vec<_>>();
    assert_eq!(ids(store.signing_keys(ws, at(11)).await.expect("keys")), ["k2", "k1"], "both sign during the overlap");
    assert_eq!(ids(store.signing_keys(ws, at(10 + 3600)).await.expect("keys")), ["k2"], "then only the new one");
    assert_eq!(store.signing_keys(ws, at(11)).await.expect("keys")[0].secret, b"k2".to_vec());
}

pub async fn saved_actions_are_named_updated_and_soft_deleted(store: SharedStore) {
    let ws = store.ensure_default_workspace(at(0)).await.expect("ws").id;
    let other = store.create_workspace(&ws_name("other"), at(0)).await.expect("other ws").id;
    let definition = json!({"method": "POST", "url": "https://crm.example.com/leads", "basic_auth": {"username": "u", "password": "p\u{0}w"}});
    let created = store.create_action(ws, "Create lead", &definition, at(1)).await.expect("create");
    assert_eq!((created.name.as_str(), created.created_at, created.deleted_at), ("Create lead", at(1), None));
    let conflict = store.create_action(ws, "Create lead", &json!({}), at(2)).await.expect_err("same name");
    assert!(
        matches!(conflict, StoreError::Conflict { ref constraint } if constraint == "actions_name"),
        "{conflict:?}"
    );
    store.create_action(other, "Create lead", &json!({}), at(2)).await.expect("the name is per workspace");
    let second = store.create_action(ws, "Alert", &json!({"url": "https://a.example"}), at(3)).await.expect("second");
    let names = |list: Vec<SavedAction>| list.into_iter().map(|a| a.name).collect::<Vec<_>>();
    assert_eq!(names(store.list_actions(ws).await.expect("list")), ["Alert", "Create lead"]);

    let changed = json!({"method": "PUT", "url": "https://crm.example.com/leads/{{ customer.id }}"});
    let updated = store.update_action(ws, created.id, "Upsert lead", &changed, at(4)).await.expect("update");
    assert_eq!((updated.definition.clone(), updated.updated_at, updated.created_at), (changed, at(4), at(1)));
    let missing = store.update_action(other, created.id, "x", &json!({}), at(4)).await.expect_err("other workspace");
    assert!(matches!(missing, StoreError::NotFound { .. }));

    store.delete_action(ws, second.id, at(5)).await.expect("delete");
    assert!(matches!(store.delete_action(ws, second.id, at(6)).await, Err(StoreError::NotFound { .. })));
    assert!(matches!(
        store.update_action(ws, second.id, "x", &json!({}), at(6)).await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(names(store.list_actions(ws).await.expect("list")), ["Upsert lead"]);
    store.create_action(ws, "Alert", &json!({}), at(7)).await.expect("a deleted action's name is free again");
    // Journeys on older campaign versions still find deleted actions; other workspaces' ids
    // are left out.
    let found = store.actions_by_ids(ws, &[created.id, second.id]).await.expect("by ids");
    let mut found: Vec<_> = found.into_iter().map(|a| (a.id, a.deleted_at)).collect();
    found.sort_by_key(|(id, _)| id.as_uuid());
    assert_eq!(found, [(created.id, None), (second.id, Some(at(5)))]);
    assert!(store.actions_by_ids(other, &[created.id]).await.expect("other").is_empty());
    assert!(store.actions_by_ids(ws, &[]).await.expect("none").is_empty());
}

pub async fn archiving_exits_journeys_and_queues_their_calls(store: SharedStore) {
    use herald_domain::CampaignState::{Archived, Draft};
    let (ws, contact, journey) = journey_for(&store, "archived@example.com").await;
    let campaign = store.journey_context(ws, journey).await.expect("context").journey.campaign_id;
    assert!(store.archived_journeys(ws, campaign, None, 10).await.expect("none yet").is_empty());
    store.set_campaign_state(ws, campaign, &[Draft], Archived, at(5)).await.expect("archive");
    let exited = store.journey_context(ws, journey).await.expect("context").journey;
    assert_eq!(exited.status, herald_domain::JourneyStatus::Exited);
    assert_eq!(store.archived_journeys(ws, campaign, None, 10).await.expect("listed"), [(journey, contact)]);
    assert!(store.archived_journeys(ws, campaign, Some(journey), 10).await.expect("after").is_empty(), "paged by id");
    let claimed = store.claim_jobs(&claim(at(5), 100)).await.expect("claim");
    let archive = claimed.iter().filter(|l| l.job.kind == "archive_exits").collect::<Vec<_>>();
    assert_eq!(archive.len(), 1, "one archive_exits job, committed with the exits");
    assert_eq!(archive[0].job.payload, json!({"campaign": campaign}));
}

pub async fn drafts_are_held_listed_and_settled_once(store: SharedStore) {
    use crate::campaign::CampaignWork;
    use crate::webhook::DraftSelection;
    use herald_domain::{DraftId, WebhookDraft};
    let (ws, contact, journey) = journey_for(&store, "drafts@example.com").await;
    let campaign = store.journey_context(ws, journey).await.expect("context").journey.campaign_id;
    let draft = |step: &str, n: u64| WebhookDraft {
        id: DraftId::from_uuid(crate::new_uuid(at(10 + n))),
        workspace_id: ws,
        journey_id: journey,
        campaign_id: campaign,
        contact_id: contact,
        step: step.into(),
        request: json!({"method": "POST", "url": "https://crm.example.com", "headers": {"authorization": "***"}}),
        call: json!({"basic_auth": "u:secret", "n": n}),
        created_at: at(10 + n),
    };
    let drafts = vec![draft("crm", 1), draft("crm", 2), draft("slack", 3)];
    let work = CampaignWork { drafts: drafts.clone(), ..CampaignWork::default() };
    store.commit_campaign_work(ws, None, &work, at(10)).await.expect("hold");

    let all = DraftSelection { campaign: Some(campaign), ..DraftSelection::default() };
    let page = store.list_drafts(ws, &all, PageRequest::first(2)).await.expect("list");
    assert_eq!(page.items, drafts[..2], "oldest first, with the call kept for sending");
    let cursor = page.next_cursor.expect("a second page");
    let after = PageRequest { after: Some(herald_domain::Cursor::decode(cursor.as_str()).expect("cursor")), limit: 2 };
    assert_eq!(store.list_drafts(ws, &all, after).await.expect("page 2").items, drafts[2..]);
    let crm = DraftSelection { step: Some("crm".into()), ..all.clone() };
    assert_eq!(store.list_drafts(ws, &crm, PageRequest::first(10)).await.expect("crm").items.len(), 2);
    let other = store.create_workspace(&ws_name("drafts-other"), at(0)).await.expect("ws").id;
    assert!(store.list_drafts(other, &all, PageRequest::first(10)).await.expect("other").items.is_empty());

    // Settling removes the draft and enqueues its job in one transaction, exactly once.
    let job = |d: &WebhookDraft| NewJob::new(JobKind::Ping, d.call.clone(), at(20));
    let one = DraftSelection { ids: vec![drafts[0].id], ..DraftSelection::default() };
    let settled = store.settle_drafts(ws, &one, 100, &job, at(20)).await.expect("settle one");
    assert_eq!(settled, drafts[..1]);
    assert!(store.settle_drafts(ws, &one, 100, &job, at(21)).await.expect("again").is_empty(), "settled once");
    assert_eq!(store.queue_stats(at(20)).await.expect("stats").due, 1);
    let rest = store.settle_drafts(ws, &all, 1, &job, at(22)).await.expect("limit");
    assert_eq!(rest, drafts[1..2], "at most `limit`, oldest first");
    store.settle_drafts(ws, &all, 100, &job, at(22)).await.expect("the rest");
    assert!(store.list_drafts(ws, &all, PageRequest::first(10)).await.expect("none left").items.is_empty());
    let claimed = store.claim_jobs(&claim(at(30), 10)).await.expect("claim");
    let mut payloads: Vec<_> = claimed.iter().map(|l| l.job.payload["n"].as_u64()).collect();
    payloads.sort();
    assert_eq!(payloads, [Some(1), Some(2), Some(3)]);

    // A draft whose journey has ended is neither shown nor sent, and goes at the next settle.
    let late = draft("crm", 4);
    let work = CampaignWork { drafts: vec![late.clone()], ..CampaignWork::default() };
    store.commit_campaign_work(ws, None, &work, at(40)).await.expect("hold");
    let exit = crate::campaign::JourneyUpdate {
        id: journey,
        expect: None,
        status: herald_domain::JourneyStatus::Exited,
        step: None,
        run_at: None,
        held: false,
        custom_variables: None,
        exit_reason: Some("converted".into()),
        converted: true,
        conversion_step: None,
    };
    let work = CampaignWork { updates: vec![exit], ..CampaignWork::default() };
    store.commit_campaign_work(ws, None, &work, at(41)).await.expect("exit");
    assert!(store.list_drafts(ws, &all, PageRequest::first(10)).await.expect("list").items.is_empty());
    let late_one = DraftSelection { ids: vec![late.id], ..DraftSelection::default() };
    assert!(store.settle_drafts(ws, &late_one, 100, &job, at(42)).await.expect("settle").is_empty(), "not sent");
    assert_eq!(store.queue_stats(at(50)).await.expect("stats").due, 0, "no job for it");
}

pub async fn endpoints_fail_recover_and_are_disabled_once(store: SharedStore) {
    let ws = store.ensure_default_workspace(at(0)).await.expect("ws").id;
    let crm = "https://crm.example.com:443";
    let first = store.endpoint_failed(ws, crm, at(10)).await.expect("failed");
    assert_eq!((first.failing_since, first.disabled_at), (Some(at(10)), None));
    let later = store.endpoint_failed(ws, crm, at(20)).await.expect("failed again");
    assert_eq!((later.id, later.failing_since), (first.id, Some(at(10))), "the streak keeps its start");
    store.endpoint_succeeded(ws, crm, at(30)).await.expect("answered");
    let streak = store.endpoint_failed(ws, crm, at(40)).await.expect("a new streak");
    assert_eq!(streak.failing_since, Some(at(40)));
    let event = |since, reason: &str, t| {
        let id = herald_domain::EventId::from_uuid(crate::new_uuid(at(t)));
        herald_domain::endpoint_disabled_event(id, &streak, at(since), reason, at(t))
    };
    assert!(
        !store.disable_endpoint(ws, crm, at(10), "old streak", &event(10, "old streak", 50)).await.expect("stale"),
        "a success since the streak began keeps it enabled"
    );
    let disabling = event(40, "failed for 5 days", 50);
    assert!(store.disable_endpoint(ws, crm, at(40), "failed for 5 days", &disabling).await.expect("disable"));
    assert!(
        !store.disable_endpoint(ws, crm, at(40), "again", &event(40, "again", 51)).await.expect("once"),
        "disabled once"
    );
    let filter = EventFilter { name: Some("endpoint_disabled".into()), ..EventFilter::default() };
    let logged = store.list_events(ws, &filter, PageRequest::first(10)).await.expect("events").items;
    assert_eq!(logged.len(), 1, "one endpoint_disabled event in the log");
    assert_eq!((logged[0].id, &logged[0].properties["endpoint"]), (disabling.id, &json!(crm)));
    store.endpoint_succeeded(ws, "https://ok.example.com:443", at(52)).await.expect("healthy");
    let list = store.list_endpoints(ws).await.expect("list");
    assert_eq!(list.iter().map(|e| e.endpoint.as_str()).collect::<Vec<_>>(), [crm, "https://ok.example.com:443"]);
    assert_eq!(
        (list[0].disabled_at, list[0].disabled_reason.as_deref(), list[1].last_success_at),
        (Some(at(50)), Some("failed for 5 days"), Some(at(52)))
    );
    assert_eq!(store.disabled_endpoints().await.expect("disabled"), [(ws, crm.to_owned())]);
    let other = store.create_workspace(&ws_name("endpoints-other"), at(0)).await.expect("ws").id;
    assert!(matches!(store.enable_endpoint(other, first.id).await, Err(StoreError::NotFound { .. })));
    let enabled = store.enable_endpoint(ws, first.id).await.expect("enable");
    assert_eq!((enabled.disabled_at, enabled.failing_since), (None, None), "enabled with a fresh streak");
    assert!(store.disabled_endpoints().await.expect("none").is_empty());
}

pub async fn campaign_webhooks_are_scoped_and_keep_their_secrets(store: SharedStore) {
    use crate::webhook::{DeliveryFilter, NewDelivery};
    use herald_domain::{
        CampaignEventKind, CampaignWebhook, CampaignWebhookId, HookMethod, PayloadEncoding, PayloadMapping,
    };
    let (ws, contact, journey) = journey_for(&store, "cw@example.com").await;
    let campaign = store.journey_context(ws, journey).await.expect("journey").journey.campaign_id;
    let mapping = PayloadMapping::parse(&json!({"email": {"from": "contact.email"}}), "payload").expect("mapping");
    let hook = CampaignWebhook {
        id: CampaignWebhookId::from_uuid(crate::new_uuid(at(2))),
        workspace_id: ws,
        campaign_id: campaign,
        url: "https://crm.example.com/events".into(),
        content_type: PayloadEncoding::Form,
        method: HookMethod::Post,
        basic_auth: Some(("user".into(), "pass".into())),
        secret: Some("a-secret-of-enough-length".into()),
        log_response_body: true,
        active: true,
        events: vec![CampaignEventKind::ContactEntered, CampaignEventKind::EmailSent],
        payload: Some(mapping),
        created_at: at(2),
        updated_at: at(2),
    };
    let created = store.create_campaign_webhook(&hook).await.expect("create");
    assert_eq!(created, hook, "every field round-trips, secrets included");
    let second = CampaignWebhook {
        id: CampaignWebhookId::from_uuid(crate::new_uuid(at(3))),
        method: HookMethod::Get,
        content_type: PayloadEncoding::Json,
        basic_auth: None,
        secret: None,
        payload: None,
        events: vec![CampaignEventKind::ContactUnsubscribed],
        ..hook.clone()
    };
    store.create_campaign_webhook(&second).await.expect("second");
    let ids = |hooks: Vec<CampaignWebhook>| hooks.into_iter().map(|h| h.id).collect::<Vec<_>>();
    assert_eq!(ids(store.list_campaign_webhooks(ws, Some(campaign)).await.expect("list")), [hook.id, second.id]);
    assert_eq!(ids(store.list_campaign_webhooks(ws, None).await.expect("all")), [hook.id, second.id]);

    // Another workspace sees nothing and cannot attach a webhook to this campaign.
    let other = store.create_workspace(&ws_name("other"), at(0)).await.expect("other");
    assert!(store.list_campaign_webhooks(other.id, None).await.expect("other list").is_empty());
    assert!(matches!(store.get_campaign_webhook(other.id, campaign, hook.id).await, Err(StoreError::NotFound { .. })));
    let foreign = CampaignWebhook {
        id: CampaignWebhookId::from_uuid(crate::new_uuid(at(4))),
        workspace_id: other.id,
        ..hook.clone()
    };
    assert!(matches!(store.create_campaign_webhook(&foreign).await, Err(StoreError::NotFound { .. })));
    assert!(matches!(store.update_campaign_webhook(&foreign).await, Err(StoreError::NotFound { .. })));

    let changed =
        CampaignWebhook { active: false, secret: None, events: vec![], updated_at: at(5), created_at: at(99), ..hook };
    let updated = store.update_campaign_webhook(&changed).await.expect("update");
    assert_eq!((updated.active, updated.secret.as_deref(), updated.events.len()), (false, None, 0));
    assert_eq!((updated.created_at, updated.updated_at), (at(2), at(5)), "created_at stays");

    // Calls are tagged with the webhook and filtered by it, and outlive it.
    let delivery = NewDelivery {
        journey_id: Some(journey),
        campaign_id: Some(campaign),
        contact_id: Some(contact),
        step: None,
        campaign_webhook_id: Some(changed.id),
        idempotency_key: "cwh.contact_entered".into(),
        endpoint: "https://crm.example.com:443".into(),
        request: json!({"method": "POST"}),
        call: json!({}),
    };
    let opened = store.open_delivery(ws, &delivery, at(6)).await.expect("open");
    assert_eq!(opened.campaign_webhook_id, Some(changed.id));
    store.delete_campaign_webhook(ws, campaign, changed.id).await.expect("delete");
    assert!(matches!(store.delete_campaign_webhook(ws, campaign, changed.id).await, Err(StoreError::NotFound { .. })));
    let by_hook = |id| DeliveryFilter { campaign_webhook: Some(id), ..DeliveryFilter::default() };
    let listed = store.list_deliveries(ws, &by_hook(changed.id), PageRequest::first(10)).await.expect("list");
    assert_eq!(listed.items.iter().map(|d| d.id).collect::<Vec<_>>(), [opened.id]);
    let none = store.list_deliveries(ws, &by_hook(second.id), PageRequest::first(10)).await.expect("list");
    assert!(none.items.is_empty());

    // Deleting the campaign deletes its webhooks.
    store.delete_campaign(ws, campaign).await.expect("delete campaign");
    assert!(store.list_campaign_webhooks(ws, None).await.expect("list").is_empty());
}

pub async fn follow_ups_commit_with_suppressions_and_deliveries(store: SharedStore) {
    use crate::campaign::CampaignWork;
    use crate::email::{Delivery, delivery_job};
    use herald_domain::{MessageStatus, Suppression};
    let (ws, contact, journey) = journey_for(&store, "f@example.com").await;
    let follow = |n: u32| NewJob::new(JobKind::Ping, json!({"n": n}), at(2));
    let suppression = Suppression {
        email: "f@example.com".into(),
        contact_id: Some(contact),
        reason: "unsubscribed".into(),
        detail: None,
        created_at: at(2),
    };
    store.add_suppression(ws, &suppression, &[follow(1)]).await.expect("add");
    // Already suppressed: nothing new happened, so nothing follows.
    store.add_suppression(ws, &suppression, &[follow(2)]).await.expect("again");
    let jobs = store.claim_jobs(&claim(at(2), 10)).await.expect("claim");
    assert_eq!(jobs.iter().map(|j| j.job.payload["n"].as_u64()).collect::<Vec<_>>(), [Some(1)]);
    for job in &jobs {
        store.finish_job(ws, &job.lease, &JobOutcome::Done, at(2)).await.expect("finish");
    }

    let campaign = store.journey_context(ws, journey).await.expect("journey").journey.campaign_id;
    let message = queued_message(ws, contact, journey, campaign, "a@acme.test", MessageStatus::Queued);
    let work = CampaignWork {
        messages: vec![message.clone()],
        jobs: vec![delivery_job(message.id, at(3))],
        ..CampaignWork::default()
    };
    store.commit_campaign_work(ws, None, &work, at(3)).await.expect("queue");
    let delivering = store.claim_jobs(&claim(at(3), 1)).await.expect("claim").pop().expect("job");
    let sent = Delivery {
        status: MessageStatus::Sent,
        reason: None,
        reply: None,
        attempts: 1,
        sent_at: Some(at(3)),
        bounce: None,
        suppress: None,
    };
    store
        .record_delivery(ws, &delivering.lease, message.id, &sent, &JobOutcome::Done, &[follow(3)], at(3))
        .await
        .expect("sent");
    let jobs = store.claim_jobs(&claim(at(3), 10)).await.expect("claim");
    assert_eq!(jobs.iter().map(|j| j.job.payload["n"].as_u64()).collect::<Vec<_>>(), [Some(3)]);
}

pub async fn contact_history_is_scoped_to_its_workspace(store: SharedStore) {
    let (ws, source) = with_source(&store).await;
    let other = store.create_workspace(&ws_name("other"), at(0)).await.expect("other").id;
    let go = |t: u64| request(ws, source, json!({"email": "s@example.com", "event": "go"}), None, at(t));
    let results = store.ingest(&[go(1), go(2)], at(2)).await.expect("ingest");
    let (first, second) = (accepted(&results[0]), accepted(&results[1]));
    let contact = first.contact_id.expect("contact");
    let campaign = store.create_campaign(ws, "c", &json!({}), at(2)).await.expect("campaign");
    let journey = herald_domain::JourneyId::from_uuid(crate::new_uuid(at(2)));
    let enrol = crate::campaign::CampaignWork {
        journeys: vec![crate::campaign::NewJourney::at_start(journey, campaign.id, contact, at(2))],
        ..Default::default()
    };
    store.commit_campaign_work(ws, None, &enrol, at(2)).await.expect("enrol");

    // The contact's own workspace sees its events and journeys.
    let go_names = ["go".to_owned()];
    assert_eq!(store.count_contact_events(ws, contact, "go", None, second.event_id).await.expect("count"), 2);
    assert!(store.contact_event_after(ws, contact, &go_names, first.event_id).await.expect("after"));
    assert!(store.contact_event_after(ws, contact, &[], first.event_id).await.expect("any after"));
    let journeys = store.contact_journeys(ws, contact, Some(campaign.id), 10).await.expect("journeys");
    assert_eq!(journeys.iter().map(|j| j.id).collect::<Vec<_>>(), [journey]);

    // Another workspace, given the same ids, sees none of it.
    assert_eq!(store.count_contact_events(other, contact, "go", None, second.event_id).await.expect("count"), 0);
    assert!(!store.contact_event_after(other, contact, &go_names, first.event_id).await.expect("after"));
    assert!(!store.contact_event_after(other, contact, &[], first.event_id).await.expect("any after"));
    assert!(store.contact_journeys(other, contact, Some(campaign.id), 10).await.expect("journeys").is_empty());
    assert!(store.contact_journeys(other, contact, None, 10).await.expect("journeys").is_empty());
}
