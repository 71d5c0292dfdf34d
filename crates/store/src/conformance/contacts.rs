//! Conformance cases for contacts: CRUD and filters, exact numbers, attribute limits,
//! imports, attribute search, per-workspace history.

use herald_domain::{ContactId, PageRequest, UserId};
use serde_json::{Value, json};

use super::helpers::{accepted, at, email, request, with_source, ws_name};
use crate::ingest::IngestResult;
use crate::{ContactFilter, ContactPatch, EventFilter, ImportOutcome, NewContact, SharedStore, StoreError};

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
