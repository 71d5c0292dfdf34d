//! Conformance cases for the job queue: claims and leases, outcomes, follow-ups, stats,
//! waking the worker, purging finished jobs.

use std::collections::HashSet;
use std::time::Duration;

use herald_domain::job::{JobOutcome, JobState};
use herald_domain::{JobKind, NewJob, Timestamp};
use serde_json::json;

use super::helpers::{at, claim, request, with_source, ws_name};
use crate::{ClaimRequest, QueueSignal, QueueStats, SharedStore, StoreError, StoreResult};

fn ping_job(run_at: Timestamp) -> NewJob {
    NewJob::new(JobKind::Ping, json!({"n": 1}), run_at)
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
