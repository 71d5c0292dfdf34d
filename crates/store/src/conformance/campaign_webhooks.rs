//! Conformance cases for journeys' webhook calls: the step log, saved actions, drafts,
//! campaign webhooks.

use herald_domain::{JobKind, NewJob, PageRequest, SavedAction};
use serde_json::{Value, json};

use super::helpers::{at, claim, crm_call, journey_for, queued_message, ws_name};
use crate::{SharedStore, StoreError};

pub async fn journey_steps_record_the_calls_they_made(store: SharedStore) {
    use crate::campaign::CampaignWork;
    use crate::webhook::{CallRecord, DeliveryProgress, webhook_job};
    use herald_domain::{WebhookAttempt, WebhookDeliveryId, WebhookStatus};
    let (ws, contact, journey) = journey_for(&store, "calls@example.com").await;
    let call = |key: &str, status: u16, progress: WebhookStatus| CallRecord {
        id: WebhookDeliveryId::from_uuid(crate::new_uuid(at(2))),
        delivery: crm_call(journey, contact, key),
        attempt: WebhookAttempt {
            number: 1,
            at: at(2),
            request_line: "POST https://crm.example.com/leads".into(),
            request_headers: json!({"x-herald-signature": "***"}),
            status: Some(status),
            latency_ms: 3,
            response_body: Some(format!("{{\"status\": {status}}}")),
            error: None,
        },
        progress: DeliveryProgress {
            status: progress,
            last_status: Some(status),
            last_error: (status >= 300).then(|| format!("HTTP {status}")),
            response: if status < 300 { json!({"lead_id": 7}) } else { Value::Null },
        },
    };
    // A call that succeeded at once, and one that will be retried by its delivery job.
    let succeeded = call("jrn.crm", 200, WebhookStatus::Succeeded);
    let retried = call("jrn.erp", 503, WebhookStatus::Pending);
    let work = CampaignWork {
        calls: vec![succeeded.clone(), retried.clone()],
        jobs: vec![webhook_job(retried.delivery.call.clone(), at(60))],
        ..CampaignWork::default()
    };
    store.commit_campaign_work(ws, None, &work, at(2)).await.expect("commit");
    let (stored, attempts) = store.get_delivery(ws, succeeded.id).await.expect("succeeded call");
    assert_eq!(
        (stored.status, stored.attempts, stored.last_status, stored.finished_at),
        (WebhookStatus::Succeeded, 1, Some(200), Some(at(2)))
    );
    assert_eq!((stored.journey_id, stored.step.as_deref()), (Some(journey), Some("jrn.crm")));
    assert_eq!(stored.response, json!({"lead_id": 7}));
    assert_eq!(attempts, std::slice::from_ref(&succeeded.attempt));
    let (stored, attempts) = store.get_delivery(ws, retried.id).await.expect("retried call");
    assert_eq!(
        (stored.status, stored.attempts, stored.last_error.as_deref(), stored.finished_at),
        (WebhookStatus::Pending, 1, Some("HTTP 503"), None)
    );
    assert_eq!(attempts.len(), 1);
    // The delivery job finds the call already open, with its first attempt counted.
    let reopened = store.open_delivery(ws, &retried.delivery, at(60)).await.expect("open");
    assert_eq!((reopened.id, reopened.attempts), (retried.id, 1));
    let jobs = store.claim_jobs(&claim(at(60), 10)).await.expect("claim");
    assert!(jobs.iter().any(|j| j.job.kind == JobKind::DeliverWebhook.as_str()), "the retry is queued");

    // A second call under a key already open is refused with the work that made it, and only
    // that work: the rest of its batch applies.
    let twice = CallRecord {
        id: WebhookDeliveryId::from_uuid(crate::new_uuid(at(3))),
        ..call("jrn.crm", 200, WebhookStatus::Succeeded)
    };
    let fresh = CallRecord {
        id: WebhookDeliveryId::from_uuid(crate::new_uuid(at(3))),
        ..call("jrn.billing", 200, WebhookStatus::Succeeded)
    };
    let refused = CampaignWork { calls: vec![twice.clone()], ..CampaignWork::default() };
    let applied = CampaignWork { calls: vec![fresh.clone()], ..CampaignWork::default() };
    let items = [
        crate::campaign::WorkCommit { workspace: ws, lease: None, work: &refused },
        crate::campaign::WorkCommit { workspace: ws, lease: None, work: &applied },
    ];
    let results = store.commit_campaign_batch(&items, at(3)).await.expect("batch");
    assert!(
        matches!(&results[0], Err(StoreError::Conflict { constraint }) if constraint == "webhook_deliveries_idempotency_key"),
        "{results:?}"
    );
    assert!(results[1].is_ok(), "{results:?}");
    assert!(matches!(store.get_delivery(ws, twice.id).await, Err(StoreError::NotFound { .. })));
    assert_eq!(store.get_delivery(ws, fresh.id).await.expect("the other call").0.status, WebhookStatus::Succeeded);
    let (kept, attempts) = store.get_delivery(ws, succeeded.id).await.expect("first call");
    assert_eq!((kept.finished_at, attempts.len()), (Some(at(2)), 1), "the first call is untouched");
}

/// An email or webhook step whose templates failed to render: its message is kept `failed`
/// without a transport and its call `failed` without a call to make, committed with the step's
/// `failed` outcome. The step counts as failed once, and the call is never resent.
pub async fn steps_that_failed_to_render_are_kept_and_never_resent(store: SharedStore) {
    use crate::campaign::{CampaignWork, MessageFilter, StepRecord};
    use crate::webhook::{CallRecord, DeliveryProgress};
    use herald_domain::{MessageStatus, PageRequest, WebhookAttempt, WebhookDeliveryId, WebhookStatus};
    let (ws, contact, journey) = journey_for(&store, "unrendered@example.com").await;
    let campaign = store.journey_context(ws, journey).await.expect("journey").journey.campaign_id;
    let reason = "html: the template needed more than 100000 steps";
    let message = herald_domain::Message {
        status_reason: Some(reason.into()),
        html: String::new(),
        text: String::new(),
        transport: herald_domain::Message::NO_TRANSPORT.into(),
        ..queued_message(ws, contact, journey, campaign, "a@example.com", MessageStatus::Failed)
    };
    let failed = |message_id| StepRecord {
        journey_id: journey,
        campaign_id: campaign,
        step: "s".into(),
        outcome: "failed".into(),
        detail: json!({ "reason": reason }),
        message_id,
        at: at(2),
    };
    let call = |key: &str, call: Value| CallRecord {
        id: WebhookDeliveryId::from_uuid(crate::new_uuid(at(2))),
        delivery: crate::webhook::NewDelivery { call, ..crm_call(journey, contact, key) },
        attempt: WebhookAttempt {
            number: 1,
            at: at(2),
            request_line: "POST https://crm.example.com/leads".into(),
            request_headers: json!({}),
            status: None,
            latency_ms: 0,
            response_body: None,
            error: Some(reason.into()),
        },
        progress: DeliveryProgress {
            status: WebhookStatus::Failed,
            last_status: None,
            last_error: Some(reason.into()),
            response: Value::Null,
        },
    };
    let unrendered = call("s.unrendered", Value::Null);
    let refused = call("s.refused", json!({"endpoint": "https://crm.example.com:443"}));
    let work = CampaignWork {
        steps: vec![failed(Some(message.id)), failed(None)],
        messages: vec![message.clone()],
        calls: vec![unrendered.clone(), refused.clone()],
        ..CampaignWork::default()
    };
    store.commit_campaign_work(ws, None, &work, at(2)).await.expect("commit");

    assert_eq!(store.get_message(ws, message.id).await.expect("message"), message);
    let filter = MessageFilter { status: Some(MessageStatus::Failed), ..MessageFilter::default() };
    let listed = store.list_messages(ws, &filter, PageRequest { after: None, limit: 10 }).await.expect("list");
    assert_eq!(listed.items, vec![message]);
    let stats = store.campaign_stats(ws, campaign).await.expect("stats");
    assert_eq!(stats.steps["s"]["failed"], 2, "each step counted once, the message not again: {stats:?}");

    // Resending failed calls, by status or by id, leaves the one without a call as it is.
    let resent =
        store.resend_deliveries(ws, &[], Some(WebhookStatus::Failed), at(0), at(10), 10, at(3)).await.expect("resend");
    assert_eq!(resent, vec![refused.id]);
    assert!(
        store.resend_deliveries(ws, &[unrendered.id], None, at(0), at(0), 10, at(3)).await.expect("by id").is_empty()
    );
    let (kept, attempts) = store.get_delivery(ws, unrendered.id).await.expect("unrendered call");
    assert_eq!(
        (kept.status, kept.finished_at, kept.last_error.as_deref()),
        (WebhookStatus::Failed, Some(at(2)), Some(reason))
    );
    assert_eq!(attempts, vec![unrendered.attempt]);
    let jobs = store.claim_jobs(&claim(at(3), 10)).await.expect("claim");
    let deliveries = jobs.iter().filter(|j| j.job.kind == JobKind::DeliverWebhook.as_str()).count();
    assert_eq!(deliveries, 1, "one delivery job, for the refused call: {jobs:?}");
}

pub async fn saved_actions_are_named_updated_and_soft_deleted(store: SharedStore) {
    let ws = store.ensure_default_workspace(at(0)).await.expect("ws").id;
    let other = store.create_workspace(&ws_name("other"), at(0)).await.expect("other ws").id;
    let definition = json!({"method": "POST", "url": "https://crm.example.com/leads", "basic_auth": {"username": "u", "password": "p\u{0}w"}});
    let created = store.create_action(ws, "Create lead", &definition, at(1)).await.expect("create");
    assert_eq!((created.name.as_str(), created.created_at, created.deleted_at), ("Create lead", at(1), None));
    let conflict = store.create_action(ws, "Create lead", &json!({}), at(2)).await.expect_err("same name");
    assert!(
        matches!(conflict, StoreError::Conflict { ref constraint } if constraint == "actions_name"),
        "{conflict:?}"
    );
    store.create_action(other, "Create lead", &json!({}), at(2)).await.expect("the name is per workspace");
    let second = store.create_action(ws, "Alert", &json!({"url": "https://a.example"}), at(3)).await.expect("second");
    let names = |list: Vec<SavedAction>| list.into_iter().map(|a| a.name).collect::<Vec<_>>();
    assert_eq!(names(store.list_actions(ws).await.expect("list")), ["Alert", "Create lead"]);

    let changed = json!({"method": "PUT", "url": "https://crm.example.com/leads/{{ customer.id }}"});
    let updated = store.update_action(ws, created.id, "Upsert lead", &changed, at(4)).await.expect("update");
    assert_eq!((updated.definition.clone(), updated.updated_at, updated.created_at), (changed, at(4), at(1)));
    let missing = store.update_action(other, created.id, "x", &json!({}), at(4)).await.expect_err("other workspace");
    assert!(matches!(missing, StoreError::NotFound { .. }));

    store.delete_action(ws, second.id, at(5)).await.expect("delete");
    assert!(matches!(store.delete_action(ws, second.id, at(6)).await, Err(StoreError::NotFound { .. })));
    assert!(matches!(
        store.update_action(ws, second.id, "x", &json!({}), at(6)).await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(names(store.list_actions(ws).await.expect("list")), ["Upsert lead"]);
    store.create_action(ws, "Alert", &json!({}), at(7)).await.expect("a deleted action's name is free again");
    // Journeys on older campaign versions still find deleted actions; other workspaces' ids
    // are left out.
    let found = store.actions_by_ids(ws, &[created.id, second.id]).await.expect("by ids");
    let mut found: Vec<_> = found.into_iter().map(|a| (a.id, a.deleted_at)).collect();
    found.sort_by_key(|(id, _)| id.as_uuid());
    assert_eq!(found, [(created.id, None), (second.id, Some(at(5)))]);
    assert!(store.actions_by_ids(other, &[created.id]).await.expect("other").is_empty());
    assert!(store.actions_by_ids(ws, &[]).await.expect("none").is_empty());
}

pub async fn drafts_are_held_listed_and_settled_once(store: SharedStore) {
    use crate::campaign::CampaignWork;
    use crate::webhook::DraftSelection;
    use herald_domain::{DraftId, WebhookDraft};
    let (ws, contact, journey) = journey_for(&store, "drafts@example.com").await;
    let campaign = store.journey_context(ws, journey).await.expect("context").journey.campaign_id;
    let draft = |step: &str, n: u64| WebhookDraft {
        id: DraftId::from_uuid(crate::new_uuid(at(10 + n))),
        workspace_id: ws,
        journey_id: journey,
        campaign_id: campaign,
        contact_id: contact,
        step: step.into(),
        request: json!({"method": "POST", "url": "https://crm.example.com", "headers": {"authorization": "***"}}),
        call: json!({"basic_auth": "u:secret", "n": n}),
        created_at: at(10 + n),
    };
    let drafts = vec![draft("crm", 1), draft("crm", 2), draft("slack", 3)];
    let work = CampaignWork { drafts: drafts.clone(), ..CampaignWork::default() };
    store.commit_campaign_work(ws, None, &work, at(10)).await.expect("hold");

    let all = DraftSelection { campaign: Some(campaign), ..DraftSelection::default() };
    let page = store.list_drafts(ws, &all, PageRequest::first(2)).await.expect("list");
    assert_eq!(page.items, drafts[..2], "oldest first, with the call kept for sending");
    let cursor = page.next_cursor.expect("a second page");
    let after = PageRequest { after: Some(herald_domain::Cursor::decode(cursor.as_str()).expect("cursor")), limit: 2 };
    assert_eq!(store.list_drafts(ws, &all, after).await.expect("page 2").items, drafts[2..]);
    let crm = DraftSelection { step: Some("crm".into()), ..all.clone() };
    assert_eq!(store.list_drafts(ws, &crm, PageRequest::first(10)).await.expect("crm").items.len(), 2);
    let other = store.create_workspace(&ws_name("drafts-other"), at(0)).await.expect("ws").id;
    assert!(store.list_drafts(other, &all, PageRequest::first(10)).await.expect("other").items.is_empty());

    // Settling removes the draft and enqueues its job in one transaction, exactly once.
    let job = |d: &WebhookDraft| NewJob::new(JobKind::Ping, d.call.clone(), at(20));
    let one = DraftSelection { ids: vec![drafts[0].id], ..DraftSelection::default() };
    let settled = store.settle_drafts(ws, &one, 100, &job, at(20)).await.expect("settle one");
    assert_eq!(settled, drafts[..1]);
    assert!(store.settle_drafts(ws, &one, 100, &job, at(21)).await.expect("again").is_empty(), "settled once");
    assert_eq!(store.queue_stats(at(20)).await.expect("stats").due, 1);
    let rest = store.settle_drafts(ws, &all, 1, &job, at(22)).await.expect("limit");
    assert_eq!(rest, drafts[1..2], "at most `limit`, oldest first");
    store.settle_drafts(ws, &all, 100, &job, at(22)).await.expect("the rest");
    assert!(store.list_drafts(ws, &all, PageRequest::first(10)).await.expect("none left").items.is_empty());
    let claimed = store.claim_jobs(&claim(at(30), 10)).await.expect("claim");
    let mut payloads: Vec<_> = claimed.iter().map(|l| l.job.payload["n"].as_u64()).collect();
    payloads.sort();
    assert_eq!(payloads, [Some(1), Some(2), Some(3)]);

    // A draft whose journey has ended is neither shown nor sent, and goes at the next settle.
    let late = draft("crm", 4);
    let work = CampaignWork { drafts: vec![late.clone()], ..CampaignWork::default() };
    store.commit_campaign_work(ws, None, &work, at(40)).await.expect("hold");
    let exit = crate::campaign::JourneyUpdate {
        id: journey,
        expect: None,
        status: herald_domain::JourneyStatus::Exited,
        step: None,
        run_at: None,
        held: false,
        custom_variables: None,
        exit_reason: Some("converted".into()),
        converted: true,
        conversion_step: None,
    };
    let work = CampaignWork { updates: vec![exit], ..CampaignWork::default() };
    store.commit_campaign_work(ws, None, &work, at(41)).await.expect("exit");
    assert!(store.list_drafts(ws, &all, PageRequest::first(10)).await.expect("list").items.is_empty());
    let late_one = DraftSelection { ids: vec![late.id], ..DraftSelection::default() };
    assert!(store.settle_drafts(ws, &late_one, 100, &job, at(42)).await.expect("settle").is_empty(), "not sent");
    assert_eq!(store.queue_stats(at(50)).await.expect("stats").due, 0, "no job for it");
}

pub async fn campaign_webhooks_are_scoped_and_keep_their_secrets(store: SharedStore) {
    use crate::webhook::{DeliveryFilter, NewDelivery};
    use herald_domain::{
        CampaignEventKind, CampaignWebhook, CampaignWebhookId, HookMethod, PayloadEncoding, PayloadMapping,
    };
    let (ws, contact, journey) = journey_for(&store, "cw@example.com").await;
    let campaign = store.journey_context(ws, journey).await.expect("journey").journey.campaign_id;
    let mapping = PayloadMapping::parse(&json!({"email": {"from": "contact.email"}}), "payload").expect("mapping");
    let hook = CampaignWebhook {
        id: CampaignWebhookId::from_uuid(crate::new_uuid(at(2))),
        workspace_id: ws,
        campaign_id: campaign,
        url: "https://crm.example.com/events".into(),
        content_type: PayloadEncoding::Form,
        method: HookMethod::Post,
        basic_auth: Some(("user".into(), "pass".into())),
        secret: Some("a-secret-of-enough-length".into()),
        log_response_body: true,
        active: true,
        events: vec![CampaignEventKind::ContactEntered, CampaignEventKind::EmailSent],
        payload: Some(mapping),
        created_at: at(2),
        updated_at: at(2),
    };
    let created = store.create_campaign_webhook(&hook).await.expect("create");
    assert_eq!(created, hook, "every field round-trips, secrets included");
    let second = CampaignWebhook {
        id: CampaignWebhookId::from_uuid(crate::new_uuid(at(3))),
        method: HookMethod::Get,
        content_type: PayloadEncoding::Json,
        basic_auth: None,
        secret: None,
        payload: None,
        events: vec![CampaignEventKind::ContactUnsubscribed],
        ..hook.clone()
    };
    store.create_campaign_webhook(&second).await.expect("second");
    let ids = |hooks: Vec<CampaignWebhook>| hooks.into_iter().map(|h| h.id).collect::<Vec<_>>();
    assert_eq!(ids(store.list_campaign_webhooks(ws, Some(campaign)).await.expect("list")), [hook.id, second.id]);
    assert_eq!(ids(store.list_campaign_webhooks(ws, None).await.expect("all")), [hook.id, second.id]);

    // Another workspace sees nothing and cannot attach a webhook to this campaign.
    let other = store.create_workspace(&ws_name("other"), at(0)).await.expect("other");
    assert!(store.list_campaign_webhooks(other.id, None).await.expect("other list").is_empty());
    assert!(matches!(store.get_campaign_webhook(other.id, campaign, hook.id).await, Err(StoreError::NotFound { .. })));
    let foreign = CampaignWebhook {
        id: CampaignWebhookId::from_uuid(crate::new_uuid(at(4))),
        workspace_id: other.id,
        ..hook.clone()
    };
    assert!(matches!(store.create_campaign_webhook(&foreign).await, Err(StoreError::NotFound { .. })));
    assert!(matches!(store.update_campaign_webhook(&foreign).await, Err(StoreError::NotFound { .. })));

    let changed =
        CampaignWebhook { active: false, secret: None, events: vec![], updated_at: at(5), created_at: at(99), ..hook };
    let updated = store.update_campaign_webhook(&changed).await.expect("update");
    assert_eq!((updated.active, updated.secret.as_deref(), updated.events.len()), (false, None, 0));
    assert_eq!((updated.created_at, updated.updated_at), (at(2), at(5)), "created_at stays");

    // Calls are tagged with the webhook and filtered by it, and outlive it.
    let delivery = NewDelivery {
        journey_id: Some(journey),
        campaign_id: Some(campaign),
        contact_id: Some(contact),
        step: None,
        campaign_webhook_id: Some(changed.id),
        idempotency_key: "cwh.contact_entered".into(),
        endpoint: "https://crm.example.com:443".into(),
        request: json!({"method": "POST"}),
        call: json!({}),
    };
    let opened = store.open_delivery(ws, &delivery, at(6)).await.expect("open");
    assert_eq!(opened.campaign_webhook_id, Some(changed.id));
    store.delete_campaign_webhook(ws, campaign, changed.id).await.expect("delete");
    assert!(matches!(store.delete_campaign_webhook(ws, campaign, changed.id).await, Err(StoreError::NotFound { .. })));
    let by_hook = |id| DeliveryFilter { campaign_webhook: Some(id), ..DeliveryFilter::default() };
    let listed = store.list_deliveries(ws, &by_hook(changed.id), PageRequest::first(10)).await.expect("list");
    assert_eq!(listed.items.iter().map(|d| d.id).collect::<Vec<_>>(), [opened.id]);
    let none = store.list_deliveries(ws, &by_hook(second.id), PageRequest::first(10)).await.expect("list");
    assert!(none.items.is_empty());

    // Deleting the campaign deletes its webhooks.
    store.delete_campaign(ws, campaign).await.expect("delete campaign");
    assert!(store.list_campaign_webhooks(ws, None).await.expect("list").is_empty());
}
