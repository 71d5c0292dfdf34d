//! Segments: saving and referring, live decisions with their race guard, build pages that
//! leave fresher decisions alone, members, history, sizes, and the jobs that keep them current.

use herald_domain::{ContactId, Identity, JobKind, PageRequest, SegmentId, WorkspaceId};
use serde_json::json;

use super::helpers::{accepted, at, claim, email, request, with_source};
use crate::segment::{
    BuildPage, BuildPayload, MEMBERSHIP_RACE, REFERENCED, SegmentDecision, SegmentDraft, SegmentStatus, SegmentWork,
};
use crate::{ContactPatch, NewContact, SharedStore, StoreError};

fn draft(name: &str, references: Vec<SegmentId>) -> SegmentDraft {
    SegmentDraft { name: name.into(), definition: json!({"field": "plan", "op": "eq", "value": "pro"}), references }
}

fn decision(segment: SegmentId, contact: ContactId, was: Option<bool>, member: bool) -> SegmentDecision {
    SegmentDecision {
        segment_id: segment,
        contact_id: contact,
        was_member: was,
        member,
        recheck_at: None,
        reason: "test".into(),
    }
}

async fn contact(store: &SharedStore, ws: WorkspaceId, address: &str) -> ContactId {
    let new =
        NewContact { identity: Identity { email: Some(email(address)), ..Default::default() }, ..Default::default() };
    store.create_contact(ws, new, at(1)).await.expect("contact").id
}

/// Claims every due job and returns the kinds, finishing them.
async fn drain(store: &SharedStore, now: herald_domain::Timestamp) -> Vec<(JobKind, serde_json::Value)> {
    let mut kinds = Vec::new();
    for leased in store.claim_jobs(&claim(now, 100)).await.expect("claim") {
        let kind = leased.job.kind.parse().expect("a known kind");
        kinds.push((kind, leased.job.payload.clone()));
        store
            .finish_job(leased.job.workspace_id, &leased.lease, &herald_domain::JobOutcome::Done, now)
            .await
            .expect("finish");
    }
    kinds
}

pub async fn segments_are_saved_referred_to_and_built(store: SharedStore) {
    let ws = store.ensure_default_workspace(at(0)).await.expect("ws").id;
    let base = store.create_segment(ws, &draft("pro", vec![]), at(1)).await.expect("create");
    assert_eq!((base.status, base.generation, base.members), (SegmentStatus::Building, 1, 0));
    let jobs = drain(&store, at(1)).await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].0, JobKind::BuildSegment);
    let payload: BuildPayload = serde_json::from_value(jobs[0].1.clone()).expect("payload");
    assert_eq!(payload, BuildPayload { segment: base.id, generation: 1 });
    match store.create_segment(ws, &draft("pro", vec![]), at(1)).await {
        Err(StoreError::Conflict { constraint }) => assert_eq!(constraint, "segments_name"),
        other => panic!("expected a name conflict, got {other:?}"),
    }
    let unknown = SegmentId::from_uuid(crate::new_uuid(at(1)));
    assert!(matches!(
        store.create_segment(ws, &draft("ghost", vec![unknown]), at(1)).await,
        Err(StoreError::NotFound { .. })
    ));
    let nested = store.create_segment(ws, &draft("nested", vec![base.id]), at(2)).await.expect("nested");
    match store.delete_segment(ws, base.id).await {
        Err(StoreError::Conflict { constraint }) => assert_eq!(constraint, REFERENCED),
        other => panic!("expected the reference to hold, got {other:?}"),
    }
    let edited = store.update_segment(ws, nested.id, &draft("nested", vec![]), at(3)).await.expect("edit");
    assert_eq!((edited.generation, edited.status), (2, SegmentStatus::Building));
    store.delete_segment(ws, base.id).await.expect("no longer referred to");
    assert_eq!(store.list_segments(ws).await.expect("list").len(), 1);
    let other = store.create_workspace(&super::helpers::ws_name("other"), at(0)).await.expect("ws");
    assert!(matches!(store.get_segment(other.id, nested.id).await, Err(StoreError::NotFound { .. })));

    // A build page over two contacts, then the last page.
    let (a, b) = (contact(&store, ws, "a@example.com").await, contact(&store, ws, "b@example.com").await);
    let page = |decisions, after, cursor, generation| BuildPage {
        segment: nested.id,
        generation,
        read_at: at(10),
        decisions,
        after,
        cursor,
        decided: 1,
        jobs: Vec::new(),
    };
    let stale = page(vec![decision(nested.id, a, None, true)], None, Some(a), 1);
    assert!(!store.apply_build_page(ws, &stale, at(10)).await.expect("stale"), "an old generation writes nothing");
    let first = page(vec![decision(nested.id, a, None, true)], None, Some(a), 2);
    assert!(store.apply_build_page(ws, &first, at(10)).await.expect("page"));
    assert!(!store.apply_build_page(ws, &first, at(10)).await.expect("again"), "a page is written once");
    let building = store.get_segment(ws, nested.id).await.expect("read");
    assert_eq!(
        (building.status, building.progress, building.members, building.cursor),
        (SegmentStatus::Building, 1, 1, Some(a))
    );
    // `b` changed after the page was read: its own re-decision decides it.
    store
        .update_contact(
            ws,
            b,
            ContactPatch {
                attributes: json!({"plan": "pro"}).as_object().cloned().unwrap_or_default(),
                ..Default::default()
            },
            at(11),
        )
        .await
        .expect("update");
    let last = page(vec![decision(nested.id, b, None, true)], Some(a), None, 2);
    assert!(store.apply_build_page(ws, &last, at(12)).await.expect("page"));
    let ready = store.get_segment(ws, nested.id).await.expect("read");
    assert_eq!((ready.status, ready.progress, ready.members), (SegmentStatus::Ready, 2, 1));
    let members = store.list_members(ws, nested.id, PageRequest::first(10)).await.expect("members");
    assert_eq!(members.items.iter().map(|m| m.contact.id).collect::<Vec<_>>(), vec![a]);
    assert_eq!(members.items[0].since, at(10));
    // Erasing a member takes it out of the count.
    let c = contact(&store, ws, "c@example.com").await;
    let more = BuildPage {
        segment: nested.id,
        generation: 2,
        read_at: at(12),
        decisions: vec![decision(nested.id, c, None, true)],
        after: None,
        cursor: None,
        decided: 1,
        jobs: Vec::new(),
    };
    store.update_segment(ws, nested.id, &draft("nested", vec![]), at(12)).await.expect("edit again");
    assert!(store.apply_build_page(ws, &BuildPage { generation: 3, ..more }, at(12)).await.expect("page"));
    assert_eq!(store.get_segment(ws, nested.id).await.expect("read").members, 2);
    store.delete_contact(ws, c).await.expect("erase");
    assert_eq!(store.get_segment(ws, nested.id).await.expect("read").members, 1);
    // The update queued a re-decision of `b` (the workspace has segments).
    let jobs = drain(&store, at(12)).await;
    assert!(
        jobs.iter().any(|(kind, payload)| *kind == JobKind::RefreshSegments && payload["contacts"][0] == json!(b)),
        "{jobs:?}"
    );
}

pub async fn live_decisions_record_changes_once(store: SharedStore) {
    let (ws, source) = with_source(&store).await;
    let segment = store.create_segment(ws, &draft("pro", vec![]), at(1)).await.expect("create");
    let receipt = accepted(
        &store
            .ingest(&[request(ws, source, json!({"email": "a@example.com", "event": "signed_up"}), None, at(2))], at(2))
            .await
            .expect("ingest")[0],
    );
    let contact = receipt.contact_id.expect("a contact");
    // Segments alone (no campaign) make events worth evaluating.
    let jobs = drain(&store, at(2)).await;
    assert!(jobs.iter().any(|(kind, _)| *kind == JobKind::EvaluateEvents), "{jobs:?}");

    let mut entered = decision(segment.id, contact, Some(false), true);
    entered.recheck_at = Some(at(100));
    let event = crate::segment::membership_event(ws, contact, segment.id, "pro", true, "signed_up", at(3));
    let work = SegmentWork {
        decisions: vec![entered.clone()],
        events: vec![event],
        jobs: vec![crate::segment::refresh_job(&[contact], at(100))],
        evaluate: false,
    };
    store.apply_segment_work(ws, &work, at(3)).await.expect("enter");
    // The same decision again (another node, or a retry) finds the change made.
    match store.apply_segment_work(ws, &work, at(3)).await {
        Err(StoreError::Conflict { constraint }) => assert_eq!(constraint, MEMBERSHIP_RACE),
        other => panic!("expected a race, got {other:?}"),
    }
    let standing = store.contact_memberships(ws, contact).await.expect("memberships");
    assert_eq!(standing.len(), 1);
    assert_eq!((standing[0].member, standing[0].since, standing[0].recheck_at), (true, Some(at(3)), Some(at(100))));
    let facts = store
        .contact_event_facts(ws, contact, &["signed_up".to_owned(), "segment_entered".to_owned()], 10)
        .await
        .expect("facts");
    assert_eq!(facts.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(), vec!["segment_entered", "signed_up"]);
    assert_eq!(facts[0].properties["segment_id"], json!(segment.id));

    let left = decision(segment.id, contact, Some(true), false);
    store
        .apply_segment_work(ws, &SegmentWork { decisions: vec![left], ..Default::default() }, at(4))
        .await
        .expect("leave");
    assert!(store.contact_memberships(ws, contact).await.expect("memberships").is_empty(), "no row without a timer");
    let history = store.membership_history(ws, Some(segment.id), None, 10).await.expect("history");
    assert_eq!(history.iter().map(|h| (h.entered, h.at)).collect::<Vec<_>>(), vec![(false, at(4)), (true, at(3))]);
    assert_eq!(store.membership_history(ws, None, Some(contact), 10).await.expect("history").len(), 2);
    let sizes = store.segment_sizes(ws, segment.id, 30).await.expect("sizes");
    assert_eq!(sizes.len(), 1);
    assert_eq!((sizes[0].day.as_str(), sizes[0].members), ("2026-01-01", 0));
    assert_eq!(store.get_segment(ws, segment.id).await.expect("read").members, 0);
    // Erasing the contact erases its standing and history.
    store.delete_contact(ws, contact).await.expect("delete");
    assert!(store.membership_history(ws, Some(segment.id), None, 10).await.expect("history").is_empty());
}

pub async fn batch_reads_keep_each_contacts_own(store: SharedStore) {
    let (ws, source) = with_source(&store).await;
    let segment = store.create_segment(ws, &draft("pro", vec![]), at(1)).await.expect("create");
    let mut ids = Vec::new();
    for (n, (address, name)) in [
        ("a@example.com", "signed_up"),
        ("a@example.com", "order_placed"),
        ("a@example.com", "signed_up"),
        ("b@example.com", "signed_up"),
        ("b@example.com", "page_viewed"),
        ("c@example.com", "signed_up"),
    ]
    .into_iter()
    .enumerate()
    {
        let t = at(2 + n as u64);
        let body = json!({"email": address, "event": name});
        let receipt = accepted(&store.ingest(&[request(ws, source, body, None, t)], t).await.expect("ingest")[0]);
        ids.push(receipt.contact_id.expect("a contact"));
    }
    let (a, b, c) = (ids[0], ids[3], ids[5]);
    let names = ["signed_up".to_owned(), "order_placed".to_owned()];
    let facts = store.event_facts_of(ws, &[a, b], &names, 2).await.expect("facts");
    let of = |contact: ContactId| {
        facts.iter().filter(|(c, _)| *c == contact).map(|(_, f)| (f.name.as_str(), f.occurred_at)).collect::<Vec<_>>()
    };
    assert_eq!(of(a), vec![("signed_up", at(4)), ("order_placed", at(3))], "each contact's newest, at most the limit");
    assert_eq!(of(b), vec![("signed_up", at(5))], "only the names asked for");
    assert!(of(c).is_empty(), "only the contacts asked for");

    let work = SegmentWork {
        decisions: [a, b, c].map(|contact| decision(segment.id, contact, Some(false), true)).to_vec(),
        ..Default::default()
    };
    store.apply_segment_work(ws, &work, at(10)).await.expect("enter");
    let mut standings: Vec<(ContactId, bool)> =
        store.memberships_of(ws, &[a, c]).await.expect("standings").iter().map(|m| (m.contact_id, m.member)).collect();
    standings.sort();
    let mut expected = vec![(a, true), (c, true)];
    expected.sort();
    assert_eq!(standings, expected);
    assert_eq!(store.get_segment(ws, segment.id).await.expect("read").members, 3, "one change per contact counted");
}

pub async fn membership_events_are_evaluated_when_something_reacts(store: SharedStore) {
    use herald_domain::CampaignState::{Active, Draft};
    let (ws, _) = with_source(&store).await;
    let segment = store.create_segment(ws, &draft("pro", vec![]), at(1)).await.expect("create");
    let a = contact(&store, ws, "a@example.com").await;
    drain(&store, at(1)).await;
    let evaluations = |jobs: Vec<(JobKind, serde_json::Value)>| {
        jobs.into_iter().filter(|(kind, _)| *kind == JobKind::EvaluateEvents).map(|(_, p)| p).collect::<Vec<_>>()
    };
    let mut member = false;
    let mut change = |evaluate: bool, t: u64| {
        member = !member;
        let event = crate::segment::membership_event(ws, a, segment.id, "pro", member, "test", at(t));
        SegmentWork {
            decisions: vec![decision(segment.id, a, Some(!member), member)],
            events: vec![event],
            evaluate,
            ..Default::default()
        }
    };
    // No campaign and no segment reading the events: nothing would react.
    store.apply_segment_work(ws, &change(false, 2), at(2)).await.expect("enter");
    assert!(evaluations(drain(&store, at(2)).await).is_empty());
    // A segment reads them.
    let work = change(true, 3);
    store.apply_segment_work(ws, &work, at(3)).await.expect("leave");
    assert_eq!(evaluations(drain(&store, at(3)).await), vec![json!({"events": [work.events[0].id]})]);
    // A live campaign may react.
    let campaign = store.create_campaign(ws, "C", &json!({}), at(4)).await.expect("campaign");
    store.set_campaign_state(ws, campaign.id, &[Draft], Active, at(4)).await.expect("activate");
    let work = change(false, 5);
    store.apply_segment_work(ws, &work, at(5)).await.expect("enter again");
    assert_eq!(evaluations(drain(&store, at(5)).await), vec![json!({"events": [work.events[0].id]})]);
}
