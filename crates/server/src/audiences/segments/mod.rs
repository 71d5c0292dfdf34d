//! Segments: saved conditions over contacts whose members Herald keeps current.
//!
//! Membership is re-decided per contact, never by a periodic scan: when a contact's events
//! commit (in the evaluation job, before campaign triggers run: [`Segments::before_triggers`]),
//! when its topic choices change (their events commit the same way), when its attributes
//! change without an event (a `refresh_segments` job the store queues with the change), and
//! when a time-relative answer comes due (the same job, queued as a
//! timer for the earliest time any answer may change). A change is written with its
//! `segment_entered` / `segment_left` contact event, so the timeline shows it, and that
//! event's evaluation job when a live campaign (a segment trigger) or a segment reading those
//! events may react. A new or edited segment is computed by `build_segment` jobs, a page of
//! contacts each (for every segment whose build stands at the same place), that never block
//! ingest. `decide` holds the re-decision, `build` the build and the preview, `service` the
//! checks and saving that `api` (the `/api/v1/segments` endpoints) and `pages` (the list, the
//! builder and each segment's page) share.

pub mod api;
mod build;
mod chart;
mod decide;
pub(crate) mod pages;
pub mod service;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use herald_campaign::segment::Segment;
use herald_domain::event::ContactAction;
use herald_domain::job::LeasedJob;
use herald_domain::topic::consent_event_name;
use herald_domain::{Contact, Event, JobKind, SegmentId, WorkspaceId};
use herald_store::segment::RefreshPayload;
use herald_store::{SharedStore, StoreError, StoreResult};

use crate::clock::SharedClock;

pub use build::Preview;

/// The segments side of a node: compiled definitions, the jobs, the preview.
#[derive(Debug)]
pub struct Segments {
    store: SharedStore,
    clock: SharedClock,
    /// Compiled definitions by segment and generation (a generation never changes).
    cache: Mutex<HashMap<(SegmentId, u32), Arc<Segment>>>,
    /// Held while a build page is decided and written (see `build`).
    building: tokio::sync::Mutex<()>,
}

/// What the segments' API uses.
#[derive(Clone, Debug)]
pub struct SegmentsState {
    pub store: SharedStore,
    pub clock: SharedClock,
    pub segments: Arc<Segments>,
}

impl Segments {
    pub fn new(store: SharedStore, clock: SharedClock) -> Self {
        Self { store, clock, cache: Mutex::default(), building: tokio::sync::Mutex::default() }
    }

    /// Re-decides the memberships of the contacts of committed events, before the events'
    /// campaign triggers are evaluated: each contact once, the cause being its first event
    /// that matters. An event matters when it created or changed its contact, or when some
    /// segment reads events of its name (a change of topic choice is the contact's
    /// `topic_subscribed` or `topic_unsubscribed` event, read when some segment tests topics);
    /// the others (most page views, say) cost one read of the workspace's segments per batch
    /// and nothing per event.
    pub async fn before_triggers(&self, workspace: WorkspaceId, events: &[(Event, Contact)]) -> StoreResult<()> {
        let compiled = self.compiled(workspace).await?;
        if compiled.segments.is_empty() {
            return Ok(());
        }
        let mut seen = std::collections::HashSet::new();
        let contacts: Vec<(&Contact, String)> = events
            .iter()
            .filter(|(event, _)| {
                matches!(event.outcome.contact, ContactAction::Created | ContactAction::Updated)
                    || event.name.as_ref().is_some_and(|name| {
                        compiled.names.contains(name)
                            || (compiled.reads_topics && [true, false].map(consent_event_name).contains(&name.as_str()))
                    })
            })
            .filter(|(_, contact)| seen.insert(contact.id))
            .map(|(event, contact)| (contact, format!("event {:?}", event.name.as_deref().unwrap_or("(unnamed)"))))
            .collect();
        self.redecide_with(&compiled, workspace, &contacts, self.clock.now()).await
    }

    /// Runs a segments job's effect; the caller records the job's completion. Both jobs may
    /// run twice (after a crash between the effect and the completion) without changing more.
    pub async fn run(&self, kind: JobKind, leased: &LeasedJob) -> StoreResult<()> {
        let workspace = leased.job.workspace_id;
        match kind {
            JobKind::RefreshSegments => {
                let RefreshPayload { contacts } = payload(leased)?;
                let mut found = Vec::with_capacity(contacts.len());
                for id in contacts {
                    match self.store.get_contact(workspace, id).await {
                        Ok(contact) => found.push(contact),
                        // Erased since: its standings went with it.
                        Err(StoreError::NotFound { .. }) => {}
                        Err(e) => return Err(e),
                    }
                }
                let causes: Vec<(&Contact, String)> = found.iter().map(|c| (c, "contact updated".to_owned())).collect();
                let compiled = self.compiled(workspace).await?;
                self.redecide_with(&compiled, workspace, &causes, self.clock.now()).await
            }
            JobKind::BuildSegment => self.build_page(workspace, payload(leased)?).await,
            other => Err(StoreError::Corrupt(format!("{other} is not a segments job"))),
        }
    }
}

fn payload<T: serde::de::DeserializeOwned>(leased: &LeasedJob) -> StoreResult<T> {
    serde_json::from_value(leased.job.payload.clone())
        .map_err(|e| StoreError::Corrupt(format!("unreadable {} payload: {e}", leased.job.kind)))
}
