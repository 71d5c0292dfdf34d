//! Re-deciding contacts' memberships: read what the workspace's segments need to know about
//! a batch of contacts (their events and standings, one query each for the whole batch), run
//! the pure evaluator over every segment in reference order for each contact, and turn the
//! answers that changed into decisions, contact events and timers, written in one
//! transaction.

use std::collections::HashMap;
use std::sync::Arc;

use herald_campaign::segment::{self, EventFact, Facts, Segment, graph};
use herald_domain::activity::{SEGMENT_ENTERED, SEGMENT_LEFT};
use herald_domain::{Contact, ContactId, SegmentId, Timestamp, TopicId, WorkspaceId};
use herald_store::StoreResult;
use herald_store::segment::{Membership, SegmentDecision, SegmentRecord, SegmentWork, membership_event, refresh_job};
use serde_json::Value;

use super::Segments;

/// A workspace's segments, compiled, in an order where each comes after those it refers to.
#[derive(Debug, Default)]
pub(super) struct Compiled {
    pub segments: Vec<(SegmentRecord, Arc<Segment>)>,
    /// Every event name some segment reads.
    pub names: Vec<String>,
    /// Whether some segment tests topic subscriptions: the contacts' topic choices are then
    /// read, and a change of choice re-decides the contact.
    pub reads_topics: bool,
}

impl Segments {
    /// The workspace's segments, compiled once per definition version. A stored definition
    /// that no longer reads (it was valid when saved) is left out, with a log line.
    pub(super) async fn compiled(&self, workspace: WorkspaceId) -> StoreResult<Compiled> {
        let records = self.store.list_segments(workspace).await?;
        let mut by_id = HashMap::new();
        let mut references = graph::References::new();
        let mut names = std::collections::BTreeSet::new();
        let mut reads_topics = false;
        for record in records {
            let Some(compiled) = self.definition(&record) else { continue };
            references.insert(record.id, compiled.references());
            names.extend(compiled.event_names());
            reads_topics |= !compiled.topics().is_empty();
            by_id.insert(record.id, (record, compiled));
        }
        let segments = graph::decision_order(&references).into_iter().filter_map(|id| by_id.remove(&id)).collect();
        Ok(Compiled { segments, names: names.into_iter().collect(), reads_topics })
    }

    /// One segment's compiled definition, from the cache when it holds this generation.
    pub(super) fn definition(&self, record: &SegmentRecord) -> Option<Arc<Segment>> {
        let key = (record.id, record.generation);
        if let Some(found) = self.cache.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return Some(found.clone());
        }
        match Segment::from_json(&record.definition) {
            Ok(compiled) => {
                let compiled = Arc::new(compiled);
                let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
                if cache.len() >= DEFINITION_CACHE {
                    cache.clear();
                }
                cache.insert(key, compiled.clone());
                Some(compiled)
            }
            Err(e) => {
                tracing::error!(segment = %record.id, error = %e, "a stored segment definition no longer reads");
                None
            }
        }
    }

    /// The events that `names` list of each of `contacts`, as decisions read them: one read
    /// for a whole batch.
    pub(super) async fn facts_of(
        &self,
        workspace: WorkspaceId,
        contacts: &[ContactId],
        names: &[String],
    ) -> StoreResult<HashMap<ContactId, Vec<EventFact>>> {
        let read = self.store.event_facts_of(workspace, contacts, names, segment::MAX_EVENTS_READ).await?;
        let mut facts: HashMap<ContactId, Vec<EventFact>> = HashMap::new();
        for (contact, f) in read {
            let fact = EventFact { name: f.name, at: f.occurred_at, properties: Value::Object(f.properties) };
            facts.entry(contact).or_default().push(fact);
        }
        Ok(facts)
    }

    /// The stored standings of each of `contacts`, by segment: one read for a whole batch.
    pub(super) async fn standings_of(
        &self,
        workspace: WorkspaceId,
        contacts: &[ContactId],
    ) -> StoreResult<HashMap<ContactId, HashMap<SegmentId, Membership>>> {
        let mut standings: HashMap<ContactId, HashMap<SegmentId, Membership>> = HashMap::new();
        for m in self.store.memberships_of(workspace, contacts).await? {
            standings.entry(m.contact_id).or_default().insert(m.segment_id, m);
        }
        Ok(standings)
    }

    /// The topics the contact left, read only when a definition tests topics (`reads`).
    pub(super) async fn left_topics(&self, contact: &Contact, reads: bool) -> StoreResult<Vec<TopicId>> {
        if !reads {
            return Ok(Vec::new());
        }
        let choices = self.store.contact_topics(contact.workspace_id, contact.id).await?;
        Ok(choices.into_iter().filter(|c| !c.subscribed).map(|c| c.topic_id).collect())
    }

    /// Re-decides contacts in the workspace's segments (`compiled`) and writes what changed
    /// in one transaction. Their events and standings are read for all of them at once.
    pub(super) async fn redecide_with(
        &self,
        compiled: &Compiled,
        workspace: WorkspaceId,
        contacts: &[(&Contact, String)],
        now: Timestamp,
    ) -> StoreResult<()> {
        if compiled.segments.is_empty() || contacts.is_empty() {
            return Ok(());
        }
        let ids: Vec<ContactId> = contacts.iter().map(|(contact, _)| contact.id).collect();
        let mut facts = self.facts_of(workspace, &ids, &compiled.names).await?;
        let mut standings = self.standings_of(workspace, &ids).await?;
        let mut work = SegmentWork::default();
        for (contact, cause) in contacts {
            let left = self.left_topics(contact, compiled.reads_topics).await?;
            let read = Read {
                events: facts.remove(&contact.id).unwrap_or_default(),
                left,
                stored: standings.remove(&contact.id).unwrap_or_default(),
            };
            decide_contact(compiled, contact, cause, &read, now, &mut work);
        }
        // The changes are events of their own: campaign triggers and segments that read them
        // see them (the store queues their evaluation).
        work.evaluate = [SEGMENT_ENTERED, SEGMENT_LEFT].iter().any(|name| compiled.names.iter().any(|n| n == name));
        if work.decisions.is_empty() && work.jobs.is_empty() {
            return Ok(());
        }
        self.store.apply_segment_work(workspace, &work, now).await
    }
}

/// What a re-decision read about one contact.
struct Read {
    events: Vec<EventFact>,
    /// The topics it left.
    left: Vec<TopicId>,
    /// Its stored standings, by segment.
    stored: HashMap<SegmentId, Membership>,
}

/// Re-decides `contact` in every segment of `compiled`, adding what changed to `work`.
/// `cause` says why in the history ("event \"order_placed\"", "contact updated"); an answer
/// that changed because a timer came due says "time passed" instead.
fn decide_contact(
    compiled: &Compiled,
    contact: &Contact,
    cause: &str,
    read: &Read,
    now: Timestamp,
    work: &mut SegmentWork,
) {
    let subscribed = |topic: TopicId| !read.left.contains(&topic);
    let variables = segment::contact_variables(contact);
    let mut decided: HashMap<SegmentId, bool> = HashMap::new();
    let mut next_timer: Option<Timestamp> = None;
    let mut changes = Vec::new();
    for (record, definition) in &compiled.segments {
        let member_of = |id: SegmentId| decided.get(&id).copied().unwrap_or(false);
        let verdict = definition.evaluate(&Facts {
            contact: &variables,
            events: &read.events,
            member_of: &member_of,
            subscribed: &subscribed,
            now,
        });
        decided.insert(record.id, verdict.member);
        next_timer = earliest(next_timer, verdict.changes_at);
        let before = read.stored.get(&record.id);
        let was = before.is_some_and(|m| m.member);
        let old_timer = before.and_then(|m| m.recheck_at);
        if verdict.member == was && verdict.changes_at == old_timer {
            continue;
        }
        let reason = if old_timer.is_some_and(|t| t <= now) { "time passed" } else { cause };
        work.decisions.push(SegmentDecision {
            segment_id: record.id,
            contact_id: contact.id,
            was_member: Some(was),
            member: verdict.member,
            recheck_at: verdict.changes_at,
            reason: reason.to_owned(),
        });
        if verdict.member != was {
            changes.push(membership_event(
                contact.workspace_id,
                contact.id,
                record.id,
                &record.name,
                verdict.member,
                reason,
                now,
            ));
        }
    }
    // One timer per contact, at the earliest time any answer may change. A timer set before
    // for an earlier time still comes (and sets the next one); one set for a later time, or
    // one that is due now (this run may be it), needs this new one.
    let standing = read.stored.values().filter_map(|m| m.recheck_at).min();
    if let Some(at) = next_timer
        && standing.is_none_or(|old| at < old || old <= now)
    {
        work.jobs.push(refresh_job(&[contact.id], at));
    }
    work.events.extend(changes);
}

/// How many compiled definitions a node keeps.
const DEFINITION_CACHE: usize = 4096;

fn earliest(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
