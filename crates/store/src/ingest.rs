//! Ingest, the hot path: a batch of parsed inbound events committed in one transaction
//! (group commit). The backends read what the batch needs (contacts matching its
//! identities, idempotency keys seen in the last 24 hours), hand it to [`plan_batch`], and
//! write what it returns with a few multi-row statements. The decisions live here once, not
//! twice in two SQL dialects.

use std::collections::HashMap;
use std::time::Duration;

use herald_domain::contact::{AttributeError, KnownContact, Resolution, resolve_identity};
use herald_domain::inbound::{InboundEvent, WhenUnmatched};
use herald_domain::{
    Contact, ContactAction, ContactId, EmailAddress, Event, EventId, EventOutcome, Phone, RequestRecord, SourceId,
    Timestamp, UserId, WorkspaceId,
};
use serde_json::Map;

use crate::new_uuid;

/// How long a repeated idempotency key returns the original response.
pub const IDEMPOTENCY_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// One accepted-for-processing request.
#[derive(Debug, Clone)]
pub struct IngestRequest {
    pub workspace_id: WorkspaceId,
    pub source_id: SourceId,
    pub received_at: Timestamp,
    pub request: RequestRecord,
    /// From `Idempotency-Key`, `webhook-id`, or the payload (PostHog's `uuid`).
    pub idempotency_key: Option<String>,
    pub event: InboundEvent,
    /// Explanations the receiving side adds to the outcome (a mapping that failed, say).
    pub notes: Vec<String>,
}

/// What became of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestResult {
    Accepted(Receipt),
    /// The idempotency key was seen within the window: the original receipt, nothing new.
    Replayed(Receipt),
    /// No contact matched and there was no email to create one; nothing was written.
    Unmatched,
    /// Applying the event would take its contact past an attribute limit, and its sender can
    /// fix that (`WhenUnmatched::Reject`); nothing was written.
    OverLimit(AttributeError),
}

/// The answer to an accepted request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub event_id: EventId,
    pub contact_id: Option<ContactId>,
}

/// An idempotency key and the receipt it maps to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    pub source_id: SourceId,
    pub key: String,
    pub receipt: Receipt,
    pub created_at: Timestamp,
}

/// What the database holds that a batch needs.
#[derive(Debug, Clone, Default)]
pub struct BatchSnapshot {
    /// Every contact whose email, user id or phone appears in the batch (same workspace).
    pub contacts: Vec<Contact>,
    /// Idempotency records of the batch's keys, created within the window.
    pub idempotency: Vec<IdempotencyRecord>,
}

/// What to write for a batch.
#[derive(Debug, Clone, Default)]
pub struct BatchWrites {
    pub new_contacts: Vec<Contact>,
    pub changed_contacts: Vec<Contact>,
    pub events: Vec<Event>,
    /// Upserted: a key older than the window is replaced.
    pub idempotency: Vec<IdempotencyRecord>,
}

/// The identity values a batch looks up, per workspace.
#[derive(Debug, Clone, Default)]
pub struct BatchKeys {
    pub emails: Vec<String>,
    pub user_ids: Vec<String>,
    pub phones: Vec<String>,
    pub idempotency: Vec<(SourceId, String)>,
}

/// Groups what the batch needs to read by workspace.
pub fn batch_keys(requests: &[IngestRequest]) -> HashMap<WorkspaceId, BatchKeys> {
    let mut keys: HashMap<WorkspaceId, BatchKeys> = HashMap::new();
    for request in requests {
        let entry = keys.entry(request.workspace_id).or_default();
        let identity = &request.event.identity;
        entry.emails.extend(identity.email.as_ref().map(|e| e.as_str().to_owned()));
        entry.user_ids.extend(identity.user_id.as_ref().map(|u| u.as_str().to_owned()));
        entry.phones.extend(identity.phone.as_ref().map(|p| p.as_str().to_owned()));
        entry.idempotency.extend(request.idempotency_key.clone().map(|k| (request.source_id, k)));
    }
    keys
}

/// The working set of contacts while planning: index by identity, mark what changed.
struct WorkingSet {
    contacts: Vec<Contact>,
    created: Vec<bool>,
    changed: Vec<bool>,
    by_email: HashMap<(WorkspaceId, EmailAddress), usize>,
    by_user_id: HashMap<(WorkspaceId, UserId), usize>,
    by_phone: HashMap<(WorkspaceId, Phone), usize>,
}

impl WorkingSet {
    fn new(contacts: Vec<Contact>) -> Self {
        let mut set = Self {
            contacts: Vec::new(),
            created: Vec::new(),
            changed: Vec::new(),
            by_email: HashMap::new(),
            by_user_id: HashMap::new(),
            by_phone: HashMap::new(),
        };
        for contact in contacts {
            set.add(contact, false);
        }
        set
    }

    fn add(&mut self, contact: Contact, created: bool) -> usize {
        let index = self.contacts.len();
        self.contacts.push(contact);
        self.created.push(created);
        self.changed.push(false);
        self.index(index);
        index
    }

    fn index(&mut self, i: usize) {
        let c = &self.contacts[i];
        if let Some(email) = &c.email {
            self.by_email.insert((c.workspace_id, email.clone()), i);
        }
        if let Some(user_id) = &c.user_id {
            self.by_user_id.insert((c.workspace_id, user_id.clone()), i);
        }
        if let Some(phone) = &c.phone {
            self.by_phone.insert((c.workspace_id, phone.clone()), i);
        }
    }

    fn known(&self, i: usize) -> KnownContact {
        let c = &self.contacts[i];
        KnownContact { id: c.id, email: c.email.clone(), user_id: c.user_id.clone(), phone: c.phone.clone() }
    }

    fn position(&self, id: ContactId) -> Option<usize> {
        self.contacts.iter().position(|c| c.id == id)
    }
}

/// Decides, for each request in order, which contact it belongs to and what to write.
/// Pure apart from drawing ids for new records.
pub fn plan_batch(
    requests: &[IngestRequest],
    snapshot: BatchSnapshot,
    now: Timestamp,
) -> (BatchWrites, Vec<IngestResult>) {
    let mut set = WorkingSet::new(snapshot.contacts);
    let window_start = now - IDEMPOTENCY_WINDOW;
    let mut seen: HashMap<(SourceId, String), Receipt> = snapshot
        .idempotency
        .into_iter()
        .filter(|r| r.created_at > window_start)
        .map(|r| ((r.source_id, r.key), r.receipt))
        .collect();
    let mut writes = BatchWrites::default();
    let mut results = Vec::with_capacity(requests.len());

    for request in requests {
        let key = request.idempotency_key.clone().map(|k| (request.source_id, k));
        if let Some(receipt) = key.as_ref().and_then(|k| seen.get(k)) {
            results.push(IngestResult::Replayed(receipt.clone()));
            continue;
        }
        let ws = request.workspace_id;
        let event = &request.event;
        let identity = &event.identity;
        let find = |i: Option<&usize>| i.map(|&i| set.known(i));
        let by_email = find(identity.email.as_ref().and_then(|e| set.by_email.get(&(ws, e.clone()))));
        let by_user_id = find(identity.user_id.as_ref().and_then(|u| set.by_user_id.get(&(ws, u.clone()))));
        let by_phone = find(identity.phone.as_ref().and_then(|p| set.by_phone.get(&(ws, p.clone()))));
        let mut notes = request.notes.clone();
        // Within the attribute limits, or a refusal (the sender can fix it), or the event is
        // kept without touching the contact's attributes and says why (it cannot).
        let mut within_limits = |contact: &Contact| match event.check_attribute_limits(contact) {
            Ok(()) => Ok(true),
            Err(e) if event.when_unmatched == WhenUnmatched::Reject => Err(IngestResult::OverLimit(e)),
            Err(e) => {
                notes.push(format!("The contact's attributes were not changed: {e}."));
                Ok(false)
            }
        };
        let (contact, action, conflicts) =
            match resolve_identity(identity, by_email.as_ref(), by_user_id.as_ref(), by_phone.as_ref()) {
                Resolution::Unmatched if event.when_unmatched == WhenUnmatched::Reject => {
                    results.push(IngestResult::Unmatched);
                    continue;
                }
                Resolution::Unmatched => {
                    notes.push(
                    "No contact matches this user id or phone and the event has no email: logged without a contact."
                        .to_owned(),
                );
                    (None, ContactAction::Skipped, Vec::new())
                }
                Resolution::Create { identity, conflicts } => {
                    let mut contact = Contact {
                        id: ContactId::from_uuid(new_uuid(now)),
                        workspace_id: ws,
                        email: identity.email,
                        user_id: identity.user_id,
                        phone: identity.phone,
                        name: None,
                        first_name: None,
                        last_name: None,
                        attributes: Map::new(),
                        created_at: now,
                        updated_at: now,
                    };
                    match within_limits(&contact) {
                        Ok(true) => {
                            event.apply_to(&mut contact);
                        }
                        Ok(false) => {}
                        Err(refusal) => {
                            results.push(refusal);
                            continue;
                        }
                    }
                    let i = set.add(contact, true);
                    (Some(i), ContactAction::Created, conflicts)
                }
                Resolution::Existing { id, claim, conflicts } => {
                    let i = set.position(id).expect("resolved contacts come from the working set");
                    let apply = match within_limits(&set.contacts[i]) {
                        Ok(apply) => apply,
                        Err(refusal) => {
                            results.push(refusal);
                            continue;
                        }
                    };
                    let contact = &mut set.contacts[i];
                    let mut changed = apply && event.apply_to(contact);
                    if let Some(email) = claim.email.filter(|e| contact.email.as_ref() != Some(e)) {
                        contact.email = Some(email);
                        changed = true;
                    }
                    if let Some(user_id) = claim.user_id {
                        contact.user_id = Some(user_id);
                        changed = true;
                    }
                    if let Some(phone) = claim.phone {
                        contact.phone = Some(phone);
                        changed = true;
                    }
                    if changed {
                        contact.updated_at = now;
                        set.changed[i] = true;
                        set.index(i);
                    }
                    let action = if changed { ContactAction::Updated } else { ContactAction::Unchanged };
                    (Some(i), action, conflicts)
                }
            };
        if !conflicts.is_empty() {
            notes.push("Some identifiers belong to another contact or differ from this contact's; they were not applied (see conflicts).".to_owned());
        }
        if event.name.is_none() {
            notes.push("No event name: contact only, no campaign can start.".to_owned());
        }
        let contact_id = contact.map(|i| set.contacts[i].id);
        let receipt = Receipt { event_id: EventId::from_uuid(new_uuid(now)), contact_id };
        writes.events.push(Event {
            id: receipt.event_id,
            workspace_id: ws,
            source_id: Some(request.source_id),
            contact_id,
            name: event.name.as_ref().map(|n| n.as_str().to_owned()),
            properties: event.properties.clone(),
            occurred_at: event.occurred_at.unwrap_or(request.received_at),
            received_at: request.received_at,
            idempotency_key: request.idempotency_key.clone(),
            request: Some(request.request.clone()),
            outcome: EventOutcome { contact: action, conflicts, notes, campaigns: Vec::new() },
        });
        if let Some(key) = key {
            writes.idempotency.push(IdempotencyRecord {
                source_id: key.0,
                key: key.1.clone(),
                receipt: receipt.clone(),
                created_at: now,
            });
            seen.insert(key, receipt.clone());
        }
        results.push(IngestResult::Accepted(receipt));
    }

    for (i, contact) in set.contacts.into_iter().enumerate() {
        if set.created[i] {
            writes.new_contacts.push(contact);
        } else if set.changed[i] {
            writes.changed_contacts.push(contact);
        }
    }
    (writes, results)
}

/// Plans a contact import: rows are upserted by email (every row has one). A row whose user
/// id or phone belongs to another contact is refused on its own; the others apply.
/// `existing` holds every stored contact matching the rows' emails, user ids or phones.
pub fn plan_import(
    workspace: WorkspaceId,
    rows: &[crate::NewContact],
    existing: Vec<Contact>,
    now: Timestamp,
) -> (BatchWrites, Vec<Result<crate::ImportOutcome, String>>) {
    let mut set = WorkingSet::new(existing);
    let mut results = Vec::with_capacity(rows.len());
    for row in rows {
        let Some(email) = row.identity.email.clone() else {
            results.push(Err("email: is required".to_owned()));
            continue;
        };
        let target = set.by_email.get(&(workspace, email.clone())).copied();
        let held = |field: &str, holder: Option<usize>| -> Option<String> {
            holder
                .filter(|&h| Some(h) != target)
                .map(|h| format!("{field}: already belongs to contact {}", set.contacts[h].id))
        };
        let user_holder =
            row.identity.user_id.as_ref().and_then(|u| set.by_user_id.get(&(workspace, u.clone())).copied());
        let phone_holder = row.identity.phone.as_ref().and_then(|p| set.by_phone.get(&(workspace, p.clone())).copied());
        if let Some(error) = held("user_id", user_holder).or_else(|| held("phone", phone_holder)) {
            results.push(Err(error));
            continue;
        }
        let data = InboundEvent {
            identity: row.identity.clone(),
            name: None,
            properties: Map::new(),
            attributes: row.attributes.clone(),
            attributes_once: Map::new(),
            names: herald_domain::inbound::Names {
                name: row.name.clone(),
                first_name: row.first_name.clone(),
                last_name: row.last_name.clone(),
            },
            occurred_at: None,
            dedupe_key: None,
            when_unmatched: WhenUnmatched::Reject,
        };
        let empty = Map::new();
        let held = target.map_or(&empty, |i| &set.contacts[i].attributes);
        if let Err(e) = herald_domain::contact::check_attribute_merge(held, &data.attributes, &empty) {
            results.push(Err(e.to_string()));
            continue;
        }
        match target {
            Some(i) => {
                let contact = &mut set.contacts[i];
                let mut changed = data.apply_to(contact);
                if contact.user_id.is_none() && row.identity.user_id.is_some() {
                    contact.user_id.clone_from(&row.identity.user_id);
                    changed = true;
                }
                if contact.phone.is_none() && row.identity.phone.is_some() {
                    contact.phone.clone_from(&row.identity.phone);
                    changed = true;
                }
                if changed {
                    contact.updated_at = now;
                    set.changed[i] = true;
                    set.index(i);
                }
                results.push(Ok(crate::ImportOutcome::Updated(set.contacts[i].id)));
            }
            None => {
                let mut contact = Contact {
                    id: ContactId::from_uuid(new_uuid(now)),
                    workspace_id: workspace,
                    email: Some(email),
                    user_id: row.identity.user_id.clone(),
                    phone: row.identity.phone.clone(),
                    name: None,
                    first_name: None,
                    last_name: None,
                    attributes: Map::new(),
                    created_at: now,
                    updated_at: now,
                };
                data.apply_to(&mut contact);
                let id = contact.id;
                set.add(contact, true);
                results.push(Ok(crate::ImportOutcome::Created(id)));
            }
        }
    }
    let mut writes = BatchWrites::default();
    for (i, contact) in set.contacts.into_iter().enumerate() {
        if set.created[i] {
            writes.new_contacts.push(contact);
        } else if set.changed[i] {
            writes.changed_contacts.push(contact);
        }
    }
    (writes, results)
}

/// The identity values of import rows, for the backend's lookup.
pub fn import_keys(rows: &[crate::NewContact]) -> BatchKeys {
    let mut keys = BatchKeys::default();
    for row in rows {
        keys.emails.extend(row.identity.email.as_ref().map(|e| e.as_str().to_owned()));
        keys.user_ids.extend(row.identity.user_id.as_ref().map(|u| u.as_str().to_owned()));
        keys.phones.extend(row.identity.phone.as_ref().map(|p| p.as_str().to_owned()));
    }
    keys
}
