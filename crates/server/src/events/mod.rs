//! The event log: every event ingest committed, with what it did to its contact. `api` is
//! `/api/v1/events`, `pages` the live event log and an event's page; both filter by the
//! outcomes named here. An event's JSON shape ([`EventDto`]) is the slice's public surface
//! for other slices that show events.

pub mod api;
mod dto;
pub(crate) mod pages;

pub use dto::EventDto;

use herald_store::{OutcomeFilter, SharedStore};

use crate::web::error::ApiError;

/// What the event log's API and pages use.
#[derive(Clone, Debug)]
pub struct EventsState {
    pub store: SharedStore,
}

/// The outcomes the event log filters by: (query value, the words the web UI shows).
pub const OUTCOMES: [(&str, &str, OutcomeFilter); 4] = [
    ("contact_created", "Created a contact", OutcomeFilter::ContactCreated),
    ("contact_updated", "Updated a contact", OutcomeFilter::ContactUpdated),
    ("started_campaign", "Started a campaign", OutcomeFilter::StartedCampaign),
    ("nothing", "Nothing happened", OutcomeFilter::Nothing),
];

/// An `outcome` filter (the API's and the web UI's).
pub fn outcome_param(value: Option<&str>) -> Result<Option<OutcomeFilter>, ApiError> {
    value
        .map(|v| {
            OUTCOMES.iter().find(|(name, _, _)| *name == v).map(|(_, _, f)| *f).ok_or_else(|| {
                ApiError::invalid("outcome", "must be contact_created, contact_updated, started_campaign or nothing")
            })
        })
        .transpose()
}
