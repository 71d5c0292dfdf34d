//! Conformance cases for shared email templates and layouts.

use herald_domain::{SavedTemplate, TemplateContent, TemplateKind};

use super::helpers::{at, ws_name};
use crate::{SharedStore, StoreError};

fn content(subject: &str, html: &str) -> TemplateContent {
    TemplateContent { subject: subject.into(), html: html.into(), text: None, layout: None }
}

pub async fn templates_keep_every_version(store: SharedStore) {
    let ws = store.ensure_default_workspace(at(0)).await.expect("ws").id;
    let other = store.create_workspace(&ws_name("other"), at(0)).await.expect("other ws").id;
    let layout = store
        .create_template(ws, TemplateKind::Layout, "Plain", &content("", "<main>{{ content }}</main>"), at(1))
        .await
        .expect("layout");
    let first = TemplateContent {
        text: Some("Hi {{ first_name }}\u{0}".into()),
        layout: Some(layout.id),
        ..content("Welcome", "<p>Hi {{ first_name }}</p>")
    };
    let created = store.create_template(ws, TemplateKind::Template, "Welcome", &first, at(2)).await.expect("create");
    assert_eq!((created.version, created.created_at, created.version_created_at), (1, at(2), at(2)));
    assert_eq!((created.kind, created.content.layout), (TemplateKind::Template, Some(layout.id)));
    let conflict = store
        .create_template(ws, TemplateKind::Template, "Welcome", &content("s", "h"), at(3))
        .await
        .expect_err("same name");
    assert!(
        matches!(conflict, StoreError::Conflict { ref constraint } if constraint == "templates_kind_name"),
        "{conflict:?}"
    );
    store
        .create_template(ws, TemplateKind::Layout, "Welcome", &content("", "{{ content }}"), at(3))
        .await
        .expect("names are per kind");
    store
        .create_template(other, TemplateKind::Template, "Welcome", &content("s", "h"), at(3))
        .await
        .expect("names are per workspace");

    let edited = store
        .update_template(ws, created.id, "Welcome!", &content("Welcome, {{ first_name }}", "<p>v2</p>"), at(4))
        .await
        .expect("edit");
    assert_eq!(
        (edited.version, edited.name.as_str(), edited.created_at, edited.version_created_at),
        (2, "Welcome!", at(2), at(4))
    );
    assert!(matches!(
        store.update_template(other, created.id, "x", &content("s", "h"), at(5)).await,
        Err(StoreError::NotFound { .. })
    ));
    let names = |list: Vec<SavedTemplate>| list.into_iter().map(|t| (t.name, t.version)).collect::<Vec<_>>();
    assert_eq!(names(store.list_templates(ws, TemplateKind::Template).await.expect("list")), [("Welcome!".into(), 2)]);
    assert_eq!(
        names(store.list_templates(ws, TemplateKind::Layout).await.expect("layouts")),
        [("Plain".into(), 1), ("Welcome".into(), 1)]
    );

    let versions = store.template_versions(ws, &[created.id]).await.expect("versions");
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[0], created, "the first version reads back unchanged");
    assert_eq!(versions[1], edited);
    assert!(store.template_versions(other, &[created.id]).await.expect("other").is_empty());
    assert!(store.template_versions(ws, &[]).await.expect("none").is_empty());

    store.delete_template(ws, created.id, at(6)).await.expect("delete");
    assert!(matches!(store.delete_template(ws, created.id, at(7)).await, Err(StoreError::NotFound { .. })));
    assert!(matches!(
        store.update_template(ws, created.id, "x", &content("s", "h"), at(7)).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(store.list_templates(ws, TemplateKind::Template).await.expect("list").is_empty());
    // Journeys still read a deleted template's versions; its name is free again.
    let kept = store.template_versions(ws, &[created.id, layout.id]).await.expect("deleted too");
    assert_eq!(kept.iter().map(|t| (t.version, t.deleted_at.is_some())).collect::<Vec<_>>().len(), 3);
    assert!(kept.iter().filter(|t| t.id == created.id).all(|t| t.deleted_at == Some(at(6))));
    store
        .create_template(ws, TemplateKind::Template, "Welcome!", &content("s", "h"), at(8))
        .await
        .expect("a deleted template's name is free again");
}

pub async fn transactional_sends_are_stored_once_per_key(store: SharedStore) {
    use crate::email::{ActivityWrite, Recorded, delivery_job};
    use crate::send::{SendOutcome, TransactionalSend};
    use herald_domain::{Activity, ActivityKind, BounceKind, JobKind, MessageStatus};

    let (ws, contact, _) = super::helpers::journey_for(&store, "t@example.com").await;
    let message = |t| {
        let mut message = super::helpers::queued_message(
            ws,
            contact,
            herald_domain::JourneyId::from_uuid(crate::new_uuid(at(t))),
            herald_domain::CampaignId::from_uuid(crate::new_uuid(at(t))),
            "a@acme.test",
            MessageStatus::Queued,
        );
        message.id = herald_domain::MessageId::from_uuid(crate::new_uuid(at(t)));
        (message.campaign_id, message.journey_id, message.step) = (None, None, String::new());
        message
    };
    let first = message(1);
    let job = delivery_job(first.id, at(1));
    let send = TransactionalSend { key: Some(("order-1", "hash-a")), message: &first, job: Some(&job) };
    assert_eq!(store.send_transactional(ws, send, at(1)).await.expect("send"), SendOutcome::Accepted(first.id));
    let stored = store.get_message(ws, first.id).await.expect("stored");
    assert_eq!((stored.campaign_id, stored.journey_id, stored.status), (None, None, MessageStatus::Queued));

    // The same key: the first message again for the same request, a refusal for another;
    // nothing is stored either way.
    let second = message(2);
    let job2 = delivery_job(second.id, at(2));
    let again = TransactionalSend { key: Some(("order-1", "hash-a")), message: &second, job: Some(&job2) };
    assert_eq!(store.send_transactional(ws, again, at(2)).await.expect("replay"), SendOutcome::Replayed(first.id));
    let other = TransactionalSend { key: Some(("order-1", "hash-b")), ..again };
    assert_eq!(store.send_transactional(ws, other, at(2)).await.expect("reused"), SendOutcome::KeyReused);
    assert!(matches!(store.get_message(ws, second.id).await, Err(StoreError::NotFound { .. })));
    // Keys are forgotten once their window is over, and only then: the key is free again.
    assert_eq!(store.purge_send_keys(at(1)).await.expect("purge"), 0);
    assert_eq!(store.purge_send_keys(at(2)).await.expect("purge"), 1);
    let third = message(3);
    let renewed = TransactionalSend { key: Some(("order-1", "hash-b")), message: &third, job: None };
    assert_eq!(store.send_transactional(ws, renewed, at(3)).await.expect("renewed"), SendOutcome::Accepted(third.id));
    // Messages read together: those that exist, whatever the order asked.
    let unknown = herald_domain::MessageId::from_uuid(crate::new_uuid(at(9)));
    let mut found: Vec<_> =
        store.get_messages(ws, &[third.id, unknown, first.id]).await.expect("messages").iter().map(|m| m.id).collect();
    found.sort();
    let mut expected = vec![first.id, third.id];
    expected.sort();
    assert_eq!(found, expected);
    let jobs = store.claim_jobs(&super::helpers::claim(at(3), 10)).await.expect("claim");
    let deliveries: Vec<_> = jobs.iter().filter(|j| j.job.kind == JobKind::DeliverMessage.as_str()).collect();
    assert_eq!(deliveries.len(), 1, "one delivery job: {jobs:?}");

    // Without a key every send is its own; what happens to it is recorded like campaign mail.
    let unkeyed = TransactionalSend { key: None, message: &second, job: None };
    assert_eq!(store.send_transactional(ws, unkeyed, at(4)).await.expect("no key"), SendOutcome::Accepted(second.id));
    let mut bounced = Activity::new(first.id, ActivityKind::Bounced, "test", at(5));
    bounced.bounce = Some(BounceKind::Hard);
    let write = ActivityWrite { workspace: ws, activity: bounced, suppress: None, follow_up: vec![] };
    assert_eq!(store.record_activities(&[write], at(5)).await.expect("bounce"), vec![Recorded::Applied]);
    assert_eq!(store.get_message(ws, first.id).await.expect("bounced").status, MessageStatus::Bounced);
}
