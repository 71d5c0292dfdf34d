//! Conformance cases for ingest and events: contacts created or updated, idempotency keys,
//! unmatched and conflicting identities, concurrent batches, event filters.

use herald_domain::{ContactAction, PageRequest, UserId};
use serde_json::{Value, json};

use super::helpers::{accepted, at, email, new_source, request, with_source, ws_name};
use crate::ingest::{IngestRequest, IngestResult};
use crate::{ContactFilter, EventFilter, SharedStore, StoreError};

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
