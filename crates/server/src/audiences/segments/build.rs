//! Computing a segment over the contacts already there: the background build, a page of
//! contacts per job, and the preview of a definition not yet saved.

use std::collections::HashMap;

use herald_campaign::segment::{self, Facts, Segment, Verdict};
use herald_domain::{Contact, ContactId, PageRequest, SegmentId, WorkspaceId};
use herald_store::segment::{BuildPage, BuildPayload, SegmentDecision, SegmentStatus, build_job, refresh_job};
use herald_store::{ContactFilter, StoreError, StoreResult};

use super::Segments;
use super::decide::earliest;

/// Contacts per build job: small enough that a page's transaction is short (ingest waits for
/// no more than one page on SQLite's single writer).
const BUILD_PAGE: u32 = 200;
/// Contacts a preview examines at most.
pub const PREVIEW_LIMIT: u64 = 10_000;
/// Contacts per page a preview reads.
const PREVIEW_PAGE: u32 = 500;

/// What a definition would match now.
#[derive(Debug, Clone)]
pub struct Preview {
    pub matches: u64,
    pub examined: u64,
    /// Every contact was examined (the workspace has at most [`PREVIEW_LIMIT`]).
    pub complete: bool,
    pub sample: Vec<Contact>,
}

impl Segments {
    /// The answers for `definition` of a page of contacts (in their order), their other
    /// memberships read as stored; their events and standings are read for the page at once.
    async fn decide_page(
        &self,
        workspace: WorkspaceId,
        definition: &Segment,
        names: &[String],
        contacts: &[Contact],
    ) -> StoreResult<Vec<Verdict>> {
        let ids: Vec<ContactId> = contacts.iter().map(|c| c.id).collect();
        let mut facts = self.facts_of(workspace, &ids, names).await?;
        let mut standings = if definition.references().is_empty() {
            HashMap::new()
        } else {
            self.standings_of(workspace, &ids).await?
        };
        let now = self.clock.now();
        let mut verdicts = Vec::with_capacity(contacts.len());
        for contact in contacts {
            let events = facts.remove(&contact.id).unwrap_or_default();
            let members = standings.remove(&contact.id).unwrap_or_default();
            let left = self.left_topics(contact, !definition.topics().is_empty()).await?;
            let variables = segment::contact_variables(contact);
            let member_of = |id: SegmentId| members.get(&id).is_some_and(|m| m.member);
            verdicts.push(definition.evaluate(&Facts {
                contact: &variables,
                events: &events,
                member_of: &member_of,
                subscribed: &|topic| !left.contains(&topic),
                now,
            }));
        }
        Ok(verdicts)
    }

    /// Decides one page of contacts for the build of `payload`'s generation and queues the
    /// next page. A build whose segment was edited or deleted since stops.
    pub(super) async fn build_page(&self, workspace: WorkspaceId, payload: BuildPayload) -> StoreResult<()> {
        let record = match self.store.get_segment(workspace, payload.segment).await {
            Ok(record) => record,
            Err(StoreError::NotFound { .. }) => return Ok(()),
            Err(e) => return Err(e),
        };
        if record.generation != payload.generation || record.status == SegmentStatus::Ready {
            return Ok(());
        }
        let Some(definition) = self.definition(&record) else { return Ok(()) };
        let names: Vec<String> = definition.event_names().into_iter().collect();
        let read_at = self.clock.now();
        let page = self
            .store
            .list_contacts(
                workspace,
                &ContactFilter::default(),
                PageRequest { after: record.cursor, limit: BUILD_PAGE },
            )
            .await?;
        let reason = if record.generation == 1 { "segment built" } else { "segment edited" };
        let mut decisions = Vec::with_capacity(page.items.len());
        let mut timers: Vec<ContactId> = Vec::new();
        let mut first_timer = None;
        let verdicts = self.decide_page(workspace, &definition, &names, &page.items).await?;
        for (contact, verdict) in page.items.iter().zip(verdicts) {
            if verdict.changes_at.is_some() {
                timers.push(contact.id);
                first_timer = earliest(first_timer, verdict.changes_at);
            }
            decisions.push(SegmentDecision {
                segment_id: record.id,
                contact_id: contact.id,
                was_member: None,
                member: verdict.member,
                recheck_at: verdict.changes_at,
                reason: reason.to_owned(),
            });
        }
        let cursor = page.next_cursor.is_some().then(|| page.items.last().map(|c| c.id)).flatten();
        let mut jobs: Vec<_> = cursor.map(|_| build_job(record.id, record.generation, read_at)).into_iter().collect();
        // One timer for the page's contacts whose answers time may change: each re-decision
        // then sets that contact's own next timer.
        if let Some(at) = first_timer {
            jobs.push(refresh_job(&timers, at));
        }
        let build = BuildPage {
            segment: record.id,
            generation: record.generation,
            read_at,
            decisions,
            after: record.cursor,
            cursor,
            decided: page.items.len() as u64,
            jobs,
        };
        self.store.apply_build_page(workspace, &build, read_at).await?;
        Ok(())
    }

    /// What `definition` matches among the workspace's contacts now (at most
    /// [`PREVIEW_LIMIT`] examined), with up to `sample` of the matching contacts.
    pub async fn preview(&self, workspace: WorkspaceId, definition: &Segment, sample: usize) -> StoreResult<Preview> {
        let names: Vec<String> = definition.event_names().into_iter().collect();
        let mut preview = Preview { matches: 0, examined: 0, complete: false, sample: Vec::new() };
        let mut after = None;
        loop {
            let page = self
                .store
                .list_contacts(workspace, &ContactFilter::default(), PageRequest { after, limit: PREVIEW_PAGE })
                .await?;
            let verdicts = self.decide_page(workspace, definition, &names, &page.items).await?;
            for (contact, verdict) in page.items.into_iter().zip(verdicts) {
                preview.examined += 1;
                after = Some(contact.id);
                if verdict.member {
                    preview.matches += 1;
                    if preview.sample.len() < sample {
                        preview.sample.push(contact);
                    }
                }
            }
            if page.next_cursor.is_none() {
                preview.complete = true;
                return Ok(preview);
            }
            if preview.examined >= PREVIEW_LIMIT {
                return Ok(preview);
            }
        }
    }
}
