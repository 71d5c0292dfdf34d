//! Events as the event log keeps them: what arrived (raw request), what it meant (name,
//! properties, contact) and what Herald did with it (the outcome, in words a person can read).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::campaign::CampaignReaction;
use crate::contact::IdentityConflict;
use crate::{ContactId, EventId, SourceId, Timestamp, WorkspaceId};

/// What happened to the contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContactAction {
    Created,
    Updated,
    Unchanged,
    /// No contact matched and none could be created; the event is logged without one.
    Skipped,
}

/// The outcome of an event, stored with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventOutcome {
    pub contact: ContactAction,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conflicts: Vec<IdentityConflict>,
    /// Explanations in words: "No event name: contact only.", "Identity unmatched: skipped."
    #[serde(default)]
    pub notes: Vec<String>,
    /// What campaigns did with the event (started, converted, skipped and why), written when
    /// the campaigns have evaluated it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub campaigns: Vec<CampaignReaction>,
}

/// The HTTP request an event came from, as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    pub method: String,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

/// An event in the log.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: EventId,
    pub workspace_id: WorkspaceId,
    pub source_id: Option<SourceId>,
    pub contact_id: Option<ContactId>,
    pub name: Option<String>,
    pub properties: Map<String, Value>,
    pub occurred_at: Timestamp,
    pub received_at: Timestamp,
    pub idempotency_key: Option<String>,
    /// Present when reading one event; lists leave it out.
    pub request: Option<RequestRecord>,
    pub outcome: EventOutcome,
}
