//! Outbound webhook calls as stored: one delivery per call (a journey's webhook step), with
//! every attempt recorded.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::campaign::string_enum;
use crate::event::{ContactAction, Event, EventOutcome};
use crate::{
    ActionId, CampaignId, CampaignWebhookId, ContactId, DraftId, EndpointId, EventId, JourneyId, Timestamp,
    WebhookDeliveryId, WorkspaceId,
};

/// Whether a header's value looks like a secret (credentials, API keys, tokens, signatures):
/// the values the delivery log masks and the store seals inside calls and campaign documents.
pub fn secret_header(name: &str) -> bool {
    const SECRET: [&str; 7] = ["authorization", "signature", "secret", "token", "key", "password", "cookie"];
    let lower = name.to_ascii_lowercase();
    // `Idempotency-Key` is an identifier, not a secret.
    lower != "idempotency-key" && SECRET.iter().any(|s| lower.contains(s))
}

/// What a masked secret shows: a secret-looking header's value or a password, wherever a
/// call, a saved action or a campaign document leaves the store to be shown.
pub const MASK: &str = "***";

string_enum!(
    /// Where a call stands.
    WebhookStatus {
        /// Not answered with a final result yet (first attempt due, or a retry waiting).
        Pending = "pending",
        /// Answered 2xx.
        Succeeded = "succeeded",
        /// Refused for good (a 4xx other than 408/409/429, an address the policy refuses).
        Failed = "failed",
        /// Every retry failed.
        Exhausted = "exhausted",
    }
);

/// One outbound call. Its request is kept as rendered so every retry sends the same bytes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WebhookDelivery {
    pub id: WebhookDeliveryId,
    pub workspace_id: WorkspaceId,
    pub journey_id: Option<JourneyId>,
    pub campaign_id: Option<CampaignId>,
    pub contact_id: Option<ContactId>,
    /// The campaign step that made the call.
    pub step: Option<String>,
    /// The campaign event webhook that made the call.
    pub campaign_webhook_id: Option<CampaignWebhookId>,
    /// Sent as `Idempotency-Key` and `webhook-id`: the same on every attempt.
    pub idempotency_key: String,
    /// `scheme://host:port`: concurrency limits and fast recovery are per endpoint.
    pub endpoint: String,
    /// `method`, `url`, `headers`, `content_type`, `body`, `timeout_ms`, `log_response_body`.
    pub request: Value,
    pub status: WebhookStatus,
    pub attempts: u32,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    /// The last response body (parsed JSON or text), when one was kept.
    pub response: Value,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub finished_at: Option<Timestamp>,
}

/// One attempt of a call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookAttempt {
    pub number: u32,
    pub at: Timestamp,
    /// `POST https://example.com/hook`.
    pub request_line: String,
    /// With secrets (`Authorization`, signatures) masked.
    pub request_headers: Value,
    pub status: Option<u16>,
    pub latency_ms: u64,
    /// Kept when the step asks for it, at most 64 KiB.
    pub response_body: Option<String>,
    pub error: Option<String>,
}

/// A webhook request saved under a name: campaign steps refer to it by id (`"action":
/// "act_…"`), and it can be run for one contact outside any campaign (a shortcut).
#[derive(Clone, PartialEq)]
pub struct SavedAction {
    pub id: ActionId,
    pub workspace_id: WorkspaceId,
    pub name: String,
    /// The request as a webhook step describes it (without `id`), secrets included: the API
    /// shows it with the Basic password masked.
    pub definition: Value,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Deleted actions are kept for the journeys still running on campaign versions that use
    /// them, but cannot be run, listed, or used by new versions.
    pub deleted_at: Option<Timestamp>,
}

impl fmt::Debug for SavedAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SavedAction").field("id", &self.id).field("name", &self.name).finish_non_exhaustive()
    }
}

/// A journey's webhook call held at a draft step until someone sends or skips it (Customer.io's
/// draft mode: the journey moves on only after the call and its attribute update are done).
#[derive(Clone, PartialEq, Serialize)]
pub struct WebhookDraft {
    pub id: DraftId,
    pub workspace_id: WorkspaceId,
    pub journey_id: JourneyId,
    pub campaign_id: CampaignId,
    pub contact_id: ContactId,
    pub step: String,
    /// The rendered request as the delivery log shows it (secrets masked).
    pub request: Value,
    /// The delivery job's payload that sends it, secrets included: never serialized.
    #[serde(skip)]
    pub call: Value,
    pub created_at: Timestamp,
}

impl fmt::Debug for WebhookDraft {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookDraft")
            .field("id", &self.id)
            .field("journey_id", &self.journey_id)
            .field("step", &self.step)
            .finish_non_exhaustive()
    }
}

/// An endpoint Herald calls (`scheme://host:port`), and whether it answers. One that has
/// failed every attempt for the disable period is disabled: its calls fail at once, without a
/// request, until it is enabled again.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EndpointHealth {
    pub id: EndpointId,
    pub workspace_id: WorkspaceId,
    pub endpoint: String,
    /// Since when every attempt failed; `None` while it answers.
    pub failing_since: Option<Timestamp>,
    pub last_success_at: Option<Timestamp>,
    pub disabled_at: Option<Timestamp>,
    pub disabled_reason: Option<String>,
}

/// The `endpoint_disabled` event the event log keeps when an endpoint is disabled.
pub fn endpoint_disabled_event(
    id: EventId,
    health: &EndpointHealth,
    failing_since: Timestamp,
    reason: &str,
    now: Timestamp,
) -> Event {
    let mut properties = serde_json::Map::new();
    properties.insert("endpoint".into(), Value::String(health.endpoint.clone()));
    properties.insert("endpoint_id".into(), Value::String(health.id.to_string()));
    properties.insert("reason".into(), Value::String(reason.to_owned()));
    properties.insert("failing_since".into(), serde_json::json!(failing_since));
    Event {
        id,
        workspace_id: health.workspace_id,
        source_id: None,
        contact_id: None,
        name: Some("endpoint_disabled".into()),
        properties,
        occurred_at: now,
        received_at: now,
        idempotency_key: None,
        request: None,
        outcome: EventOutcome {
            contact: ContactAction::Skipped,
            conflicts: Vec::new(),
            notes: vec![format!(
                "Herald disabled {} ({reason}); its calls fail without a request until it is enabled again: \
                 POST /api/v1/webhook-endpoints/{}/enable.",
                health.endpoint, health.id
            )],
            campaigns: Vec::new(),
        },
    }
}
