//! What a webhook call is before and after it is made: the payload its delivery job carries,
//! where it came from, its idempotency key, drafts and calls that never rendered, and the
//! request as the delivery log shows it (secret-looking headers masked).

use herald_campaign::engine::{WebhookOutcome, WebhookRequest};
use herald_domain::webhook::{MASK, secret_header};
use herald_domain::{
    ActionId, CampaignEventKind, CampaignId, CampaignWebhookId, ContactId, DraftId, Journey, JourneyId, NewJob,
    Timestamp, WebhookAttempt, WebhookDeliveryId, WebhookDraft, WebhookStatus,
};
use herald_store::webhook::{CallRecord, DeliveryProgress, NewDelivery, webhook_job};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{actions, endpoint};

/// A call, as its delivery job carries it.
#[derive(Debug, Serialize, Deserialize)]
pub struct CallPayload {
    #[serde(flatten)]
    pub(super) origin: CallOrigin,
    pub(super) request: WebhookRequest,
    /// `scheme://host:port`: fast recovery finds an endpoint's waiting retries by it.
    pub(super) endpoint: String,
    /// `user:password` for Basic authentication (a secret, kept out of the delivery's request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) basic_auth: Option<String>,
    /// A campaign event webhook's own secret, which signs instead of the workspace's keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) secret: Option<String>,
}

/// What made a call: where its delivery is filed and what follows when it is over. Untagged,
/// so journey calls queued before campaign event webhooks existed still read.
#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged)]
pub(super) enum CallOrigin {
    /// A journey's webhook step: the journey waits at it and resumes when the call is over.
    Journey {
        journey: JourneyId,
        campaign: CampaignId,
        contact: ContactId,
        /// The webhook step's index in the journey's program and its id.
        step_index: u32,
        step: String,
        /// The call's idempotency key; calls queued before keys were time-ordered have none
        /// and keep the key they were made with ([`legacy_idempotency_key`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        idempotency_key: Option<String>,
    },
    /// A campaign event webhook: nothing waits for it.
    CampaignEvent {
        campaign_webhook: CampaignWebhookId,
        campaign: CampaignId,
        contact: ContactId,
        journey: Option<JourneyId>,
        event: CampaignEventKind,
        idempotency_key: String,
    },
    /// A saved action run for one contact (a shortcut): on success its `set_attributes` are
    /// applied to the contact.
    Action { action: ActionId, contact: ContactId, idempotency_key: String },
}

impl CallOrigin {
    /// The delivery to open (or find) for the call.
    pub(super) fn delivery(&self, endpoint: String, request: Value, call: Value) -> NewDelivery {
        let (journey_id, campaign, contact, step, campaign_webhook_id, key) = match self {
            CallOrigin::Journey { journey, campaign, contact, step, idempotency_key: key, .. } => {
                let key = key.clone().unwrap_or_else(|| legacy_idempotency_key(*journey, step));
                (Some(*journey), Some(*campaign), *contact, Some(step.clone()), None, key)
            }
            CallOrigin::CampaignEvent { campaign_webhook, campaign, contact, journey, idempotency_key, .. } => {
                (*journey, Some(*campaign), *contact, None, Some(*campaign_webhook), idempotency_key.clone())
            }
            CallOrigin::Action { contact, idempotency_key, .. } => {
                (None, None, *contact, None, None, idempotency_key.clone())
            }
        };
        NewDelivery {
            journey_id,
            campaign_id: campaign,
            contact_id: Some(contact),
            step,
            campaign_webhook_id,
            idempotency_key: key,
            endpoint,
            request,
            call,
        }
    }

    /// What follows a call that ended with `status`: the journey waiting for it resumes; a
    /// saved action's successful run updates the contact.
    pub(super) fn resume(&self, delivery: WebhookDeliveryId, status: WebhookStatus, now: Timestamp) -> Option<NewJob> {
        match self {
            CallOrigin::Journey { journey, step_index, .. } => {
                Some(crate::campaigns::jobs::resume_job(*journey, *step_index, delivery, now))
            }
            CallOrigin::Action { action, contact, .. } if status == WebhookStatus::Succeeded => {
                Some(actions::result_job(delivery, *action, *contact, now))
            }
            CallOrigin::CampaignEvent { .. } | CallOrigin::Action { .. } => None,
        }
    }
}

/// The key that makes a call's `Idempotency-Key` and `webhook-id`: the same for the same
/// journey and step, however often the step or the delivery runs. It starts with the journey's
/// id, which is time-ordered, so the index of keys grows at its end instead of taking a write
/// on a random page for every call; a digest of the step id follows.
pub fn idempotency_key(journey: JourneyId, step: &str) -> String {
    let digest = Sha256::digest(step.as_bytes());
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("whk_{}_{hex}", journey.as_uuid().simple())
}

/// The key of calls queued before [`idempotency_key`] was time-ordered: a digest of the
/// journey and the step.
pub(super) fn legacy_idempotency_key(journey: JourneyId, step: &str) -> String {
    let digest = Sha256::digest(format!("{journey}:{step}").as_bytes());
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("whk_{hex}")
}

/// The delivery job of a journey waiting at webhook node `index` (step `step`).
pub fn call_job(journey: &Journey, index: u32, step: &str, request: WebhookRequest, now: Timestamp) -> NewJob {
    webhook_job(json!(journey_call(journey, index, step, request)), now)
}

/// The call of a journey waiting at webhook node `index` (step `step`).
pub(super) fn journey_call(journey: &Journey, index: u32, step: &str, request: WebhookRequest) -> CallPayload {
    let basic_auth = request.basic_auth.as_ref().map(|(user, password)| format!("{user}:{password}"));
    CallPayload {
        endpoint: endpoint(&request.url),
        origin: CallOrigin::Journey {
            journey: journey.id,
            campaign: journey.campaign_id,
            contact: journey.contact_id,
            step_index: index,
            step: step.to_owned(),
            idempotency_key: Some(idempotency_key(journey.id, step)),
        },
        request,
        basic_auth,
        secret: None,
    }
}

/// How a finished call ended, as the journey that waited for it sees it; `None` while it is
/// pending.
pub fn outcome(status: WebhookStatus) -> Option<WebhookOutcome> {
    match status {
        WebhookStatus::Succeeded => Some(WebhookOutcome::Succeeded),
        WebhookStatus::Failed => Some(WebhookOutcome::Failed),
        WebhookStatus::Exhausted => Some(WebhookOutcome::Exhausted),
        WebhookStatus::Pending => None,
    }
}

/// The draft of a journey held at webhook node `index` (step `step`): the call it would make,
/// kept until someone sends or skips it.
pub fn draft(journey: &Journey, index: u32, step: &str, request: WebhookRequest, now: Timestamp) -> WebhookDraft {
    let shown = logged_request(&request);
    WebhookDraft {
        id: DraftId::from_uuid(herald_store::new_uuid(now)),
        workspace_id: journey.workspace_id,
        journey_id: journey.id,
        campaign_id: journey.campaign_id,
        contact_id: journey.contact_id,
        step: step.to_owned(),
        request: shown,
        call: json!(journey_call(journey, index, step, request)),
        created_at: now,
    }
}

/// The webhook step index a draft's call resumes its journey at.
pub fn draft_step_index(draft: &WebhookDraft) -> Option<u32> {
    match serde_json::from_value::<CallPayload>(draft.call.clone()).ok()?.origin {
        CallOrigin::Journey { step_index, .. } => Some(step_index),
        CallOrigin::CampaignEvent { .. } | CallOrigin::Action { .. } => None,
    }
}

/// The record of a journey's call whose request failed to render at step `step`: a delivery
/// failed at once with the reason, and an attempt that made no request saying why (as a call
/// to a disabled endpoint gets), so the delivery log and the contact's timeline show it. It
/// keeps no call to make: there is nothing to send again.
pub fn unrendered_call(
    journey: &Journey,
    step: &str,
    method: &str,
    url: Option<&str>,
    reason: &str,
    now: Timestamp,
) -> CallRecord {
    let delivery = NewDelivery {
        journey_id: Some(journey.id),
        campaign_id: Some(journey.campaign_id),
        contact_id: Some(journey.contact_id),
        step: Some(step.to_owned()),
        campaign_webhook_id: None,
        idempotency_key: idempotency_key(journey.id, step),
        endpoint: url.map(endpoint).unwrap_or_default(),
        request: json!({ "method": method, "url": url }),
        call: Value::Null,
    };
    let attempt = WebhookAttempt {
        number: 1,
        at: now,
        request_line: format!("{method} {}", url.unwrap_or("(not rendered)")),
        request_headers: json!({}),
        status: None,
        latency_ms: 0,
        response_body: None,
        error: Some(format!("the request could not be rendered: {reason}")),
    };
    let progress = DeliveryProgress {
        status: WebhookStatus::Failed,
        last_status: None,
        last_error: attempt.error.clone(),
        response: Value::Null,
    };
    CallRecord { id: WebhookDeliveryId::from_uuid(herald_store::new_uuid(now)), delivery, attempt, progress }
}

/// The `data` of a `webhook_failed` campaign event: the call, how it ended, and its last
/// attempt.
pub fn failed_call_data(
    delivery: WebhookDeliveryId,
    step: &str,
    url: Option<&str>,
    status: WebhookStatus,
    last: &WebhookAttempt,
) -> Value {
    json!({
        "delivery_id": delivery, "step": step, "url": url, "status": status,
        "attempts": last.number, "last_status": last.status, "error": last.error,
    })
}

/// A request as the delivery log and drafts show it (secret-looking headers masked, Basic
/// credentials left out).
pub(super) fn logged_request(request: &WebhookRequest) -> Value {
    json!({
        "method": request.method,
        "url": request.url,
        "headers": mask_headers(&request.headers),
        "content_type": request.content_type,
        "body": request.body,
        "timeout_ms": request.timeout.as_millis(),
        "log_response_body": request.log_response_body,
    })
}

/// Headers as the delivery log shows them: values of secret-looking headers (credentials,
/// API keys, tokens, signatures) replaced by `***`.
pub fn mask_headers(headers: &[(String, String)]) -> Value {
    let masked: serde_json::Map<String, Value> = headers
        .iter()
        .map(|(name, value)| {
            let shown = if secret_header(name) { MASK.into() } else { value.clone() };
            (name.to_ascii_lowercase(), Value::String(shown))
        })
        .collect();
    Value::Object(masked)
}
