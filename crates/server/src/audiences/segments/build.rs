//! Computing a segment over the contacts already there: the background build, a page of
//! contacts per job, and the preview of a definition not yet saved.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use herald_campaign::segment::{self, Facts, Segment, Verdict};
use herald_domain::{Contact, ContactId, PageRequest, SegmentId, Timestamp, WorkspaceId};
use herald_store::segment::{
    BuildPage, BuildPayload, SegmentDecision, SegmentRecord, SegmentStatus, build_job, refresh_job,
};
use herald_store::{ContactFilter, StoreResult};

use super::Segments;

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
    /// The answers of a page of contacts (`verdicts[contact][definition]`, in the given
    /// orders) for `definitions`, given in an order where each comes after those it refers to:
    /// a `member_of` test of a segment decided in the same call reads this call's answer,
    /// any other reads the membership as stored. The contacts' events and standings are read
    /// for the page at once.
    async fn decide_page(
        &self,
        workspace: WorkspaceId,
        definitions: &[(Option<SegmentId>, &Segment)],
        contacts: &[Contact],
    ) -> StoreResult<Vec<Vec<Verdict>>> {
        let ids: Vec<ContactId> = contacts.iter().map(|c| c.id).collect();
        let names: Vec<String> =
            definitions.iter().flat_map(|(_, d)| d.event_names()).collect::<BTreeSet<_>>().into_iter().collect();
        let reads_topics = definitions.iter().any(|(_, d)| !d.topics().is_empty());
        let refers = definitions.iter().any(|(_, d)| !d.references().is_empty());
        let mut facts = self.facts_of(workspace, &ids, &names).await?;
        let mut standings = if refers { self.standings_of(workspace, &ids).await? } else { HashMap::new() };
        let now = self.clock.now();
        let mut verdicts = Vec::with_capacity(contacts.len());
        for contact in contacts {
            let events = facts.remove(&contact.id).unwrap_or_default();
            let stored = standings.remove(&contact.id).unwrap_or_default();
            let left = self.left_topics(contact, reads_topics).await?;
            let variables = segment::contact_variables(contact);
            let mut decided: HashMap<SegmentId, bool> = HashMap::new();
            let mut answers = Vec::with_capacity(definitions.len());
            for (id, definition) in definitions {
                let member_of = |of: SegmentId| match decided.get(&of) {
                    Some(member) => *member,
                    None => stored.get(&of).is_some_and(|m| m.member),
                };
                let verdict = definition.evaluate(&Facts {
                    contact: &variables,
                    events: &events,
                    member_of: &member_of,
                    subscribed: &|topic| !left.contains(&topic),
                    now,
                });
                if let Some(id) = id {
                    decided.insert(*id, verdict.member);
                }
                answers.push(verdict);
            }
            verdicts.push(answers);
        }
        Ok(verdicts)
    }

    /// Decides one page of contacts for the build of `payload`'s generation, together with
    /// every other segment of the workspace whose build stands at the same place (segments
    /// saved together build together: one read of the contacts and their events for all),
    /// and queues the job's next page. A build whose segment was edited or deleted since
    /// stops. Pages run one at a time on a node, so the jobs of segments building together
    /// each take the next page instead of deciding the same one.
    pub(super) async fn build_page(&self, workspace: WorkspaceId, payload: BuildPayload) -> StoreResult<()> {
        let _one_at_a_time = self.building.lock().await;
        let compiled = self.compiled(workspace).await?;
        let Some((record, _)) = compiled.segments.iter().find(|(record, _)| record.id == payload.segment) else {
            // Deleted, or its definition no longer reads.
            return Ok(());
        };
        if record.generation != payload.generation || record.status == SegmentStatus::Ready {
            return Ok(());
        }
        let cohort: Vec<&(SegmentRecord, Arc<Segment>)> = compiled
            .segments
            .iter()
            .filter(|(other, _)| other.status == SegmentStatus::Building && other.cursor == record.cursor)
            .collect();
        let read_at = self.clock.now();
        let page = self
            .store
            .list_contacts(
                workspace,
                &ContactFilter::default(),
                PageRequest { after: record.cursor, limit: BUILD_PAGE },
            )
            .await?;
        let definitions: Vec<(Option<SegmentId>, &Segment)> =
            cohort.iter().map(|(record, definition)| (Some(record.id), definition.as_ref())).collect();
        let verdicts = self.decide_page(workspace, &definitions, &page.items).await?;
        let cursor = page.next_cursor.is_some().then(|| page.items.last().map(|c| c.id)).flatten();
        // The contacts whose answers time may change, by when.
        let mut timers: BTreeMap<Timestamp, Vec<ContactId>> = BTreeMap::new();
        let mut pages = Vec::with_capacity(cohort.len());
        for (n, (member, _)) in cohort.iter().enumerate() {
            let reason = if member.generation == 1 { "segment built" } else { "segment edited" };
            let mut decisions = Vec::with_capacity(page.items.len());
            for (contact, answers) in page.items.iter().zip(&verdicts) {
                let verdict = &answers[n];
                if let Some(at) = verdict.changes_at {
                    timers.entry(at).or_default().push(contact.id);
                }
                decisions.push(SegmentDecision {
                    segment_id: member.id,
                    contact_id: contact.id,
                    was_member: None,
                    member: verdict.member,
                    recheck_at: verdict.changes_at,
                    reason: reason.to_owned(),
                });
            }
            pages.push(BuildPage {
                segment: member.id,
                generation: member.generation,
                read_at,
                decisions,
                after: member.cursor,
                cursor,
                decided: page.items.len() as u64,
                jobs: Vec::new(),
            });
        }
        // The job's own next page, and a timer for each time at which some of the page's
        // contacts' answers may change: a stored `recheck_at` always has its job at that very
        // time (a re-decision that comes early sets no new timer, trusting that one). They go
        // with this job's segment's page: written only if that page is.
        if let Some(own) = pages.iter_mut().find(|p| p.segment == record.id) {
            own.jobs.extend(cursor.map(|_| build_job(record.id, record.generation, read_at)));
            own.jobs.extend(timers.iter().map(|(at, contacts)| refresh_job(contacts, *at)));
        }
        self.store.apply_build_pages(workspace, &pages, read_at).await?;
        Ok(())
    }

    /// What `definition` matches among the workspace's contacts now (at most
    /// [`PREVIEW_LIMIT`] examined), with up to `sample` of the matching contacts.
    pub async fn preview(&self, workspace: WorkspaceId, definition: &Segment, sample: usize) -> StoreResult<Preview> {
        let mut preview = Preview { matches: 0, examined: 0, complete: false, sample: Vec::new() };
        let mut after = None;
        loop {
            let page = self
                .store
                .list_contacts(workspace, &ContactFilter::default(), PageRequest { after, limit: PREVIEW_PAGE })
                .await?;
            let verdicts = self.decide_page(workspace, &[(None, definition)], &page.items).await?;
            for (contact, answers) in page.items.into_iter().zip(verdicts) {
                preview.examined += 1;
                after = Some(contact.id);
                if answers.first().is_some_and(|verdict| verdict.member) {
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
