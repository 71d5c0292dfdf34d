//! Conformance cases for subscription topics: names unique per workspace in any case, soft
//! deletion, each contact's choices recorded once with their source and event, the
//! subscribers of a topic paged, and the topic a message was sent under kept.

use herald_domain::{ConsentSource, Identity, MessageStatus, PageRequest};

use super::helpers::{at, email, journey_for, queued_message, ws_name};
use crate::topic::ConsentChange;
use crate::{EventFilter, NewContact, SharedStore, StoreError};

pub async fn topics_are_named_updated_and_soft_deleted(store: SharedStore) {
    let ws = store.ensure_default_workspace(at(0)).await.expect("ws").id;
    let other = store.create_workspace(&ws_name("topics-other"), at(0)).await.expect("other ws").id;
    let news = store.create_topic(ws, "Newsletter", "Monthly news", at(1)).await.expect("create");
    assert_eq!((news.name.as_str(), news.description.as_str(), news.created_at), ("Newsletter", "Monthly news", at(1)));
    let updates = store.create_topic(ws, "Product updates", "", at(2)).await.expect("create");
    // Unique in any case, per workspace.
    let clash = store.create_topic(ws, "NEWSLETTER", "", at(3)).await;
    assert!(matches!(clash, Err(StoreError::Conflict { ref constraint }) if constraint == "topics_name"), "{clash:?}");
    store.create_topic(other, "Newsletter", "", at(3)).await.expect("same name elsewhere");
    let renamed = store.update_topic(ws, updates.id, "Announcements", "Big ones", at(4)).await.expect("update");
    assert_eq!((renamed.name.as_str(), renamed.updated_at, renamed.created_at), ("Announcements", at(4), at(2)));
    let clash = store.update_topic(ws, updates.id, "newsletter", "", at(4)).await;
    assert!(matches!(clash, Err(StoreError::Conflict { ref constraint }) if constraint == "topics_name"), "{clash:?}");
    let names: Vec<_> = store.list_topics(ws).await.expect("list").into_iter().map(|t| t.name).collect();
    assert_eq!(names, ["Announcements", "Newsletter"]);
    // Another workspace's topic is not there.
    assert!(store.topics_by_ids(other, &[news.id]).await.expect("by ids").is_empty());
    assert!(matches!(store.delete_topic(other, news.id, at(5)).await, Err(StoreError::NotFound { .. })));

    store.delete_topic(ws, news.id, at(5)).await.expect("delete");
    assert!(matches!(store.delete_topic(ws, news.id, at(6)).await, Err(StoreError::NotFound { .. })));
    assert!(matches!(store.update_topic(ws, news.id, "x", "", at(6)).await, Err(StoreError::NotFound { .. })));
    let names: Vec<_> = store.list_topics(ws).await.expect("list").into_iter().map(|t| t.name).collect();
    assert_eq!(names, ["Announcements"]);
    // Still found by id (campaign versions name it), marked deleted; its name is free again.
    let found = store.topics_by_ids(ws, &[news.id, updates.id]).await.expect("by ids");
    assert_eq!(found.len(), 2);
    assert!(found.iter().any(|t| t.id == news.id && t.deleted_at == Some(at(5))));
    store.create_topic(ws, "newsletter", "", at(7)).await.expect("name free after deletion");
}

pub async fn topic_choices_are_recorded_once_with_their_source_and_event(store: SharedStore) {
    let (ws, contact, journey) = journey_for(&store, "reader@example.com").await;
    let news = store.create_topic(ws, "Newsletter", "", at(1)).await.expect("topic");
    let promos = store.create_topic(ws, "Promotions", "", at(1)).await.expect("topic");
    assert!(store.is_subscribed(ws, contact, news.id).await.expect("read"), "no choice means subscribed");
    assert!(store.contact_topics(ws, contact).await.expect("read").is_empty());

    let leave = ConsentChange { contact, topic: news.id, subscribed: false, source: ConsentSource::OneClick };
    let join = ConsentChange { subscribed: true, source: ConsentSource::Api, ..leave };
    // Joining what one is in changes nothing; leaving does, once.
    assert_eq!(store.set_topic_consents(ws, &[join, leave, leave], at(10)).await.expect("set"), [false, true, false]);
    assert!(!store.is_subscribed(ws, contact, news.id).await.expect("read"));
    assert!(store.is_subscribed(ws, contact, promos.id).await.expect("read"));
    let choices = store.contact_topics(ws, contact).await.expect("read");
    assert_eq!(choices.len(), 1);
    let choice = &choices[0];
    assert_eq!(
        (choice.topic_id, choice.subscribed, choice.source, choice.updated_at),
        (news.id, false, ConsentSource::OneClick, at(10))
    );

    let filter =
        EventFilter { contact: Some(contact), name: Some("topic_unsubscribed".into()), ..EventFilter::default() };
    let events = store.list_events(ws, &filter, PageRequest::first(10)).await.expect("events").items;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].properties["topic_id"], news.id.to_string());
    assert_eq!(events[0].properties["source"], "one_click");
    assert!(events[0].source_id.is_none());

    assert_eq!(store.set_topic_consents(ws, &[join], at(11)).await.expect("rejoin"), [true]);
    assert!(store.is_subscribed(ws, contact, news.id).await.expect("read"));
    let filter =
        EventFilter { contact: Some(contact), name: Some("topic_subscribed".into()), ..EventFilter::default() };
    assert_eq!(store.list_events(ws, &filter, PageRequest::first(10)).await.expect("events").items.len(), 1);
    let choice = &store.contact_topics(ws, contact).await.expect("read")[0];
    assert_eq!((choice.subscribed, choice.source, choice.updated_at), (true, ConsentSource::Api, at(11)));

    // Unknown or deleted topics, and contacts of another workspace, are refused whole.
    let other = store.create_workspace(&ws_name("consents-other"), at(0)).await.expect("ws").id;
    let stranger = store
        .create_contact(
            other,
            NewContact {
                identity: Identity { email: Some(email("x@example.com")), ..Default::default() },
                ..Default::default()
            },
            at(1),
        )
        .await
        .expect("contact");
    let foreign = ConsentChange { contact: stranger.id, ..leave };
    let refused = store.set_topic_consents(ws, &[ConsentChange { topic: promos.id, ..leave }, foreign], at(12)).await;
    assert!(matches!(refused, Err(StoreError::NotFound { .. })), "{refused:?}");
    assert!(store.is_subscribed(ws, contact, promos.id).await.expect("read"), "nothing of a refused batch is kept");
    store.delete_topic(ws, promos.id, at(12)).await.expect("delete");
    let refused = store.set_topic_consents(ws, &[ConsentChange { topic: promos.id, ..leave }], at(13)).await;
    assert!(matches!(refused, Err(StoreError::NotFound { .. })), "{refused:?}");

    // A message keeps the topic it was sent under.
    let campaign = store.journey_context(ws, journey).await.expect("journey").journey.campaign_id;
    let message = herald_domain::Message {
        topic: Some(news.id),
        ..queued_message(ws, contact, journey, campaign, "a@acme.test", MessageStatus::Queued)
    };
    let work = crate::campaign::CampaignWork { messages: vec![message.clone()], ..Default::default() };
    store.commit_campaign_work(ws, None, &work, at(14)).await.expect("commit");
    assert_eq!(store.get_message(ws, message.id).await.expect("message").topic, Some(news.id));
}

pub async fn topic_subscribers_page_those_who_did_not_leave(store: SharedStore) {
    let ws = store.ensure_default_workspace(at(0)).await.expect("ws").id;
    let topic = store.create_topic(ws, "Newsletter", "", at(1)).await.expect("topic");
    let mut contacts = Vec::new();
    for n in 0..5 {
        let identity = Identity { email: Some(email(&format!("c{n}@example.com"))), ..Default::default() };
        let contact = store.create_contact(ws, NewContact { identity, ..Default::default() }, at(2 + n)).await;
        contacts.push(contact.expect("contact").id);
    }
    // No address: never a subscriber.
    let phone = herald_domain::Phone::parse("+15550100000").expect("phone");
    let identity = Identity { phone: Some(phone), ..Default::default() };
    store.create_contact(ws, NewContact { identity, ..Default::default() }, at(9)).await.expect("contact");
    let leave =
        ConsentChange { contact: contacts[1], topic: topic.id, subscribed: false, source: ConsentSource::Import };
    let left_and_back = ConsentChange { contact: contacts[3], ..leave };
    store.set_topic_consents(ws, &[leave, left_and_back], at(10)).await.expect("leave");
    store.set_topic_consents(ws, &[ConsentChange { subscribed: true, ..left_and_back }], at(11)).await.expect("back");

    let first = store.topic_subscribers(ws, topic.id, PageRequest::first(2)).await.expect("page");
    assert_eq!(first.items, [contacts[0], contacts[2]]);
    let after = PageRequest { after: first.items.last().copied(), limit: 2 };
    let second = store.topic_subscribers(ws, topic.id, after).await.expect("page");
    assert_eq!(second.items, [contacts[3], contacts[4]]);
    assert!(second.next_cursor.is_none());
}
