//! An event as the API shows it: the events slice's public JSON shape, used by the event log's
//! API and wherever another slice lists events (a contact's recent events).

use herald_domain::{ContactId, Event, EventId, EventOutcome, SourceId, Timestamp};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct EventDto {
    #[schema(value_type = String, example = "evt_0193a4b2c3d47e5f8a9b0c1d2e3f4a5b")]
    id: EventId,
    /// Exactly as sent (case-sensitive); null for contact-only requests.
    #[schema(example = "user_signed_up")]
    name: Option<String>,
    #[schema(value_type = Option<String>)]
    contact_id: Option<ContactId>,
    #[schema(value_type = Option<String>)]
    source_id: Option<SourceId>,
    #[schema(value_type = Object)]
    properties: Map<String, Value>,
    #[schema(value_type = String, format = DateTime)]
    occurred_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    received_at: Timestamp,
    idempotency_key: Option<String>,
    /// What Herald did: `contact` (created, updated, unchanged, skipped), identity
    /// `conflicts`, and `notes` in words.
    #[schema(value_type = Object)]
    outcome: EventOutcome,
}

impl From<Event> for EventDto {
    fn from(e: Event) -> Self {
        Self {
            id: e.id,
            name: e.name,
            contact_id: e.contact_id,
            source_id: e.source_id,
            properties: e.properties,
            occurred_at: e.occurred_at,
            received_at: e.received_at,
            idempotency_key: e.idempotency_key,
            outcome: e.outcome,
        }
    }
}
