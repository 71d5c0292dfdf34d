//! The storage interface: one trait whose methods are Herald's use cases, each atomic, and
//! the errors they return. Two backends implement it (`herald-store-sqlite`,
//! `herald-store-postgres`); the `conformance` feature holds the suite both must pass.
//!
//! Rules every implementation keeps:
//! - every method is one transaction: it happens entirely or not at all;
//! - every read of tenant data is scoped by a `WorkspaceId`; there is no lookup by id alone;
//! - `now` is always a parameter: no SQL reads the database clock, so a manual clock in tests
//!   governs everything;
//! - no method holds a transaction open after it returns (callers do network I/O between
//!   calls, never inside one).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use herald_domain::job::{JobLease, JobOutcome, LeasedJob};
use herald_domain::{
    ApiKey, ApiKeyId, ApiKeyName, Contact, ContactId, EmailAddress, Event, EventId, Identity, Job, JobId, NewJob, Page,
    PageRequest, Phone, Source, SourceId, SourceKind, Timestamp, TokenHash, UserId, Workspace, WorkspaceId,
    WorkspaceName,
};
use ingest::{IngestRequest, IngestResult};
use serde_json::{Map, Value};
use uuid::{ContextV7, Uuid};

pub mod action;
pub mod broadcast;
pub mod campaign;
pub mod campaign_webhook;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod email;
pub mod endpoint;
mod error;
pub mod hits;
pub mod ingest;
pub mod secrets;
pub mod segment;
pub mod send;
mod signal;
pub mod template;
pub mod topic;
pub mod user;
pub mod webhook;

pub use error::StoreError;
pub use signal::QueueSignal;

pub type StoreResult<T> = Result<T, StoreError>;

/// A store shared by every task of the process.
pub type SharedStore = Arc<dyn Store>;

/// Which database a store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// A fresh UUIDv7 for `now`. Ids take their time from the injected clock, so records created
/// under a manual clock sort the way the test's timeline says; within one process, ids made in
/// the same millisecond still sort in creation order (uuid's `ContextV7` counter), which is
/// what makes "ordered by id" mean "ordered by creation" for lists and cursors.
pub fn new_uuid(now: Timestamp) -> Uuid {
    static CONTEXT: Mutex<ContextV7> = Mutex::new(ContextV7::new());
    let millis = u64::try_from(now.unix_millis()).unwrap_or(0);
    let context = CONTEXT.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let timestamp = uuid::Timestamp::from_unix(&*context, millis / 1000, (millis % 1000) as u32 * 1_000_000);
    Uuid::new_v7(timestamp)
}

/// The workspace an authenticated request acts for, and the key it used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Principal {
    pub workspace_id: WorkspaceId,
    pub api_key_id: ApiKeyId,
}

/// A new API key: its label and the hash of its token (the token itself never reaches the
/// store).
#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub name: ApiKeyName,
    pub hash: TokenHash,
    pub hint: String,
}

/// A request to claim due jobs.
#[derive(Debug, Clone)]
pub struct ClaimRequest {
    /// Names the claiming worker in the job row, for operators.
    pub worker: String,
    pub now: Timestamp,
    /// How long the claim lasts without the job being finished.
    pub lease: Duration,
    pub limit: u32,
}

/// Counts of jobs by where they are, as of `now`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Queued with `run_at <= now`, plus running with an expired lease: claimable now.
    pub due: u64,
    /// Queued for later.
    pub scheduled: u64,
    /// Held by a live lease.
    pub running: u64,
    pub dead: u64,
}

/// One application of a ping job's effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PingRecord {
    pub job_id: JobId,
    pub worker: String,
    pub applied_at: Timestamp,
}

/// Everything Herald stores, as use cases. Split by concern; `Store` is all of them.
#[async_trait]
pub trait Store:
    WorkspaceStore
    + JobStore
    + SourceStore
    + ContactStore
    + EventStore
    + campaign::CampaignStore
    + campaign_webhook::CampaignWebhookStore
    + email::EmailStore
    + hits::HitStore
    + webhook::WebhookStore
    + action::ActionStore
    + template::TemplateStore
    + send::SendStore
    + webhook::DraftStore
    + endpoint::EndpointStore
    + segment::SegmentStore
    + user::UserAccountStore
    + topic::TopicStore
    + broadcast::BroadcastStore
    + Send
    + Sync
    + std::fmt::Debug
    + 'static
{
    fn backend(&self) -> Backend;

    /// Applies pending migrations. Safe to call from several processes at once.
    async fn migrate(&self) -> StoreResult<()>;

    /// Seals with the current secret key every stored secret still in clear (written before
    /// secrets were sealed) or sealed with a previous key, and returns how many it sealed. The
    /// secret columns in one transaction, then the documents with secrets inside (rows whose
    /// `sealed_with` is not the current key) in batches; a secret sealed with a key the store
    /// was not given fails it.
    async fn reseal_secrets(&self) -> StoreResult<u64>;

    /// Succeeds when the database answers a trivial query (readiness).
    async fn ping(&self) -> StoreResult<()>;

    /// Closes the connections; later calls fail.
    async fn close(&self);
}

/// Workspaces and the API keys that act for them.
#[async_trait]
pub trait WorkspaceStore {
    /// The `default` workspace, created on first call.
    async fn ensure_default_workspace(&self, now: Timestamp) -> StoreResult<Workspace>;

    /// Fails with `Conflict { constraint: "workspaces_name" }` when the name is taken.
    async fn create_workspace(&self, name: &WorkspaceName, now: Timestamp) -> StoreResult<Workspace>;

    async fn workspace_by_name(&self, name: &WorkspaceName) -> StoreResult<Option<Workspace>>;

    async fn get_workspace(&self, id: WorkspaceId) -> StoreResult<Workspace>;

    /// Sets (or clears) the workspace's default time zone; the caller validated the name.
    async fn set_workspace_timezone(&self, id: WorkspaceId, timezone: Option<&str>) -> StoreResult<Workspace>;

    async fn list_workspaces(&self) -> StoreResult<Vec<Workspace>>;

    async fn create_api_key(&self, workspace: WorkspaceId, key: NewApiKey, now: Timestamp) -> StoreResult<ApiKey>;

    /// Makes `hash` the workspace's bootstrap key (the operator's `HERALD_ADMIN_TOKEN`),
    /// revoking a previous bootstrap key with a different hash. Idempotent across restarts.
    async fn install_bootstrap_key(
        &self,
        workspace: WorkspaceId,
        hash: TokenHash,
        now: Timestamp,
    ) -> StoreResult<ApiKey>;

    /// The principal of an unrevoked key with this hash.
    async fn authenticate(&self, hash: &TokenHash) -> StoreResult<Option<Principal>>;

    async fn list_api_keys(&self, workspace: WorkspaceId, page: PageRequest<ApiKeyId>) -> StoreResult<Page<ApiKey>>;

    async fn get_api_key(&self, workspace: WorkspaceId, id: ApiKeyId) -> StoreResult<ApiKey>;

    /// Revokes a key; revoking twice keeps the first time.
    async fn revoke_api_key(&self, workspace: WorkspaceId, id: ApiKeyId, now: Timestamp) -> StoreResult<ApiKey>;
}

/// The durable job queue. Claiming, the queue's statistics and purging serve every workspace
/// at once (one worker pool runs all tenants' jobs); everything done with a claimed job is
/// fenced by its lease and scoped by the job's workspace.
#[async_trait]
pub trait JobStore {
    /// Enqueues jobs in one transaction (all or none).
    async fn enqueue_jobs(&self, workspace: WorkspaceId, jobs: &[NewJob], now: Timestamp) -> StoreResult<Vec<JobId>>;

    /// Claims up to `limit` due jobs, oldest due first: queued jobs whose `run_at` has come
    /// and running jobs whose lease has expired. Each claim counts as an attempt. Concurrent
    /// callers (also in other processes) never receive the same job under live leases.
    async fn claim_jobs(&self, request: &ClaimRequest) -> StoreResult<Vec<LeasedJob>>;

    /// Records how a run ended. Fails with `LeaseLost` if the lease expired and the job was
    /// claimed again, or the job is not `workspace`'s, in which case nothing is written.
    async fn finish_job(
        &self,
        workspace: WorkspaceId,
        lease: &JobLease,
        outcome: &JobOutcome,
        now: Timestamp,
    ) -> StoreResult<()> {
        self.finish_job_and_enqueue(workspace, lease, outcome, &[], now).await
    }

    /// Records how a run ended and enqueues `follow_up` (the work that follows from it, e.g. a
    /// waiting journey's resumption) in `workspace`, in one transaction fenced by the lease:
    /// with `LeaseLost` neither happens, so the job runs again and nothing it implied is lost
    /// between two commits.
    async fn finish_job_and_enqueue(
        &self,
        workspace: WorkspaceId,
        lease: &JobLease,
        outcome: &JobOutcome,
        follow_up: &[NewJob],
        now: Timestamp,
    ) -> StoreResult<()>;

    /// The effect of a ping job, committed together with the job's completion under its
    /// lease: either both happen or neither.
    async fn complete_ping(
        &self,
        workspace: WorkspaceId,
        lease: &JobLease,
        worker: &str,
        now: Timestamp,
    ) -> StoreResult<()>;

    async fn ping_records(&self, workspace: WorkspaceId) -> StoreResult<Vec<PingRecord>>;

    async fn get_job(&self, workspace: WorkspaceId, id: JobId) -> StoreResult<Job>;

    /// When the earliest queued or leased job becomes due, if any: how long a worker may
    /// sleep.
    async fn next_job_due(&self) -> StoreResult<Option<Timestamp>>;

    /// What this store announces after each commit that made jobs due (inserted them, or
    /// brought queued ones forward): this process's worker sleeps on it.
    fn queue_signal(&self) -> &Arc<QueueSignal>;

    async fn queue_stats(&self, now: Timestamp) -> StoreResult<QueueStats>;

    /// Deletes jobs that finished `done` before `done_before` and `dead` before
    /// `dead_before`, at most `limit` of them; returns how many went (call again while it
    /// returns `limit`).
    async fn purge_finished_jobs(&self, done_before: Timestamp, dead_before: Timestamp, limit: u32)
    -> StoreResult<u64>;
}

/// A new source: its name and kind, and the hash of its URL token.
#[derive(Debug, Clone)]
pub struct NewSource {
    pub name: String,
    pub kind: SourceKind,
    pub token_hash: TokenHash,
    pub token_hint: String,
}

/// Changes to a source; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct SourceUpdate {
    pub name: Option<String>,
    pub enabled: Option<bool>,
    /// `Some(None)` removes the limit.
    pub rate_limit_per_second: Option<Option<u32>>,
    /// `Some(None)` removes the mapping.
    pub mapping: Option<Option<Value>>,
}

/// A request a source refused, kept in a short per-source log so a user can see why their
/// events do not appear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub workspace_id: WorkspaceId,
    pub source_id: SourceId,
    pub received_at: Timestamp,
    pub status: u16,
    pub code: String,
    pub reason: String,
    /// The first 4 KiB of the body.
    pub body_prefix: Vec<u8>,
}

/// How many rejections each source keeps.
pub const REJECTIONS_KEPT: u32 = 100;
/// How many recent requests a mapped source keeps as samples.
pub const SAMPLES_KEPT: u32 = 20;

/// A request kept as a sample for building a mapping.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub workspace_id: WorkspaceId,
    pub source_id: SourceId,
    pub received_at: Timestamp,
    pub body: Value,
}

/// Inbound endpoints.
#[async_trait]
pub trait SourceStore {
    async fn create_source(&self, workspace: WorkspaceId, source: NewSource, now: Timestamp) -> StoreResult<Source>;

    async fn list_sources(&self, workspace: WorkspaceId, page: PageRequest<SourceId>) -> StoreResult<Page<Source>>;

    async fn get_source(&self, workspace: WorkspaceId, id: SourceId) -> StoreResult<Source>;

    async fn update_source(
        &self,
        workspace: WorkspaceId,
        id: SourceId,
        update: SourceUpdate,
        now: Timestamp,
    ) -> StoreResult<Source>;

    /// Deletes the source, its rejections and samples; its events stay in the log.
    async fn delete_source(&self, workspace: WorkspaceId, id: SourceId) -> StoreResult<()>;

    /// Replaces the token. With `grace_until`, the old token keeps working until then;
    /// without, it stops at once.
    async fn rotate_source_token(
        &self,
        workspace: WorkspaceId,
        id: SourceId,
        token_hash: TokenHash,
        token_hint: String,
        grace_until: Option<Timestamp>,
        now: Timestamp,
    ) -> StoreResult<Source>;

    /// The enabled source whose token, or previous token still in its grace period, hashes
    /// to `hash`. Not scoped by workspace: the token is the credential, like an API key.
    async fn source_by_token(&self, hash: &TokenHash, now: Timestamp) -> StoreResult<Option<Source>>;

    /// Appends rejections, keeping the newest `REJECTIONS_KEPT` per source. A rejection whose
    /// source is not (or no longer) in its workspace is dropped: the log is best effort and
    /// must not fail the others.
    async fn record_rejections(&self, rejections: &[Rejection]) -> StoreResult<()>;

    /// Newest first.
    async fn list_rejections(&self, workspace: WorkspaceId, source: SourceId) -> StoreResult<Vec<Rejection>>;

    /// Appends samples, keeping the newest `SAMPLES_KEPT` per source; like rejections, those
    /// of a source not in their workspace are dropped.
    async fn record_samples(&self, samples: &[Sample]) -> StoreResult<()>;

    /// Newest first.
    async fn list_samples(&self, workspace: WorkspaceId, source: SourceId) -> StoreResult<Vec<Sample>>;
}

/// Which contacts to list.
#[derive(Debug, Clone, Default)]
pub struct ContactFilter {
    pub email: Option<EmailAddress>,
    pub user_id: Option<UserId>,
    /// An attribute (top-level key) equal to a value. No index serves an arbitrary attribute,
    /// so without `email` or `user_id` a page examines at most [`ContactFilter::SCAN_WINDOW`]
    /// contacts: it may hold fewer matches than asked, even none, and still have a next
    /// cursor (after the last contact examined).
    pub attribute: Option<(String, Value)>,
}

impl ContactFilter {
    /// How many contacts one page of an attribute search examines.
    pub const SCAN_WINDOW: u32 = 10_000;

    /// Whether a page must be bounded to a window of [`ContactFilter::SCAN_WINDOW`] contacts.
    pub fn scans(&self) -> bool {
        self.attribute.is_some() && self.email.is_none() && self.user_id.is_none()
    }
}

/// A contact to create or import.
#[derive(Debug, Clone, Default)]
pub struct NewContact {
    pub identity: Identity,
    pub name: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub attributes: Map<String, Value>,
}

/// Changes to a contact: `Some` replaces a field (`Some(None)` clears it); attributes merge
/// like an event's (`null` removes a key).
#[derive(Debug, Clone, Default)]
pub struct ContactPatch {
    pub email: Option<Option<EmailAddress>>,
    pub user_id: Option<Option<UserId>>,
    pub phone: Option<Option<Phone>>,
    pub name: Option<Option<String>>,
    pub first_name: Option<Option<String>>,
    pub last_name: Option<Option<String>>,
    pub attributes: Map<String, Value>,
}

impl ContactPatch {
    /// Makes the patch's changes to a contact read in the same transaction, unless its
    /// attributes would pass a limit.
    pub fn change_contact(self, contact: &mut Contact, now: Timestamp) -> StoreResult<()> {
        self.check(contact)?;
        fn set<T>(field: &mut Option<T>, value: Option<Option<T>>) {
            if let Some(value) = value {
                *field = value;
            }
        }
        set(&mut contact.email, self.email);
        set(&mut contact.user_id, self.user_id);
        set(&mut contact.phone, self.phone);
        set(&mut contact.name, self.name);
        set(&mut contact.first_name, self.first_name);
        set(&mut contact.last_name, self.last_name);
        herald_domain::contact::merge_attributes(&mut contact.attributes, &self.attributes);
        contact.updated_at = now;
        Ok(())
    }

    /// Whether merging the patch's attributes keeps `contact` within the attribute limits.
    pub fn check(&self, contact: &Contact) -> StoreResult<()> {
        herald_domain::contact::check_attribute_merge(&contact.attributes, &self.attributes, &Map::new())?;
        Ok(())
    }
}

/// What an imported row did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportOutcome {
    Created(ContactId),
    Updated(ContactId),
}

/// People.
#[async_trait]
pub trait ContactStore {
    /// Ordered by id (creation).
    async fn list_contacts(
        &self,
        workspace: WorkspaceId,
        filter: &ContactFilter,
        page: PageRequest<ContactId>,
    ) -> StoreResult<Page<Contact>>;

    async fn get_contact(&self, workspace: WorkspaceId, id: ContactId) -> StoreResult<Contact>;

    /// Fails with `Conflict` (`contacts_email`, `contacts_user_id`, `contacts_phone`) when an
    /// identifier is taken.
    async fn create_contact(&self, workspace: WorkspaceId, contact: NewContact, now: Timestamp)
    -> StoreResult<Contact>;

    async fn update_contact(
        &self,
        workspace: WorkspaceId,
        id: ContactId,
        patch: ContactPatch,
        now: Timestamp,
    ) -> StoreResult<Contact>;

    /// Deletes the contact and erases their events.
    async fn delete_contact(&self, workspace: WorkspaceId, id: ContactId) -> StoreResult<()>;

    /// Upserts contacts by email (rows must have one), in one transaction: new emails create
    /// contacts, known ones merge attributes and fill names. Per-row conflicts (a user id or
    /// phone held by another contact) are returned as errors for that row; other rows apply.
    async fn import_contacts(
        &self,
        workspace: WorkspaceId,
        rows: &[NewContact],
        now: Timestamp,
    ) -> StoreResult<Vec<Result<ImportOutcome, String>>>;
}

/// Which events to list.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub contact: Option<ContactId>,
    pub name: Option<String>,
    pub source: Option<SourceId>,
    /// Received at or after.
    pub from: Option<Timestamp>,
    /// Received before.
    pub until: Option<Timestamp>,
    /// Only events with this outcome.
    pub outcome: Option<OutcomeFilter>,
}

/// What an event did, as the event log filters by it (read from the stored outcome: a scan of
/// the workspace's events in id order, stopped once a page is full).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutcomeFilter {
    /// It created its contact.
    ContactCreated,
    /// It changed its contact.
    ContactUpdated,
    /// A campaign started a journey with it.
    StartedCampaign,
    /// Nothing: its contact was unchanged or skipped, and no journey started.
    Nothing,
}

/// The event log.
#[async_trait]
pub trait EventStore {
    /// Commits a batch of inbound requests in one transaction: contacts, events and
    /// idempotency records. Results are in request order.
    async fn ingest(&self, requests: &[IngestRequest], now: Timestamp) -> StoreResult<Vec<IngestResult>>;

    /// Newest first, without request bodies.
    async fn list_events(
        &self,
        workspace: WorkspaceId,
        filter: &EventFilter,
        page: PageRequest<EventId>,
    ) -> StoreResult<Page<Event>>;

    /// With the request as received.
    async fn get_event(&self, workspace: WorkspaceId, id: EventId) -> StoreResult<Event>;

    /// The distinct event names the workspace has received, sorted by the database's collation,
    /// at most `limit` (for autocomplete). Each name costs one index seek, however many events there are.
    async fn event_names(&self, workspace: WorkspaceId, limit: u32) -> StoreResult<Vec<String>>;

    /// Deletes idempotency keys created before `before` (they no longer replay), and keys of
    /// events that were erased; returns how many went.
    async fn purge_idempotency_keys(&self, before: Timestamp) -> StoreResult<u64>;
}
