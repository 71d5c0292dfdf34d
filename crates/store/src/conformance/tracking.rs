//! Conformance cases for open and click tracking: what a message says about it survives the
//! round trip through the store, and a copy for a resend keeps it.

use herald_domain::{MessageStatus, Tracking};

use super::helpers::{at, journey_for, queued_message};
use crate::SharedStore;

pub async fn messages_keep_their_tracking(store: SharedStore) {
    use crate::campaign::CampaignWork;
    let (ws, contact, journey) = journey_for(&store, "tracked@example.com").await;
    let campaign = store.journey_context(ws, journey).await.expect("journey").journey.campaign_id;
    let cases = [
        Tracking { opens: true, clicks: true },
        Tracking { opens: true, clicks: false },
        Tracking { opens: false, clicks: true },
        Tracking::default(),
    ];
    let messages: Vec<_> = cases
        .iter()
        .enumerate()
        .map(|(n, tracking)| herald_domain::Message {
            id: herald_domain::MessageId::from_uuid(crate::new_uuid(at(10 + n as u64))),
            tracking: *tracking,
            ..queued_message(ws, contact, journey, campaign, "a@acme.test", MessageStatus::Queued)
        })
        .collect();
    let work = CampaignWork { messages: messages.clone(), ..CampaignWork::default() };
    store.commit_campaign_work(ws, None, &work, at(20)).await.expect("commit");
    for (message, tracking) in messages.iter().zip(cases) {
        assert_eq!(store.get_message(ws, message.id).await.expect("message").tracking, tracking);
    }
}

/// Tracked hits: a batch is stored with a `record_hits` job for each of its workspaces, and a
/// later batch adds none while that job waits; hits read back oldest first (only in their
/// workspace); their activities are recorded once however often a job runs, and recording
/// forgets them.
pub async fn hits_are_stored_with_their_job_and_recorded_once(store: SharedStore) {
    use crate::email::{ActivityWrite, Recorded};
    use crate::hits::Hit;
    use herald_domain::{ActivityKind, JobKind};

    use super::helpers::claim;
    let (ws, contact, journey) = journey_for(&store, "hits@example.com").await;
    let campaign = store.journey_context(ws, journey).await.expect("journey").journey.campaign_id;
    let message = queued_message(ws, contact, journey, campaign, "a@acme.test", MessageStatus::Sent);
    let work = crate::campaign::CampaignWork { messages: vec![message.clone()], ..Default::default() };
    store.commit_campaign_work(ws, None, &work, at(2)).await.expect("message");
    let other = store.create_workspace(&super::helpers::ws_name("hits-elsewhere"), at(0)).await.expect("other");

    let hit = |workspace, kind, url: Option<&str>, machine| Hit {
        workspace,
        message: message.id,
        kind,
        url: url.map(str::to_owned),
        machine,
        occurred_at: at(3),
    };
    let hits = [
        hit(ws, ActivityKind::Opened, None, true),
        hit(ws, ActivityKind::Clicked, Some("https://acme.test/pricing"), false),
        hit(other.id, ActivityKind::Opened, None, false),
    ];
    store.store_hits(&hits[..1], at(3)).await.expect("store");
    store.store_hits(&hits[1..], at(3)).await.expect("store");
    let jobs = store.claim_jobs(&claim(at(3), 10)).await.expect("claim");
    let mut jobs: Vec<_> =
        jobs.iter().filter(|j| j.job.kind == JobKind::RecordHits.as_str()).map(|j| j.job.workspace_id).collect();
    jobs.sort();
    let mut expected = vec![ws, other.id];
    expected.sort();
    assert_eq!(jobs, expected, "one job per workspace, the second batch joining the first's");

    let stored = store.stored_hits(ws, 10).await.expect("read");
    assert_eq!(stored.iter().map(|(_, h)| h.clone()).collect::<Vec<_>>(), hits[..2].to_vec());
    assert_eq!(store.stored_hits(ws, 1).await.expect("read").len(), 1, "at most the limit");
    let theirs = store.stored_hits(other.id, 10).await.expect("read");
    assert_eq!(theirs.iter().map(|(_, h)| h.clone()).collect::<Vec<_>>(), hits[2..].to_vec(), "by workspace");

    let writes: Vec<_> = stored
        .iter()
        .map(|(id, hit)| ActivityWrite {
            workspace: ws,
            activity: hit.activity(*id),
            suppress: None,
            follow_up: vec![],
        })
        .collect();
    let ids: Vec<_> = stored.iter().map(|(id, _)| *id).collect();
    store.record_hits(ws, &writes, &ids, at(4)).await.expect("record");
    assert_eq!(store.stored_hits(ws, 10).await.expect("read"), vec![], "recorded hits are forgotten");
    assert_eq!(store.stored_hits(other.id, 10).await.expect("read").len(), 1, "others' are kept");
    // The same hits again (a job whose worker died after recording): nothing is counted twice.
    assert_eq!(store.record_activities(&writes, at(5)).await.expect("again"), vec![Recorded::Duplicate; 2]);
    let activities = store.message_activities(ws, message.id, 10).await.expect("activities");
    let kinds: Vec<_> = activities
        .iter()
        .filter(|a| a.activity.source == crate::hits::HIT_SOURCE)
        .map(|a| (a.activity.kind, a.activity.machine, a.activity.url.clone()))
        .collect();
    assert_eq!(
        kinds,
        [(ActivityKind::Opened, true, None), (ActivityKind::Clicked, false, Some("https://acme.test/pricing".into()))]
    );

    // Once the job is claimed, new hits queue a new one.
    store.store_hits(&hits[..1], at(6)).await.expect("store");
    let jobs = store.claim_jobs(&claim(at(6), 10)).await.expect("claim");
    assert_eq!(jobs.iter().filter(|j| j.job.kind == JobKind::RecordHits.as_str()).count(), 1);
}
