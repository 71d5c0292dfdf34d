//! Conformance cases for outbound webhook deliveries and their endpoints.

use herald_domain::job::JobOutcome;
use herald_domain::{JobKind, NewJob, PageRequest};
use serde_json::{Value, json};

use super::helpers::{at, claim, crm_call, journey_for, ws_name};
use crate::{EventFilter, SharedStore, StoreError};

pub async fn webhook_deliveries_are_idempotent_and_fenced(store: SharedStore) {
    use crate::webhook::{DeliveryFilter, DeliveryProgress, NewDelivery, webhook_job};
    use herald_domain::{WebhookAttempt, WebhookStatus};
    let (ws, contact, journey) = journey_for(&store, "w@example.com").await;
    let new = NewDelivery {
        journey_id: Some(journey),
        campaign_id: None,
        contact_id: Some(contact),
        step: Some("crm".into()),
        campaign_webhook_id: None,
        idempotency_key: "jrn.crm".into(),
        endpoint: "https://crm.example.com:443".into(),
        request: json!({"method": "POST", "url": "https://crm.example.com/leads", "body": "{}"}),
        call: json!({"endpoint": "https://crm.example.com:443", "basic_auth": "u:p"}),
    };
    let first = store.open_delivery(ws, &new, at(2)).await.expect("open");
    assert_eq!((first.status, first.attempts), (WebhookStatus::Pending, 0));
    let again = store.open_delivery(ws, &new, at(3)).await.expect("open again");
    assert_eq!(again.id, first.id, "the same idempotency key is the same call");

    store.enqueue_jobs(ws, &[webhook_job(json!({"delivery": first.id}), at(2))], at(2)).await.expect("job");
    let stale = store.claim_jobs(&claim(at(2), 1)).await.expect("claim").pop().expect("job");
    let current = store.claim_jobs(&claim(at(40), 1)).await.expect("claim").pop().expect("job again");
    let attempt = |number, status: Option<u16>| WebhookAttempt {
        number,
        at: at(40),
        request_line: "POST https://crm.example.com/leads".into(),
        request_headers: json!({"authorization": "***"}),
        status,
        latency_ms: 12,
        response_body: None,
        error: status.is_none().then(|| "timed out after 4 s".into()),
    };
    let retry = DeliveryProgress {
        status: WebhookStatus::Pending,
        last_status: Some(500),
        last_error: Some("500".into()),
        response: Value::Null,
    };
    let again_later = JobOutcome::Retry { at: at(100), error: "500".into() };
    let err = store
        .record_attempt(ws, &stale.lease, first.id, &attempt(1, Some(500)), &retry, &again_later, &[], at(40))
        .await
        .expect_err("stale lease");
    assert!(matches!(err, StoreError::LeaseLost), "{err:?}");
    store
        .record_attempt(ws, &current.lease, first.id, &attempt(1, Some(500)), &retry, &again_later, &[], at(41))
        .await
        .expect("retry");
    let next = store.claim_jobs(&claim(at(100), 1)).await.expect("claim").pop().expect("retried");
    let done = DeliveryProgress {
        status: WebhookStatus::Succeeded,
        last_status: Some(200),
        last_error: None,
        response: json!({"lead_id": 7}),
    };
    let follow = NewJob::new(JobKind::JourneyStep, json!({"journey": journey}), at(100));
    store
        .record_attempt(ws, &next.lease, first.id, &attempt(2, Some(200)), &done, &JobOutcome::Done, &[follow], at(100))
        .await
        .expect("succeeded");
    let (stored, attempts) = store.get_delivery(ws, first.id).await.expect("get");
    assert_eq!(
        (stored.status, stored.attempts, stored.last_status, stored.finished_at),
        (WebhookStatus::Succeeded, 2, Some(200), Some(at(100)))
    );
    assert_eq!(stored.response, json!({"lead_id": 7}));
    assert_eq!(attempts.iter().map(|a| a.status).collect::<Vec<_>>(), [Some(500), Some(200)]);
    assert_eq!(attempts[0].request_headers, json!({"authorization": "***"}));
    let follow_up = store.claim_jobs(&claim(at(100), 5)).await.expect("claim");
    assert!(follow_up.iter().any(|j| j.job.kind == JobKind::JourneyStep.as_str()), "the journey goes on");
    let by_contact = DeliveryFilter { contact: Some(contact), ..DeliveryFilter::default() };
    assert_eq!(store.list_deliveries(ws, &by_contact, PageRequest::first(10)).await.expect("list").items.len(), 1);
    let failed = DeliveryFilter { status: Some(WebhookStatus::Failed), ..DeliveryFilter::default() };
    assert!(store.list_deliveries(ws, &failed, PageRequest::first(10)).await.expect("list").items.is_empty());
    let other = store.create_workspace(&ws_name("other"), at(0)).await.expect("other");
    assert!(matches!(store.get_delivery(other.id, first.id).await, Err(StoreError::NotFound { .. })));

    // Resending: by id, or every call of a status finished in a time range; each gets its
    // stored call back as a job.
    let none = store
        .resend_deliveries(ws, &[], Some(WebhookStatus::Failed), at(0), at(1000), 10, at(200))
        .await
        .expect("none failed");
    assert!(none.is_empty());
    let by_range = store
        .resend_deliveries(ws, &[], Some(WebhookStatus::Succeeded), at(0), at(1000), 10, at(200))
        .await
        .expect("resend");
    assert_eq!(by_range, [first.id]);
    let (stored, _) = store.get_delivery(ws, first.id).await.expect("get");
    assert_eq!((stored.status, stored.finished_at), (WebhookStatus::Pending, None));
    let jobs = store.claim_jobs(&claim(at(200), 10)).await.expect("claim");
    let resent = jobs.iter().find(|j| j.job.kind == JobKind::DeliverWebhook.as_str()).expect("a delivery job");
    assert_eq!(resent.job.payload["basic_auth"], "u:p", "the stored call, secrets included");
    let pending = store.resend_deliveries(ws, &[first.id], None, at(0), at(0), 10, at(201)).await.expect("pending");
    assert!(pending.is_empty(), "a pending call is not resent twice");
    assert!(
        store
            .resend_deliveries(other.id, &[first.id], None, at(0), at(0), 10, at(201))
            .await
            .expect("other")
            .is_empty()
    );
}

pub async fn webhook_batches_apply_each_item_alone(store: SharedStore) {
    use crate::webhook::{AttemptRecord, DeliveryProgress, webhook_job};
    use herald_domain::{WebhookAttempt, WebhookStatus};
    let (ws, contact, journey) = journey_for(&store, "b@example.com").await;
    let call = |key: &str| crm_call(journey, contact, key);
    // Opened together, a key seen twice in one batch is still one call.
    let calls = [(ws, call("b")), (ws, call("a")), (ws, call("b"))];
    let opened: Vec<_> =
        store.open_deliveries(&calls, at(2)).await.expect("batch").into_iter().map(|r| r.expect("open")).collect();
    assert_eq!(opened[0].id, opened[2].id);
    assert_ne!(opened[0].id, opened[1].id);
    assert_eq!(opened[1].step.as_deref(), Some("a"), "results in the order given");

    let jobs = [webhook_job(json!({"n": 0}), at(2)), webhook_job(json!({"n": 1}), at(2))];
    store.enqueue_jobs(ws, &jobs, at(2)).await.expect("jobs");
    let leased = store.claim_jobs(&claim(at(2), 2)).await.expect("claim");
    assert_eq!(leased.len(), 2);
    let record =
        |lease: herald_domain::job::JobLease, delivery: &herald_domain::WebhookDelivery, status: u16| AttemptRecord {
            workspace: ws,
            lease,
            delivery: delivery.id,
            attempt: WebhookAttempt {
                number: 1,
                at: at(3),
                request_line: "POST https://crm.example.com/leads".into(),
                request_headers: json!({}),
                status: Some(status),
                latency_ms: 5,
                response_body: None,
                error: None,
            },
            progress: DeliveryProgress {
                status: WebhookStatus::Succeeded,
                last_status: Some(status),
                last_error: None,
                response: Value::Null,
            },
            outcome: JobOutcome::Done,
            follow_up: vec![NewJob::new(JobKind::JourneyStep, json!({"after": delivery.id}), at(3))],
        };
    let mut stale = leased[1].lease;
    stale.lease_id = herald_domain::LeaseId::from_uuid(crate::new_uuid(at(3)));
    let records = [
        record(leased[0].lease, &opened[0], 200),
        record(stale, &opened[1], 201),
        record(leased[1].lease, &opened[1], 202),
    ];
    let results = store.record_attempts(&records, at(3)).await.expect("batch");
    assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
    assert!(matches!(results[1], Err(StoreError::LeaseLost)), "only the stale record is refused: {results:?}");
    for (delivery, status) in [(&opened[0], 200), (&opened[1], 202)] {
        let (stored, attempts) = store.get_delivery(ws, delivery.id).await.expect("get");
        assert_eq!((stored.status, stored.last_status), (WebhookStatus::Succeeded, Some(status)));
        assert_eq!(attempts.len(), 1, "the refused record left nothing behind");
    }
    let follow_ups = store.claim_jobs(&claim(at(3), 10)).await.expect("claim");
    assert_eq!(follow_ups.len(), 2, "one follow-up per applied record: {follow_ups:?}");

    // A batch nobody refuses applies whole: a retry and a success side by side.
    let opened: Vec<_> = store
        .open_deliveries(&[(ws, call("c")), (ws, call("d"))], at(4))
        .await
        .expect("batch")
        .into_iter()
        .map(|r| r.expect("open"))
        .collect();
    store.enqueue_jobs(ws, &jobs, at(4)).await.expect("jobs");
    let leased = store.claim_jobs(&claim(at(4), 2)).await.expect("claim");
    let mut retried = record(leased[0].lease, &opened[0], 503);
    retried.progress.status = WebhookStatus::Pending;
    retried.outcome = JobOutcome::Retry { at: at(20), error: "HTTP 503".into() };
    retried.follow_up.clear();
    let records = [retried, record(leased[1].lease, &opened[1], 200)];
    let results = store.record_attempts(&records, at(5)).await.expect("batch");
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let (pending, attempts) = store.get_delivery(ws, opened[0].id).await.expect("get");
    assert_eq!((pending.status, pending.attempts, pending.finished_at), (WebhookStatus::Pending, 1, None));
    assert_eq!(attempts[0].status, Some(503));
    let (done, _) = store.get_delivery(ws, opened[1].id).await.expect("get");
    assert_eq!((done.status, done.finished_at), (WebhookStatus::Succeeded, Some(at(5))));
    let due: Vec<_> = store.claim_jobs(&claim(at(5), 10)).await.expect("claim");
    assert_eq!(due.len(), 1, "the success's follow-up only; the retry waits: {due:?}");
    let later = store.claim_jobs(&claim(at(20), 10)).await.expect("claim");
    assert_eq!(later.iter().map(|j| j.job.id).collect::<Vec<_>>(), [leased[0].job.id], "the retry is due at its time");
    assert_eq!(later[0].job.last_error.as_deref(), Some("HTTP 503"));
}

pub async fn webhook_deliveries_filter_by_action_and_step(store: SharedStore) {
    use crate::webhook::{ActionCalls, DeliveryFilter, NewDelivery};
    use herald_domain::{ActionId, CampaignId, WebhookDeliveryId};
    let (ws, contact, journey) = journey_for(&store, "f@example.com").await;
    let campaign = CampaignId::from_uuid(crate::new_uuid(at(1)));
    let other_campaign = CampaignId::from_uuid(crate::new_uuid(at(1)));
    let action = ActionId::from_uuid(crate::new_uuid(at(1)));
    let other_action = ActionId::from_uuid(crate::new_uuid(at(1)));
    let open = |secs: u64, campaign: Option<CampaignId>, step: Option<&'static str>, call: Value| {
        let store = store.clone();
        async move {
            let new = NewDelivery {
                journey_id: campaign.map(|_| journey),
                campaign_id: campaign,
                contact_id: Some(contact),
                step: step.map(str::to_owned),
                campaign_webhook_id: None,
                idempotency_key: format!("key-{secs}"),
                endpoint: "https://crm.example.com:443".into(),
                request: json!({"method": "POST", "url": "https://crm.example.com/leads"}),
                call,
            };
            store.open_delivery(ws, &new, at(secs)).await.expect("open").id
        }
    };
    // A campaign step that uses the action, another step of the same campaign, the same step
    // id in another campaign, a run of the action for one contact and a run of another action.
    let crm = open(2, Some(campaign), Some("crm"), json!({"step": "crm"})).await;
    let mail = open(3, Some(campaign), Some("notify"), json!({"step": "notify"})).await;
    let elsewhere = open(4, Some(other_campaign), Some("crm"), json!({"step": "crm"})).await;
    let run = open(5, None, None, json!({"action": action.to_string(), "contact": contact})).await;
    let other_run = open(6, None, None, json!({"action": other_action.to_string(), "contact": contact})).await;
    let ids = |filter: DeliveryFilter| {
        let store = store.clone();
        async move {
            let page = store.list_deliveries(ws, &filter, PageRequest::first(10)).await.expect("list");
            page.items.iter().map(|d| d.id).collect::<Vec<WebhookDeliveryId>>()
        }
    };
    let by_action = |steps| DeliveryFilter { action: Some(ActionCalls { action, steps }), ..DeliveryFilter::default() };
    assert_eq!(ids(by_action(vec![(campaign, "crm".into())])).await, [run, crm], "newest first");
    assert_eq!(ids(by_action(Vec::new())).await, [run], "no step uses it: only its runs");
    let step = |campaign, step: &str| DeliveryFilter {
        campaign: Some(campaign),
        step: Some(step.into()),
        ..DeliveryFilter::default()
    };
    assert_eq!(ids(step(campaign, "crm")).await, [crm]);
    assert_eq!(ids(step(other_campaign, "crm")).await, [elsewhere]);
    assert_eq!(ids(step(campaign, "notify")).await, [mail]);
    assert!(ids(step(campaign, "missing")).await.is_empty());
    let with_status = DeliveryFilter { status: Some(herald_domain::WebhookStatus::Succeeded), ..by_action(Vec::new()) };
    assert!(ids(with_status).await.is_empty(), "filters combine");
    let everything = ids(DeliveryFilter::default()).await;
    assert_eq!(everything, [other_run, run, elsewhere, mail, crm]);
    let other = store.create_workspace(&ws_name("other"), at(0)).await.expect("other");
    let elsewhere_ws = store
        .list_deliveries(other.id, &by_action(vec![(campaign, "crm".into())]), PageRequest::first(10))
        .await
        .expect("list");
    assert!(elsewhere_ws.items.is_empty(), "scoped to the workspace");
}

pub async fn endpoints_fail_recover_and_are_disabled_once(store: SharedStore) {
    let ws = store.ensure_default_workspace(at(0)).await.expect("ws").id;
    let crm = "https://crm.example.com:443";
    let first = store.endpoint_failed(ws, crm, at(10)).await.expect("failed");
    assert_eq!((first.failing_since, first.disabled_at), (Some(at(10)), None));
    let later = store.endpoint_failed(ws, crm, at(20)).await.expect("failed again");
    assert_eq!((later.id, later.failing_since), (first.id, Some(at(10))), "the streak keeps its start");
    store.endpoint_succeeded(ws, crm, at(30)).await.expect("answered");
    let streak = store.endpoint_failed(ws, crm, at(40)).await.expect("a new streak");
    assert_eq!(streak.failing_since, Some(at(40)));
    let event = |since, reason: &str, t| {
        let id = herald_domain::EventId::from_uuid(crate::new_uuid(at(t)));
        herald_domain::endpoint_disabled_event(id, &streak, at(since), reason, at(t))
    };
    assert!(
        !store.disable_endpoint(ws, crm, at(10), "old streak", &event(10, "old streak", 50)).await.expect("stale"),
        "a success since the streak began keeps it enabled"
    );
    let disabling = event(40, "failed for 5 days", 50);
    assert!(store.disable_endpoint(ws, crm, at(40), "failed for 5 days", &disabling).await.expect("disable"));
    assert!(
        !store.disable_endpoint(ws, crm, at(40), "again", &event(40, "again", 51)).await.expect("once"),
        "disabled once"
    );
    let filter = EventFilter { name: Some("endpoint_disabled".into()), ..EventFilter::default() };
    let logged = store.list_events(ws, &filter, PageRequest::first(10)).await.expect("events").items;
    assert_eq!(logged.len(), 1, "one endpoint_disabled event in the log");
    assert_eq!((logged[0].id, &logged[0].properties["endpoint"]), (disabling.id, &json!(crm)));
    store.endpoint_succeeded(ws, "https://ok.example.com:443", at(52)).await.expect("healthy");
    let list = store.list_endpoints(ws).await.expect("list");
    assert_eq!(list.iter().map(|e| e.endpoint.as_str()).collect::<Vec<_>>(), [crm, "https://ok.example.com:443"]);
    assert_eq!(
        (list[0].disabled_at, list[0].disabled_reason.as_deref(), list[1].last_success_at),
        (Some(at(50)), Some("failed for 5 days"), Some(at(52)))
    );
    assert_eq!(store.disabled_endpoints().await.expect("disabled"), [(ws, crm.to_owned())]);
    let other = store.create_workspace(&ws_name("endpoints-other"), at(0)).await.expect("ws").id;
    assert!(matches!(store.enable_endpoint(other, first.id).await, Err(StoreError::NotFound { .. })));
    let enabled = store.enable_endpoint(ws, first.id).await.expect("enable");
    assert_eq!((enabled.disabled_at, enabled.failing_since), (None, None), "enabled with a fresh streak");
    assert!(store.disabled_endpoints().await.expect("none").is_empty());
}
