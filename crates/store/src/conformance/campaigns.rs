//! Conformance cases for campaigns and journeys: versions and states, the guarded work
//! commit, archiving.

use herald_domain::{JobKind, NewJob, PageRequest, WorkspaceName};
use serde_json::{Value, json};

use super::helpers::{at, claim, email, journey_for, with_source, ws_name};
use crate::{NewContact, SharedStore, StoreError};

pub async fn campaigns_keep_versions_and_move_through_states(store: SharedStore) {
    use herald_domain::CampaignState::{Active, Archived, Draft, Paused};
    let (ws, _) = with_source(&store).await;
    let other = store.create_workspace(&WorkspaceName::parse("other").expect("name"), at(0)).await.expect("ws");
    let created = store.create_campaign(ws, "Onboarding", &json!({"v": 1}), at(1)).await.expect("create");
    assert_eq!((created.state, created.version, &created.document), (Draft, 1, &json!({"v": 1})));
    let updated = store.update_campaign(ws, created.id, "Onboarding 2", &json!({"v": 2}), at(2)).await.expect("update");
    assert_eq!((updated.version, updated.name.as_str(), &updated.document), (2, "Onboarding 2", &json!({"v": 2})));
    assert_eq!(store.campaign_version(ws, created.id, 1).await.expect("v1"), json!({"v": 1}));
    assert!(matches!(store.get_campaign(other.id, created.id).await, Err(StoreError::NotFound { .. })));
    assert!(store.live_campaigns(ws).await.expect("live").is_empty());

    let active = store.set_campaign_state(ws, created.id, &[Draft], Active, at(3)).await.expect("activate");
    assert_eq!(active.state, Active);
    let err = store.set_campaign_state(ws, created.id, &[Draft], Active, at(4)).await.expect_err("not a draft");
    assert!(matches!(err, StoreError::Conflict { ref constraint } if constraint == "campaign_state"), "{err:?}");
    store.set_campaign_state(ws, created.id, &[Active], Paused, at(4)).await.expect("pause");
    assert_eq!(store.live_campaigns(ws).await.expect("live").len(), 1);
    store.set_campaign_state(ws, created.id, &[Paused], Archived, at(5)).await.expect("archive");
    let err = store.update_campaign(ws, created.id, "x", &json!({}), at(6)).await.expect_err("archived");
    assert!(matches!(err, StoreError::Conflict { ref constraint } if constraint == "campaign_archived"), "{err:?}");
    let page = store.list_campaigns(ws, PageRequest::first(10)).await.expect("list");
    assert_eq!(page.items.iter().map(|c| c.id).collect::<Vec<_>>(), [created.id]);
    store.delete_campaign(ws, created.id).await.expect("delete");
    assert!(matches!(store.get_campaign(ws, created.id).await, Err(StoreError::NotFound { .. })));
}

pub async fn campaign_work_commits_whole_and_guarded(store: SharedStore) {
    use crate::campaign::{AttributeChange, CampaignWork, JourneyUpdate, MessageFilter, NewJourney, StepRecord};
    use herald_domain::{CampaignState, JourneyId, JourneyStatus, Message, MessageId, MessageStatus};
    let (ws, _) = with_source(&store).await;
    let contact = store
        .create_contact(
            ws,
            NewContact {
                identity: herald_domain::Identity { email: Some(email("j@example.com")), ..Default::default() },
                attributes: json!({"keep": 1, "drop": 2}).as_object().cloned().expect("object"),
                ..NewContact::default()
            },
            at(1),
        )
        .await
        .expect("contact");
    let campaign = store.create_campaign(ws, "C", &json!({}), at(1)).await.expect("campaign");
    let journey = |id: JourneyId| NewJourney {
        id,
        campaign_id: campaign.id,
        version: 1,
        contact_id: contact.id,
        event_id: None,
        exclusive: true,
        custom_variables: serde_json::Map::new(),
        goal_until: None,
        step: 0,
        run_at: at(2),
    };
    let first = JourneyId::from_uuid(crate::new_uuid(at(2)));
    let work = CampaignWork {
        journeys: vec![journey(first)],
        jobs: vec![NewJob::new(JobKind::JourneyStep, json!({}), at(2))],
        ..CampaignWork::default()
    };
    store.commit_campaign_work(ws, None, &work, at(2)).await.expect("enrol");

    // A second exclusive journey for the same contact fails, and nothing of its work stays.
    let message = Message {
        id: MessageId::from_uuid(crate::new_uuid(at(3))),
        workspace_id: ws,
        campaign_id: Some(campaign.id),
        journey_id: Some(first),
        step: "s".into(),
        contact_id: contact.id,
        status: MessageStatus::Sent,
        status_reason: None,
        to: "j@example.com".into(),
        from: "a@acme.test".into(),
        reply_to: None,
        subject: "Hi \u{e9}".into(),
        html: "<p>x</p>".into(),
        text: "x".into(),
        headers: serde_json::Map::new(),
        warnings: vec!["w".into()],
        transport: "outbox".into(),
        internet_message_id: "m1@acme.test".into(),
        attempts: 0,
        reply: None,
        bounce: None,
        tracking: herald_domain::Tracking::default(),
        topic: None,
        created_at: at(3),
        sent_at: Some(at(3)),
    };
    let second = CampaignWork {
        journeys: vec![journey(JourneyId::from_uuid(crate::new_uuid(at(3))))],
        messages: vec![message.clone()],
        ..CampaignWork::default()
    };
    let err = store.commit_campaign_work(ws, None, &second, at(3)).await.expect_err("exclusive");
    assert!(
        matches!(err, StoreError::Conflict { ref constraint } if constraint == "journeys_campaign_id_contact_id"),
        "{err:?}"
    );
    assert!(
        store
            .list_messages(ws, &MessageFilter::default(), PageRequest::first(10))
            .await
            .expect("list")
            .items
            .is_empty()
    );

    // An update that expects another place fails; the right one applies with its effects.
    let update = |expect_step, status| JourneyUpdate {
        id: first,
        expect: Some((Some(expect_step), Some(at(2)))),
        status,
        step: None,
        run_at: None,
        held: false,
        custom_variables: Some(json!({"stage": "done"}).as_object().cloned().expect("object")),
        exit_reason: None,
        converted: false,
        conversion_step: None,
    };
    let moved = CampaignWork { updates: vec![update(7, JourneyStatus::Completed)], ..CampaignWork::default() };
    let err = store.commit_campaign_work(ws, None, &moved, at(3)).await.expect_err("moved");
    assert!(matches!(err, StoreError::Conflict { ref constraint } if constraint == "journey_moved"), "{err:?}");
    let done = CampaignWork {
        updates: vec![update(0, JourneyStatus::Completed)],
        messages: vec![message.clone()],
        steps: vec![StepRecord {
            journey_id: first,
            campaign_id: campaign.id,
            step: "s".into(),
            outcome: "sent".into(),
            detail: json!({}),
            message_id: Some(message.id),
            at: at(3),
        }],
        attributes: vec![
            AttributeChange { contact_id: contact.id, attribute: "added".into(), value: Some(json!({"n": [1]})) },
            AttributeChange { contact_id: contact.id, attribute: "drop".into(), value: None },
        ],
        ..CampaignWork::default()
    };
    store.commit_campaign_work(ws, None, &done, at(3)).await.expect("complete");
    let finished = store.journey_context(ws, first).await.expect("journey").journey;
    assert_eq!((finished.status, finished.ended_at, finished.step), (JourneyStatus::Completed, Some(at(3)), None));
    assert_eq!(finished.custom_variables["stage"], "done");
    assert_eq!(store.get_message(ws, message.id).await.expect("message"), message);
    let filter =
        MessageFilter { contact: Some(contact.id), status: Some(MessageStatus::Sent), ..MessageFilter::default() };
    assert_eq!(store.list_messages(ws, &filter, PageRequest::first(10)).await.expect("list").items.len(), 1);
    let attributes = store.get_contact(ws, contact.id).await.expect("contact").attributes;
    assert_eq!(Value::Object(attributes), json!({"keep": 1, "added": {"n": [1]}}));
    let stats = store.campaign_stats(ws, campaign.id).await.expect("stats");
    assert_eq!((stats.entered, stats.completed, stats.active), (1, 1, 0));
    assert_eq!(stats.steps["s"]["sent"], 1);
    assert_eq!(store.contact_journeys(ws, contact.id, Some(campaign.id), 10).await.expect("journeys").len(), 1);
    let other = store.create_campaign(ws, "other", &json!({}), at(1)).await.expect("campaign");
    assert!(store.contact_journeys(ws, contact.id, Some(other.id), 10).await.expect("none").is_empty());
    let elsewhere = JourneyId::from_uuid(crate::new_uuid(at(4)));
    let enrol = CampaignWork {
        journeys: vec![crate::campaign::NewJourney::at_start(elsewhere, other.id, contact.id, at(4))],
        ..CampaignWork::default()
    };
    store.commit_campaign_work(ws, None, &enrol, at(4)).await.expect("enrol elsewhere");
    let all = store.contact_journeys(ws, contact.id, None, 10).await.expect("all campaigns");
    assert_eq!(all.iter().map(|j| j.id).collect::<Vec<_>>(), [elsewhere, first], "every campaign, newest first");

    // Held journeys get their step job back when the campaign becomes active again.
    let held = JourneyId::from_uuid(crate::new_uuid(at(4)));
    let hold = CampaignWork { journeys: vec![journey(held)], ..CampaignWork::default() };
    store.commit_campaign_work(ws, None, &hold, at(4)).await.expect("enrol again");
    let mark = JourneyUpdate {
        id: held,
        expect: None,
        status: JourneyStatus::Active,
        step: Some(0),
        run_at: Some(at(2)),
        held: true,
        custom_variables: None,
        exit_reason: None,
        converted: false,
        conversion_step: None,
    };
    store
        .commit_campaign_work(ws, None, &CampaignWork { updates: vec![mark], ..CampaignWork::default() }, at(4))
        .await
        .expect("hold");
    store
        .set_campaign_state(ws, campaign.id, &[CampaignState::Draft], CampaignState::Paused, at(5))
        .await
        .expect("paused");
    let before = store.queue_stats(at(5)).await.expect("stats").due;
    store
        .set_campaign_state(ws, campaign.id, &[CampaignState::Paused], CampaignState::Active, at(5))
        .await
        .expect("resume");
    assert_eq!(store.queue_stats(at(5)).await.expect("stats").due, before + 1);
    assert!(!store.journey_context(ws, held).await.expect("journey").journey.held);

    // Journeys read together: unknown ids and other workspaces' journeys are left out.
    let unknown = JourneyId::from_uuid(crate::new_uuid(at(6)));
    let mut read: Vec<JourneyId> = store
        .journey_contexts(ws, &[held, unknown, first, elsewhere])
        .await
        .expect("contexts")
        .into_iter()
        .map(|c| c.journey.id)
        .collect();
    read.sort();
    let mut expected = vec![first, held, elsewhere];
    expected.sort();
    assert_eq!(read, expected);
    let stranger = store.create_workspace(&ws_name("stranger"), at(6)).await.expect("workspace").id;
    assert!(store.journey_contexts(stranger, &[first, held]).await.expect("none").is_empty());
    assert!(matches!(store.journey_context(stranger, held).await, Err(StoreError::NotFound { .. })));

    // Updates committed together: one whose journey moved is refused alone, as is a second
    // update of a journey in the same batch; the others apply.
    let place = |id, expect_step, step| JourneyUpdate {
        id,
        expect: Some((Some(expect_step), Some(at(2)))),
        status: JourneyStatus::Active,
        step: Some(step),
        run_at: Some(at(9)),
        held: false,
        custom_variables: None,
        exit_reason: None,
        converted: false,
        conversion_step: None,
    };
    let works = [
        CampaignWork { updates: vec![place(held, 0, 1)], ..CampaignWork::default() },
        CampaignWork { updates: vec![place(elsewhere, 5, 1)], ..CampaignWork::default() },
        CampaignWork { updates: vec![place(held, 0, 2)], ..CampaignWork::default() },
    ];
    let items: Vec<_> =
        works.iter().map(|work| crate::campaign::WorkCommit { workspace: ws, lease: None, work }).collect();
    let results = store.commit_campaign_batch(&items, at(7)).await.expect("batch");
    assert!(results[0].is_ok(), "{:?}", results[0]);
    for refused in &results[1..] {
        assert!(
            matches!(refused, Err(StoreError::Conflict { constraint }) if constraint == "journey_moved"),
            "{refused:?}"
        );
    }
    let moved = store.journey_context(ws, held).await.expect("journey").journey;
    assert_eq!((moved.step, moved.run_at), (Some(1), Some(at(9))));
    let kept = store.journey_context(ws, elsewhere).await.expect("journey").journey;
    assert_eq!((kept.step, kept.run_at), (Some(0), Some(at(4))));
}

pub async fn archiving_exits_journeys_and_queues_their_calls(store: SharedStore) {
    use herald_domain::CampaignState::{Archived, Draft};
    let (ws, contact, journey) = journey_for(&store, "archived@example.com").await;
    let campaign = store.journey_context(ws, journey).await.expect("context").journey.campaign_id;
    assert!(store.archived_journeys(ws, campaign, None, 10).await.expect("none yet").is_empty());
    store.set_campaign_state(ws, campaign, &[Draft], Archived, at(5)).await.expect("archive");
    let exited = store.journey_context(ws, journey).await.expect("context").journey;
    assert_eq!(exited.status, herald_domain::JourneyStatus::Exited);
    assert_eq!(store.archived_journeys(ws, campaign, None, 10).await.expect("listed"), [(journey, contact)]);
    assert!(store.archived_journeys(ws, campaign, Some(journey), 10).await.expect("after").is_empty(), "paged by id");
    let claimed = store.claim_jobs(&claim(at(5), 100)).await.expect("claim");
    let archive = claimed.iter().filter(|l| l.job.kind == "archive_exits").collect::<Vec<_>>();
    assert_eq!(archive.len(), 1, "one archive_exits job, committed with the exits");
    assert_eq!(archive[0].job.payload, json!({"campaign": campaign}));
}
