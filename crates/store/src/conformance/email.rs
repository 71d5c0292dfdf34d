//! Conformance cases for email: sending domains, deliveries under a lease, bounces,
//! suppressions and transports.

use herald_domain::job::{JobOutcome, JobState};
use herald_domain::{JobKind, NewJob, PageRequest};
use serde_json::json;

use super::helpers::{at, claim, journey_for, queued_message, ws_name};
use crate::{SharedStore, StoreError};

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
        activity: None,
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
        activity: None,
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
        message_id: Some(hard.id),
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
        activity: Some(herald_domain::Activity {
            bounce: Some(BounceKind::Hard),
            reason: Some("550 5.1.1 No such user".into()),
            ..herald_domain::Activity::new(hard.id, herald_domain::ActivityKind::Bounced, "smtp", at(5))
        }),
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
    // The bounce is also an event of the contact.
    let filter = crate::EventFilter { name: Some("email_bounced".into()), ..crate::EventFilter::default() };
    let events = store.list_events(ws, &filter, PageRequest::first(5)).await.expect("events").items;
    assert_eq!(events.len(), 1);
    assert_eq!((events[0].contact_id, &events[0].properties["bounce"]), (Some(contact), &json!("hard")));

    let gave_up = Delivery {
        status: MessageStatus::Failed,
        reason: Some("gave up after 30 attempts: transient: 451 4.3.0 Try again later".into()),
        reply: Some("451 4.3.0 Try again later".into()),
        attempts: 30,
        sent_at: None,
        bounce: Some(BounceKind::Soft),
        // An address already suppressed keeps its first record.
        suppress: Some(Suppression { reason: "soft_bounce".into(), created_at: at(6), ..suppression.clone() }),
        activity: None,
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
        message_id: None,
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
        let listed = store.list_suppressions(ws, None, page.clone()).await.expect("list");
        seen.extend(listed.items.into_iter().map(|s| s.email));
        match listed.next_cursor {
            Some(c) => page.after = Some(herald_domain::Cursor::decode(c.as_str()).expect("cursor")),
            None => break,
        }
    }
    assert_eq!(seen, ["a@example.com", "b@example.com", "c@example.com", "s@example.com"]);
    // A search matches part of the address in any case; LIKE's wildcards are plain characters.
    store.add_suppression(ws, &suppression("d_1@example.org", "manual", 5), &[]).await.expect("add");
    let search = |text: &'static str| {
        let store = store.clone();
        async move {
            let listed = store.list_suppressions(ws, Some(text), PageRequest::first(10)).await.expect("search");
            listed.items.into_iter().map(|s| s.email).collect::<Vec<_>>()
        }
    };
    assert_eq!(search("B@EXAMPLE").await, ["b@example.com"]);
    assert_eq!(search("example.").await.len(), 5);
    assert_eq!(search("_").await, ["d_1@example.org"]);
    assert_eq!(search("%").await, Vec::<String>::new());
    assert_eq!(search("d%1").await, Vec::<String>::new());
    let after = PageRequest { after: Some("a@example.com".to_owned()), limit: 1 };
    let listed = store.list_suppressions(ws, Some("example.com"), after).await.expect("page");
    assert_eq!(listed.items.iter().map(|s| s.email.as_str()).collect::<Vec<_>>(), ["b@example.com"]);
    assert!(listed.next_cursor.is_some(), "c@ and s@ follow");
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
        message_id: None,
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
        activity: None,
    };
    store
        .record_delivery(ws, &delivering.lease, message.id, &sent, &JobOutcome::Done, &[follow(3)], at(3))
        .await
        .expect("sent");
    let jobs = store.claim_jobs(&claim(at(3), 10)).await.expect("claim");
    assert_eq!(jobs.iter().map(|j| j.job.payload["n"].as_u64()).collect::<Vec<_>>(), [Some(3)]);
}

/// Reported activities: each is recorded once per key, moves the message's status only
/// forward, puts what it names on the suppression list, becomes an `email_*` event of the
/// contact and enqueues its follow-up jobs, all in one transaction; a message that is not
/// there (or in another workspace) changes nothing. The message is found by its `Message-ID`.
pub async fn activities_are_recorded_once_and_become_contact_events(store: SharedStore) {
    use crate::EventFilter;
    use crate::campaign::CampaignWork;
    use crate::email::{ActivityWrite, Recorded};
    use herald_domain::{Activity, ActivityKind, BounceKind, MessageStatus, Suppression};
    let (ws, contact, journey) = journey_for(&store, "act@example.com").await;
    let campaign = store.journey_context(ws, journey).await.expect("journey").journey.campaign_id;
    let message = queued_message(ws, contact, journey, campaign, "a@acme.test", MessageStatus::Sent);
    let work = CampaignWork { messages: vec![message.clone()], ..CampaignWork::default() };
    store.commit_campaign_work(ws, None, &work, at(2)).await.expect("message");

    let write = |kind, t| ActivityWrite {
        workspace: ws,
        activity: Activity::new(message.id, kind, "test", at(t)),
        suppress: None,
        follow_up: vec![],
    };
    let mut delivered = write(ActivityKind::Delivered, 3);
    delivered.activity.key = Some("provider-event-1".into());
    delivered.follow_up = vec![NewJob::new(JobKind::Ping, json!({"delivered": 1}), at(3))];
    let mut opened = write(ActivityKind::Opened, 4);
    opened.activity.machine = true;
    let mut clicked = write(ActivityKind::Clicked, 5);
    clicked.activity.url = Some("https://acme.test/pricing".into());
    let results = store.record_activities(&[delivered.clone(), opened, clicked], at(5)).await.expect("record");
    assert_eq!(results, vec![Recorded::Applied; 3]);
    assert_eq!(store.get_message(ws, message.id).await.expect("message").status, MessageStatus::Delivered);
    // The same report again (a replayed notification) changes nothing and enqueues nothing.
    let again = store.record_activities(&[delivered], at(6)).await.expect("again");
    assert_eq!(again, vec![Recorded::Duplicate]);
    let jobs = store.claim_jobs(&claim(at(6), 10)).await.expect("claim");
    assert_eq!(jobs.iter().filter(|j| j.job.kind == JobKind::Ping.as_str()).count(), 1, "the follow-up once");

    let suppression = Suppression {
        email: "to@example.com".into(),
        contact_id: Some(contact),
        reason: "complaint".into(),
        detail: Some("abuse".into()),
        message_id: Some(message.id),
        created_at: at(7),
    };
    let mut complained = write(ActivityKind::Complained, 7);
    complained.activity.reason = Some("abuse".into());
    complained.suppress = Some(suppression.clone());
    let mut bounced = write(ActivityKind::Bounced, 8);
    bounced.activity.bounce = Some(BounceKind::Soft);
    let other = store.create_workspace(&ws_name("activities-elsewhere"), at(0)).await.expect("other");
    let elsewhere = ActivityWrite { workspace: other.id, ..write(ActivityKind::Opened, 8) };
    let results = store.record_activities(&[complained, bounced, elsewhere], at(8)).await.expect("record");
    assert_eq!(results, vec![Recorded::Applied, Recorded::Applied, Recorded::UnknownMessage]);
    let stored = store.get_message(ws, message.id).await.expect("message");
    assert_eq!((stored.status, stored.bounce), (MessageStatus::Complained, None), "a soft bounce after a complaint");
    assert_eq!(store.suppression(ws, "to@example.com").await.expect("read"), Some(suppression));

    let filter = EventFilter { contact: Some(contact), ..EventFilter::default() };
    let events = store.list_events(ws, &filter, PageRequest::first(20)).await.expect("events").items;
    let mut names: Vec<_> = events.iter().filter_map(|e| e.name.clone()).collect();
    names.sort();
    assert_eq!(
        names,
        ["email_bounced", "email_clicked", "email_complained", "email_delivered", "email_opened", "email_sent"]
            .map(String::from),
        "a message written as sent (the outbox) is sent from the start"
    );
    let click = events.iter().find(|e| e.name.as_deref() == Some("email_clicked")).expect("click");
    assert_eq!(click.properties["url"], json!("https://acme.test/pricing"));
    assert_eq!(click.properties["message_id"], json!(message.id));
    assert_eq!(click.properties["campaign_id"], json!(campaign));
    assert_eq!((click.occurred_at, click.source_id), (at(5), None));
    let open = events.iter().find(|e| e.name.as_deref() == Some("email_opened")).expect("open");
    assert_eq!(open.properties["machine"], json!(true));
    let other_events =
        store.list_events(other.id, &EventFilter::default(), PageRequest::first(20)).await.expect("other");
    assert!(other_events.items.is_empty());

    // What branch conditions see of the journey's emails.
    let emails = store.journey_emails(ws, journey).await.expect("emails");
    assert_eq!(emails.len(), 1);
    let summary = &emails[0];
    assert_eq!(
        (summary.message_id, summary.step.as_str(), summary.status),
        (message.id, "s", MessageStatus::Complained)
    );
    assert_eq!((summary.opens, summary.machine_opens, summary.clicks), (0, 1, 1));
    assert_eq!(summary.clicked_urls, vec!["https://acme.test/pricing".to_owned()]);
    assert!(store.journey_emails(other.id, journey).await.expect("elsewhere").is_empty());

    // The numbers: unique per message, totals per activity, machine opens apart; by day too.
    use crate::email::{ActivityScope, EmailCounts, Grouping};
    let scope = ActivityScope { campaign: Some(campaign), step: Some("s".into()), broadcast: None, message: None };
    let rows = store.activity_counts(ws, &scope, None, Grouping::Total).await.expect("counts");
    let expected = EmailCounts {
        sent: 1,
        delivered: 1,
        bounced_soft: 1,
        machine_opened: 1,
        machine_opens: 1,
        clicked: 1,
        clicks: 1,
        complained: 1,
        ..EmailCounts::default()
    };
    assert_eq!(EmailCounts::of(&rows), expected);
    let daily = store.activity_counts(ws, &ActivityScope::default(), None, Grouping::Day).await.expect("daily");
    let day = at(3).unix_millis() / 86_400_000;
    assert_eq!(EmailCounts::by_day(&daily), vec![(day, expected)], "all on one day");
    let later =
        store.activity_counts(ws, &ActivityScope::default(), Some(at(6)), Grouping::Total).await.expect("since");
    assert_eq!(EmailCounts::of(&later), EmailCounts { complained: 1, bounced_soft: 1, ..EmailCounts::default() });
    let one = ActivityScope { message: Some(message.id), ..ActivityScope::default() };
    assert_eq!(EmailCounts::of(&store.activity_counts(ws, &one, None, Grouping::Total).await.expect("one")), expected);
    let elsewhere =
        store.activity_counts(other.id, &ActivityScope::default(), None, Grouping::Total).await.expect("other");
    assert!(elsewhere.is_empty());
    let by_step = store.activity_counts(ws, &ActivityScope::default(), None, Grouping::Step).await.expect("steps");
    assert!(by_step.iter().all(|row| row.step.as_deref() == Some("s") && row.day.is_none()), "{by_step:?}");
    assert_eq!(store.conversions(ws, &scope).await.expect("conversions"), 0);
    let listed = store.message_activities(ws, message.id, 10).await.expect("activities");
    let kinds: Vec<_> = listed.iter().map(|r| r.activity.kind).collect();
    assert_eq!(
        kinds,
        [
            ActivityKind::Sent,
            ActivityKind::Delivered,
            ActivityKind::Opened,
            ActivityKind::Clicked,
            ActivityKind::Complained,
            ActivityKind::Bounced
        ]
    );
    assert_eq!(listed[3].activity.url.as_deref(), Some("https://acme.test/pricing"));
    assert_eq!(listed[1].activity.key.as_deref(), Some("provider-event-1"));
    assert!(store.message_activities(other.id, message.id, 10).await.expect("elsewhere").is_empty());

    let found = store.message_by_internet_id(&message.internet_message_id).await.expect("lookup");
    assert_eq!(found, Some((ws, message.id)));
    assert_eq!(store.message_by_internet_id("nobody@nowhere.test").await.expect("lookup"), None);
}
