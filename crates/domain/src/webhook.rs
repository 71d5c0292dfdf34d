//! Outbound webhook calls as stored: one delivery per call (a journey's webhook step), with
//! every attempt recorded.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::campaign::string_enum;
use crate::{CampaignId, CampaignWebhookId, ContactId, JourneyId, Timestamp, WebhookDeliveryId, WorkspaceId};

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
