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

/// Tracked hits: a batch is stored with one `record_hits` job per workspace naming its hits;
/// they read back (only in their workspace), their activities are recorded once however often
/// a job runs, and they are forgotten when deleted.
pub async fn hits_are_stored_with_their_job_and_recorded_once(store: SharedStore) {
    use crate::email::{ActivityWrite, Recorded};
    use crate::hits::{Hit, HitsPayload};
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
    store.store_hits(&hits, at(3)).await.expect("store");
    let jobs = store.claim_jobs(&claim(at(3), 10)).await.expect("claim");
    let jobs: Vec<_> = jobs.iter().filter(|j| j.job.kind == JobKind::RecordHits.as_str()).collect();
    assert_eq!(jobs.len(), 2, "one job per workspace");
    let job = jobs.iter().find(|j| j.job.workspace_id == ws).expect("the workspace's job");
    let payload: HitsPayload = serde_json::from_value(job.job.payload.clone()).expect("payload");
    assert_eq!(payload.hits.len(), 2);

    let stored = store.stored_hits(ws, &payload.hits).await.expect("read");
    assert_eq!(stored.iter().map(|(_, h)| h.clone()).collect::<Vec<_>>(), hits[..2].to_vec());
    assert_eq!(store.stored_hits(other.id, &payload.hits).await.expect("read"), vec![], "scoped to the workspace");

    let writes: Vec<_> = stored
        .iter()
        .map(|(id, hit)| ActivityWrite {
            workspace: ws,
            activity: hit.activity(*id),
            suppress: None,
            follow_up: vec![],
        })
        .collect();
    assert_eq!(store.record_activities(&writes, at(4)).await.expect("record"), vec![Recorded::Applied; 2]);
    // The job run again (its worker died before finishing it): nothing is counted twice.
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

    store.delete_hits(ws, &payload.hits).await.expect("delete");
    assert_eq!(store.stored_hits(ws, &payload.hits).await.expect("read"), vec![]);
}
