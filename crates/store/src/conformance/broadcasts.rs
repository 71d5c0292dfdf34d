//! Broadcasts: drafts and their start, fan-out pages fenced by the lease that write each
//! recipient once, the rate limit's slots, pause, resume and cancel, and the progress.

use std::time::Duration;

use herald_domain::job::LeasedJob;
use herald_domain::{
    ContactId, Identity, JobKind, Message, MessageId, MessageStatus, PageRequest, Timestamp, Tracking, WorkspaceId,
};
use serde_json::json;

use super::helpers::{at, claim, email};
use crate::broadcast::{
    Audience, AudienceMember, BROADCAST_STATE, BroadcastDraft, BroadcastStart, BroadcastState, FanOutPage, Progress,
    Recipient,
};
use crate::{NewContact, SharedStore, StoreError};

fn message(ws: WorkspaceId, contact: ContactId, status: MessageStatus, now: Timestamp) -> Message {
    let id = MessageId::from_uuid(crate::new_uuid(now));
    Message {
        id,
        workspace_id: ws,
        campaign_id: None,
        journey_id: None,
        step: String::new(),
        contact_id: contact,
        status,
        status_reason: None,
        to: "to@example.com".into(),
        from: "news@example.com".into(),
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
        tracking: Tracking::default(),
        topic: None,
        created_at: now,
        sent_at: None,
    }
}

/// A workspace with contacts `a`…`d@example.com` (`d` suppressed) and a started broadcast
/// to everyone, its first page due at `at(10)`.
async fn started(store: &SharedStore, rate: Option<u32>) -> (WorkspaceId, crate::broadcast::Broadcast) {
    let ws = store.ensure_default_workspace(at(0)).await.expect("ws").id;
    for name in ["a", "b", "c", "d"] {
        let identity = Identity { email: Some(email(&format!("{name}@example.com"))), ..Default::default() };
        store.create_contact(ws, NewContact { identity, ..Default::default() }, at(1)).await.expect("contact");
    }
    let suppression = herald_domain::Suppression {
        email: "d@example.com".into(),
        contact_id: None,
        reason: "manual".into(),
        detail: None,
        message_id: None,
        created_at: at(1),
    };
    store.add_suppression(ws, &suppression, &[]).await.expect("suppress");
    let draft = BroadcastDraft {
        name: "News".into(),
        content: json!({"v": 1}),
        audience: Audience::Everyone,
        rate_per_hour: rate,
    };
    let broadcast = store.create_broadcast(ws, &draft, at(2)).await.expect("create");
    assert_eq!(broadcast.state, BroadcastState::Draft);
    let size = store.audience_size(ws, Audience::Everyone).await.expect("size");
    assert_eq!(size, 3, "the suppressed address is not in everyone");
    let start = BroadcastStart { content: json!({"v": 2}), at: at(10), audience_size: size };
    let started = store.start_broadcast(ws, broadcast.id, &start, at(3)).await.expect("start");
    assert_eq!(
        (started.state, started.content.clone(), started.next_slot),
        (BroadcastState::Scheduled, json!({"v": 2}), Some(at(10)))
    );
    (ws, started)
}

/// The one due fan-out job.
async fn fan_out_job(store: &SharedStore, now: Timestamp) -> LeasedJob {
    let mut jobs = store.claim_jobs(&claim(now, 10)).await.expect("claim");
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    let job = jobs.remove(0);
    assert_eq!(job.job.kind, JobKind::FanOutBroadcast.as_str());
    job
}

fn page(
    ws: WorkspaceId,
    broadcast: &crate::broadcast::Broadcast,
    members: &[AudienceMember],
    done: bool,
    now: Timestamp,
) -> FanOutPage {
    FanOutPage {
        broadcast: broadcast.id,
        after: broadcast.cursor,
        last: members.last().map(|m| m.contact.id),
        done,
        recipients: members
            .iter()
            .map(|m| Recipient {
                message: message(ws, m.contact.id, MessageStatus::Queued, now),
                not_before: now,
                deliver: true,
            })
            .collect(),
        spacing: broadcast.rate_per_hour.map(|r| Duration::from_secs(3600 / u64::from(r))),
        horizon: Duration::from_secs(60),
    }
}

pub async fn broadcast_pages_write_each_recipient_once(store: SharedStore) {
    let (ws, broadcast) = started(&store, Some(360)).await;
    for refused in [
        store
            .update_broadcast(
                ws,
                broadcast.id,
                &BroadcastDraft {
                    name: "x".into(),
                    content: json!({}),
                    audience: Audience::Everyone,
                    rate_per_hour: None,
                },
                at(4),
            )
            .await
            .err(),
        store.delete_broadcast(ws, broadcast.id).await.err(),
    ] {
        assert!(
            matches!(refused, Some(StoreError::Conflict { ref constraint }) if constraint == BROADCAST_STATE),
            "{refused:?}"
        );
    }
    assert!(store.claim_jobs(&claim(at(9), 10)).await.expect("claim").is_empty(), "due at its start");

    // The first page: two recipients, due one slot (10 s) apart from the start.
    let job = fan_out_job(&store, at(10)).await;
    let members =
        store.audience_page(ws, Audience::Everyone, PageRequest { after: None, limit: 2 }).await.expect("page");
    assert_eq!(members.items.len(), 2);
    let first = page(ws, &broadcast, &members.items, false, at(10));
    let result = store.fan_out_page(ws, &job.lease, &first, at(10)).await.expect("page");
    assert_eq!((result.written, result.added), (true, 2));
    // The same run again (its lease is spent): nothing written.
    assert!(matches!(store.fan_out_page(ws, &job.lease, &first, at(10)).await, Err(StoreError::LeaseLost)));
    let after = store.get_broadcast(ws, broadcast.id).await.expect("get");
    assert_eq!(
        (after.state, after.recipients, after.cursor, after.next_slot),
        (BroadcastState::Sending, 2, first.last, Some(at(30)))
    );

    // The next page's job is due a horizon (60 s) before the deliveries run out: now. A
    // second run of it over the page already written (an earlier cursor) writes nothing.
    let mut jobs = store.claim_jobs(&claim(at(10), 10)).await.expect("claim");
    let kinds: Vec<_> = jobs.iter().map(|j| j.job.kind.clone()).collect();
    assert!(kinds.contains(&JobKind::FanOutBroadcast.as_str().to_owned()), "{kinds:?}");
    assert_eq!(kinds.iter().filter(|k| *k == "deliver_message").count(), 1, "the first slot only: {kinds:?}");
    let fan = jobs.remove(jobs.iter().position(|j| j.job.kind == "fan_out_broadcast").expect("fan-out"));
    let stale = page(ws, &broadcast, &members.items, false, at(10));
    let result = store.fan_out_page(ws, &fan.lease, &stale, at(10)).await.expect("stale page");
    assert_eq!((result.written, result.added), (false, 0));

    // A repeated page whose cursor matches (a crash after reading, before committing, on
    // another node): recipients already written are left alone, the rest written.
    let broadcast = store.get_broadcast(ws, broadcast.id).await.expect("get");
    let rest = store
        .audience_page(ws, Audience::Everyone, PageRequest { after: broadcast.cursor, limit: 10 })
        .await
        .expect("rest");
    assert_eq!(rest.items.len(), 1);
    store.enqueue_jobs(ws, &[crate::broadcast::fan_out_job(broadcast.id, at(10))], at(10)).await.expect("job");
    let job = fan_out_job(&store, at(10)).await;
    let mut overlap = members.items.clone();
    overlap.extend(rest.items.clone());
    let mut last = page(ws, &broadcast, &overlap, true, at(10));
    last.last = rest.items.last().map(|m| m.contact.id);
    let result = store.fan_out_page(ws, &job.lease, &last, at(10)).await.expect("last page");
    assert_eq!((result.written, result.added), (true, 1));
    let finished = store.get_broadcast(ws, broadcast.id).await.expect("get");
    assert_eq!((finished.state, finished.recipients, finished.next_slot), (BroadcastState::Finished, 3, Some(at(40))));
    assert!(finished.finished_at.is_some());
    let progress = store.broadcast_progress(ws, broadcast.id).await.expect("progress");
    assert_eq!(progress, Progress { queued: 3, left: 3, ..Progress::default() });
}

pub async fn broadcasts_pause_resume_and_cancel(store: SharedStore) {
    let (ws, broadcast) = started(&store, Some(360)).await;
    let job = fan_out_job(&store, at(10)).await;
    let members = store.audience_page(ws, Audience::Everyone, PageRequest::first(10)).await.expect("page");
    let all = page(ws, &broadcast, &members.items, true, at(10));
    store.fan_out_page(ws, &job.lease, &all, at(10)).await.expect("page");

    // Paused: no delivery comes due, however late.
    let paused = store.pause_broadcast(ws, broadcast.id, at(11)).await.expect("pause");
    assert_eq!(paused.state, BroadcastState::Paused);
    assert!(store.claim_jobs(&claim(at(100_000), 10)).await.expect("claim").is_empty());
    assert!(matches!(store.pause_broadcast(ws, broadcast.id, at(12)).await, Err(StoreError::Conflict { .. })));

    // Resumed: due again from now, one slot apart, and still finished (every recipient written).
    let resumed =
        store.resume_broadcast(ws, broadcast.id, Some(Duration::from_secs(10)), Duration::from_secs(60), at(500)).await;
    let resumed = resumed.expect("resume");
    assert_eq!((resumed.state, resumed.next_slot), (BroadcastState::Finished, Some(at(530))));
    let due = store.claim_jobs(&claim(at(505), 10)).await.expect("claim");
    assert_eq!(due.len(), 1, "one delivery in the first slot: {due:?}");
    for leased in &due {
        let done = herald_domain::JobOutcome::Done;
        store.finish_job(ws, &leased.lease, &done, at(505)).await.expect("finish");
    }

    // Cancelled: the queued messages are withdrawn with their jobs.
    let cancelled = store.cancel_broadcast(ws, broadcast.id, at(506)).await.expect("cancel");
    assert_eq!(cancelled.state, BroadcastState::Cancelled);
    assert!(store.claim_jobs(&claim(at(100_000), 10)).await.expect("claim").is_empty());
    let progress = store.broadcast_progress(ws, broadcast.id).await.expect("progress");
    assert_eq!(progress, Progress { queued: 1, cancelled: 2, left: 1, ..Progress::default() });
    assert!(matches!(store.cancel_broadcast(ws, broadcast.id, at(507)).await, Err(StoreError::Conflict { .. })));
    let other = store.create_workspace(&super::helpers::ws_name("other"), at(0)).await.expect("ws");
    assert!(matches!(store.get_broadcast(other.id, broadcast.id).await, Err(StoreError::NotFound { .. })));
}
