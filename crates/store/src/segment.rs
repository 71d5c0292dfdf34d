//! Segments and their members: the saved definitions, who is in each and since when, what
//! entered and left (and why), each segment's size by day, and the facts a decision reads.
//!
//! Membership is decided outside the store (by the pure evaluator) and written here as
//! decisions. A live decision carries what it saw (`was_member`): the write fails with
//! `Conflict { constraint: "segment_memberships" }` when another node decided the same
//! contact meanwhile, so a change is recorded once, and the job runs again on what is
//! committed. A build page skips the contacts that changed after it read them (their own
//! re-decision follows), so a build does not overwrite a fresher decision.

use async_trait::async_trait;
use herald_domain::{Contact, ContactId, Event, JobKind, NewJob, Page, PageRequest, SegmentId, Timestamp, WorkspaceId};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::StoreResult;

/// The constraint a live decision reports when the membership it saw has changed since.
pub const MEMBERSHIP_RACE: &str = "segment_memberships";
/// The constraint a deletion reports when another segment refers to the segment.
pub const REFERENCED: &str = "segment_references";

/// Whether a segment's members are computed yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentStatus {
    /// A new or edited definition is being computed over the contacts; members are partial.
    Building,
    /// Every contact has been decided; members are kept current as contacts change.
    Ready,
}

impl SegmentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SegmentStatus::Building => "building",
            SegmentStatus::Ready => "ready",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "building" => Some(SegmentStatus::Building),
            "ready" => Some(SegmentStatus::Ready),
            _ => None,
        }
    }
}

/// A saved segment.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentRecord {
    pub id: SegmentId,
    pub workspace_id: WorkspaceId,
    pub name: String,
    /// The definition as saved (valid when saved; see `herald_campaign::segment`).
    pub definition: Value,
    pub status: SegmentStatus,
    /// Counts the definition's versions: a build works for one generation only.
    pub generation: u32,
    /// How many contacts the current build has decided.
    pub progress: u64,
    /// Where the current build continues: contacts after this one.
    pub cursor: Option<ContactId>,
    pub members: u64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A segment to save: its name, definition and the segments the definition refers to.
#[derive(Debug, Clone)]
pub struct SegmentDraft {
    pub name: String,
    pub definition: Value,
    pub references: Vec<SegmentId>,
}

/// One contact's standing in one segment, as stored: members, and non-members with a timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Membership {
    pub segment_id: SegmentId,
    pub contact_id: ContactId,
    pub member: bool,
    /// When the contact became a member (members only).
    pub since: Option<Timestamp>,
    /// When time alone may change the answer.
    pub recheck_at: Option<Timestamp>,
}

/// A decision for one contact in one segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentDecision {
    pub segment_id: SegmentId,
    pub contact_id: ContactId,
    /// What the decision saw (a live decision); a build page leaves it to the store.
    pub was_member: Option<bool>,
    pub member: bool,
    pub recheck_at: Option<Timestamp>,
    /// Why the answer changed, when it did: kept in the history.
    pub reason: String,
}

/// The writes of one live re-decision: decisions, the contact events recording the changes,
/// and jobs (the next timers), in one transaction. The events are evaluated (one job for
/// them all) when the workspace has a live campaign at the commit (a segment trigger may
/// react), or when `evaluate` says some segment reads them; otherwise evaluating them would
/// change nothing, and costs as much as the re-decision itself.
#[derive(Debug, Clone, Default)]
pub struct SegmentWork {
    pub decisions: Vec<SegmentDecision>,
    pub events: Vec<Event>,
    pub jobs: Vec<NewJob>,
    /// Some segment reads the membership events (`performed: "segment_entered"`).
    pub evaluate: bool,
}

/// One page of a build.
#[derive(Debug, Clone)]
pub struct BuildPage {
    pub segment: SegmentId,
    pub generation: u32,
    /// When the page's contacts and events were read (before reading): a contact changed
    /// after it is left to its own re-decision. A change within the same millisecond as the
    /// read is not told apart from one before it.
    pub read_at: Timestamp,
    pub decisions: Vec<SegmentDecision>,
    /// Where the page began (the segment's cursor when it was read): a page whose segment
    /// has moved on meanwhile (a second run of the same job) writes nothing.
    pub after: Option<ContactId>,
    /// The last contact of the page; `None` when the build is over.
    pub cursor: Option<ContactId>,
    /// How many contacts the page decided.
    pub decided: u64,
    /// The next page's job (none when the build is over) and the timers of the page's
    /// contacts.
    pub jobs: Vec<NewJob>,
}

/// An entering or leaving, as the history keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembershipChange {
    pub segment_id: SegmentId,
    pub contact_id: ContactId,
    pub entered: bool,
    pub at: Timestamp,
    pub reason: String,
}

/// A member and since when.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub contact: Contact,
    pub since: Timestamp,
}

/// One of a contact's events as decisions read it.
#[derive(Debug, Clone, PartialEq)]
pub struct EventFact {
    pub name: String,
    pub occurred_at: Timestamp,
    pub properties: Map<String, Value>,
}

/// The size of a segment at the end of a day (UTC), or now for today.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DailySize {
    /// `YYYY-MM-DD`.
    pub day: String,
    pub members: u64,
}

/// What a build job works on: one generation of one segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildPayload {
    pub segment: SegmentId,
    pub generation: u32,
}

/// The job that builds (or continues building) a generation of a segment.
pub fn build_job(segment: SegmentId, generation: u32, at: Timestamp) -> NewJob {
    NewJob::new(JobKind::BuildSegment, serde_json::json!(BuildPayload { segment, generation }), at)
}

/// Which contacts a refresh job re-decides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshPayload {
    pub contacts: Vec<ContactId>,
}

/// The job that re-decides contacts' memberships at `at` (a timer, or a change of attributes
/// without an event).
/// Each contact is named once.
pub fn refresh_job(contacts: &[ContactId], at: Timestamp) -> NewJob {
    let mut contacts = contacts.to_vec();
    contacts.sort();
    contacts.dedup();
    NewJob::new(JobKind::RefreshSegments, serde_json::json!(RefreshPayload { contacts }), at)
}

/// The contacts an import created or changed (whose memberships it may have changed).
pub fn imported_contacts(results: &[Result<crate::ImportOutcome, String>]) -> Vec<ContactId> {
    results
        .iter()
        .filter_map(|r| match r {
            Ok(crate::ImportOutcome::Created(id) | crate::ImportOutcome::Updated(id)) => Some(*id),
            Err(_) => None,
        })
        .collect()
}

/// Adds `delta` to `segment`'s entry: how the member counts of the segments one transaction
/// changes move, applied once per segment at its end.
pub fn tally(changes: &mut Vec<(SegmentId, i64)>, segment: SegmentId, delta: i64) {
    match changes.iter_mut().find(|(s, _)| *s == segment) {
        Some((_, total)) => *total += delta,
        None => changes.push((segment, delta)),
    }
}

/// The contact event that records a contact entering (or leaving) a segment: in the
/// contact's timeline, and what segment triggers and other segments' `member_of` react to.
pub fn membership_event(
    workspace: WorkspaceId,
    contact: ContactId,
    segment: SegmentId,
    segment_name: &str,
    entered: bool,
    reason: &str,
    now: Timestamp,
) -> Event {
    use herald_domain::activity::{SEGMENT_ENTERED, SEGMENT_LEFT};
    let mut properties = Map::new();
    properties.insert("segment_id".into(), Value::String(segment.to_string()));
    properties.insert("segment".into(), Value::String(segment_name.to_owned()));
    properties.insert("reason".into(), Value::String(reason.to_owned()));
    let verb = if entered { "entered" } else { "left" };
    Event {
        id: herald_domain::EventId::from_uuid(crate::new_uuid(now)),
        workspace_id: workspace,
        source_id: None,
        contact_id: Some(contact),
        name: Some(if entered { SEGMENT_ENTERED } else { SEGMENT_LEFT }.to_owned()),
        properties,
        occurred_at: now,
        received_at: now,
        idempotency_key: None,
        request: None,
        outcome: herald_domain::EventOutcome {
            contact: herald_domain::ContactAction::Unchanged,
            conflicts: Vec::new(),
            notes: vec![format!("Recorded by Herald: {verb} segment {segment_name:?} ({reason}).")],
            campaigns: Vec::new(),
        },
    }
}

/// The day (UTC, `YYYY-MM-DD`) of an instant, as sizes are kept.
pub fn day_of(at: Timestamp) -> String {
    let date = at.to_offset_date_time().date();
    format!("{:04}-{:02}-{:02}", date.year(), u8::from(date.month()), date.day())
}

#[async_trait]
pub trait SegmentStore {
    /// Saves a new segment (status building) with the job that builds it ([`build_job`]). Fails with
    /// `Conflict { constraint: "segments_name" }` when the name is taken, `NotFound` when a
    /// referenced segment is not in the workspace.
    async fn create_segment(
        &self,
        workspace: WorkspaceId,
        draft: &SegmentDraft,
        now: Timestamp,
    ) -> StoreResult<SegmentRecord>;

    /// Replaces the name and definition, starts a new generation (status building, progress
    /// zero) and enqueues its build ([`build_job`]); the members stay until the build decides them again.
    async fn update_segment(
        &self,
        workspace: WorkspaceId,
        id: SegmentId,
        draft: &SegmentDraft,
        now: Timestamp,
    ) -> StoreResult<SegmentRecord>;

    /// Deletes a segment with its members, history and sizes. Fails with
    /// `Conflict { constraint: REFERENCED }` while another segment refers to it.
    async fn delete_segment(&self, workspace: WorkspaceId, id: SegmentId) -> StoreResult<()>;

    async fn get_segment(&self, workspace: WorkspaceId, id: SegmentId) -> StoreResult<SegmentRecord>;

    /// Every segment of the workspace, by id (creation).
    async fn list_segments(&self, workspace: WorkspaceId) -> StoreResult<Vec<SegmentRecord>>;

    /// The contact's stored standings (memberships and timers).
    async fn contact_memberships(&self, workspace: WorkspaceId, contact: ContactId) -> StoreResult<Vec<Membership>> {
        self.memberships_of(workspace, &[contact]).await
    }

    /// The stored standings of several contacts, in one read: what a batch of re-decisions
    /// starts from.
    async fn memberships_of(&self, workspace: WorkspaceId, contacts: &[ContactId]) -> StoreResult<Vec<Membership>>;

    /// The contact's events with one of `names`, newest first, at most `limit`.
    async fn contact_event_facts(
        &self,
        workspace: WorkspaceId,
        contact: ContactId,
        names: &[String],
        limit: u32,
    ) -> StoreResult<Vec<EventFact>> {
        let facts = self.event_facts_of(workspace, &[contact], names, limit).await?;
        Ok(facts.into_iter().map(|(_, fact)| fact).collect())
    }

    /// The events with one of `names` of several contacts, in one read: each contact's newest
    /// first, at most `limit` per contact.
    async fn event_facts_of(
        &self,
        workspace: WorkspaceId,
        contacts: &[ContactId],
        names: &[String],
        limit: u32,
    ) -> StoreResult<Vec<(ContactId, EventFact)>>;

    /// Writes a live re-decision in one transaction (see the module's note on races).
    async fn apply_segment_work(&self, workspace: WorkspaceId, work: &SegmentWork, now: Timestamp) -> StoreResult<()>;

    /// Writes one page of a build, with its progress and the next page's job. Returns `false`
    /// (writing nothing) when the segment was edited or deleted since the build began, or
    /// another run wrote this page already.
    async fn apply_build_page(&self, workspace: WorkspaceId, page: &BuildPage, now: Timestamp) -> StoreResult<bool> {
        let written = self.apply_build_pages(workspace, std::slice::from_ref(page), now).await?;
        Ok(written.first().copied().unwrap_or(false))
    }

    /// Writes the same page of contacts for the builds of several segments, in one
    /// transaction; for each page, as [`SegmentStore::apply_build_page`] would (whether it was
    /// written).
    async fn apply_build_pages(
        &self,
        workspace: WorkspaceId,
        pages: &[BuildPage],
        now: Timestamp,
    ) -> StoreResult<Vec<bool>>;

    /// Members ordered by contact id.
    async fn list_members(
        &self,
        workspace: WorkspaceId,
        segment: SegmentId,
        page: PageRequest<ContactId>,
    ) -> StoreResult<Page<Member>>;

    /// Changes of one segment, or of one contact (whichever is given), newest first.
    async fn membership_history(
        &self,
        workspace: WorkspaceId,
        segment: Option<SegmentId>,
        contact: Option<ContactId>,
        limit: u32,
    ) -> StoreResult<Vec<MembershipChange>>;

    /// The segment's size by day, oldest first, at most the last `days` days that saw a change.
    async fn segment_sizes(&self, workspace: WorkspaceId, segment: SegmentId, days: u32)
    -> StoreResult<Vec<DailySize>>;
}
