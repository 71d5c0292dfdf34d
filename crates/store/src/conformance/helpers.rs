//! Builders and fixtures shared by the conformance cases: the suite's timeline, claims, a
//! source to ingest through, a contact with a journey, a queued message, a webhook call.

use std::time::Duration;

use herald_domain::inbound::parse_generic;
use herald_domain::{
    ContactId, EmailAddress, RequestRecord, SourceId, SourceKind, SourceToken, Timestamp, WorkspaceId, WorkspaceName,
};
use serde_json::{Value, json};

use crate::ingest::{IngestRequest, IngestResult, Receipt};
use crate::{ClaimRequest, NewContact, NewSource, SharedStore};

/// Seconds after a fixed instant (2026-01-01T00:00:00Z): the suite's timeline.
pub(super) fn at(secs: u64) -> Timestamp {
    Timestamp::from_unix_millis(1_767_225_600_000) + Duration::from_secs(secs)
}

pub(super) fn ws_name(s: &str) -> WorkspaceName {
    WorkspaceName::parse(s).expect("valid workspace name")
}

pub(super) fn claim(now: Timestamp, limit: u32) -> ClaimRequest {
    ClaimRequest { worker: "w1".into(), now, lease: Duration::from_secs(30), limit }
}

pub(super) fn new_source(name: &str, seed: u8) -> (SourceToken, NewSource) {
    let token = SourceToken::generate([seed; 32]);
    let source =
        NewSource { name: name.into(), kind: SourceKind::Generic, token_hash: token.hash(), token_hint: token.hint() };
    (token, source)
}

/// A store with the default workspace and one generic source.
pub(super) async fn with_source(store: &SharedStore) -> (WorkspaceId, SourceId) {
    let ws = store.ensure_default_workspace(at(0)).await.expect("ws");
    let (_, source) = new_source("website", 1);
    let source = store.create_source(ws.id, source, at(0)).await.expect("source");
    (ws.id, source.id)
}

pub(super) fn request(
    ws: WorkspaceId,
    source: SourceId,
    body: Value,
    key: Option<&str>,
    t: Timestamp,
) -> IngestRequest {
    IngestRequest {
        workspace_id: ws,
        source_id: source,
        received_at: t,
        request: RequestRecord {
            method: "POST".into(),
            content_type: Some("application/json".into()),
            body: body.to_string().into_bytes(),
        },
        idempotency_key: key.map(str::to_owned),
        event: parse_generic(&body).expect("valid payload"),
        notes: Vec::new(),
    }
}

pub(super) fn accepted(result: &IngestResult) -> Receipt {
    match result {
        IngestResult::Accepted(receipt) => receipt.clone(),
        other => panic!("expected Accepted, got {other:?}"),
    }
}

pub(super) fn email(s: &str) -> EmailAddress {
    EmailAddress::parse(s).expect("email")
}

/// A contact with a journey in a fresh campaign, for the email cases.
pub(super) async fn journey_for(
    store: &SharedStore,
    address: &str,
) -> (WorkspaceId, ContactId, herald_domain::JourneyId) {
    use crate::campaign::CampaignWork;
    let ws = store.ensure_default_workspace(at(0)).await.expect("ws").id;
    let contact = store
        .create_contact(
            ws,
            NewContact {
                identity: herald_domain::Identity { email: Some(email(address)), ..Default::default() },
                ..NewContact::default()
            },
            at(1),
        )
        .await
        .expect("contact");
    let campaign = store.create_campaign(ws, address, &json!({}), at(1)).await.expect("campaign");
    let journey = herald_domain::JourneyId::from_uuid(crate::new_uuid(at(1)));
    let work = CampaignWork {
        journeys: vec![crate::campaign::NewJourney::at_start(journey, campaign.id, contact.id, at(1))],
        ..CampaignWork::default()
    };
    store.commit_campaign_work(ws, None, &work, at(1)).await.expect("enrol");
    (ws, contact.id, journey)
}

pub(super) fn queued_message(
    ws: WorkspaceId,
    contact: ContactId,
    journey: herald_domain::JourneyId,
    campaign: herald_domain::CampaignId,
    from: &str,
    status: herald_domain::MessageStatus,
) -> herald_domain::Message {
    let id = herald_domain::MessageId::from_uuid(crate::new_uuid(at(2)));
    herald_domain::Message {
        id,
        workspace_id: ws,
        campaign_id: Some(campaign),
        journey_id: Some(journey),
        step: "s".into(),
        contact_id: contact,
        status,
        status_reason: (status == herald_domain::MessageStatus::Held).then(|| crate::email::DOMAIN_UNVERIFIED.into()),
        to: "to@example.com".into(),
        from: from.into(),
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
        tracking: herald_domain::Tracking::default(),
        topic: None,
        created_at: at(2),
        sent_at: None,
    }
}

/// A call of journey step `key` (its idempotency key too) to a CRM.
pub(super) fn crm_call(
    journey: herald_domain::JourneyId,
    contact: ContactId,
    key: &str,
) -> crate::webhook::NewDelivery {
    crate::webhook::NewDelivery {
        journey_id: Some(journey),
        campaign_id: None,
        contact_id: Some(contact),
        step: Some(key.into()),
        campaign_webhook_id: None,
        idempotency_key: key.into(),
        endpoint: "https://crm.example.com:443".into(),
        request: json!({"method": "POST", "url": "https://crm.example.com/leads"}),
        call: json!({"endpoint": "https://crm.example.com:443"}),
    }
}
