//! Campaign storage: campaigns and their versions, journeys, the step log, messages, and the
//! one atomic write through which triggers and journey steps commit their effects.

use async_trait::async_trait;
use herald_domain::job::JobLease;
use herald_domain::{
    Campaign, CampaignId, CampaignReaction, CampaignState, ContactId, EmailSummary, EventId, Journey, JourneyId,
    JourneyStatus, Message, MessageId, MessageStatus, NewJob, Page, PageRequest, Timestamp, WorkspaceId,
};
use serde_json::{Map, Value};

use crate::StoreResult;

/// A journey to start.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJourney {
    pub id: JourneyId,
    pub campaign_id: CampaignId,
    pub version: u32,
    pub contact_id: ContactId,
    pub event_id: Option<EventId>,
    /// At most one active journey per campaign and contact (entry rules `once` and
    /// `once_at_a_time`); a second one is a `Conflict` named `journeys_campaign_id_contact_id`.
    pub exclusive: bool,
    pub custom_variables: Map<String, Value>,
    pub goal_until: Option<Timestamp>,
    /// Its first step and when it runs.
    pub step: u32,
    pub run_at: Timestamp,
}

impl NewJourney {
    /// A journey on version 1 at step 0, due at `run_at`, with nothing else set (setup in
    /// tests and benchmarks).
    pub fn at_start(id: JourneyId, campaign_id: CampaignId, contact_id: ContactId, run_at: Timestamp) -> Self {
        Self {
            id,
            campaign_id,
            version: 1,
            contact_id,
            event_id: None,
            exclusive: false,
            custom_variables: Map::new(),
            goal_until: None,
            step: 0,
            run_at,
        }
    }
}

/// A change to a journey, applied only if the journey is still where the writer saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct JourneyUpdate {
    pub id: JourneyId,
    /// The step and due time the writer read; `None` matches any position.
    pub expect: Option<(Option<u32>, Option<Timestamp>)>,
    pub status: JourneyStatus,
    pub step: Option<u32>,
    pub run_at: Option<Timestamp>,
    pub held: bool,
    pub custom_variables: Option<Map<String, Value>>,
    pub exit_reason: Option<String>,
    pub converted: bool,
    /// The step to credit with a later conversion (kept when `None`).
    pub conversion_step: Option<String>,
}

/// One step's result, for the journey's history and the per-step statistics.
#[derive(Debug, Clone, PartialEq)]
pub struct StepRecord {
    pub journey_id: JourneyId,
    pub campaign_id: CampaignId,
    pub step: String,
    /// `sent`, `failed`, `suppressed`, `held`, `waited`, `then`, `else`, `set`, `unset`,
    /// `exited`, `converted`, `completed`.
    pub outcome: String,
    pub detail: Value,
    pub message_id: Option<MessageId>,
    pub at: Timestamp,
}

/// A contact attribute written by a step: `Some` sets, `None` removes.
#[derive(Debug, Clone, PartialEq)]
pub struct AttributeChange {
    pub contact_id: ContactId,
    pub attribute: String,
    pub value: Option<Value>,
}

/// Everything a trigger evaluation or a journey step commits, in one transaction, together
/// with the completion of the job that computed it (fenced by its lease).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CampaignWork {
    pub journeys: Vec<NewJourney>,
    pub updates: Vec<JourneyUpdate>,
    pub steps: Vec<StepRecord>,
    pub messages: Vec<Message>,
    pub attributes: Vec<AttributeChange>,
    pub jobs: Vec<NewJob>,
    pub reactions: Vec<(EventId, Vec<CampaignReaction>)>,
    /// Webhook calls held at draft steps.
    pub drafts: Vec<herald_domain::WebhookDraft>,
    /// Webhook calls made while the step ran, with their first attempt.
    pub calls: Vec<crate::webhook::CallRecord>,
}

/// The exit reason of journeys whose campaign was archived.
pub const ARCHIVED: &str = "campaign archived";

/// One job's work in a batch.
#[derive(Debug, Clone, Copy)]
pub struct WorkCommit<'a> {
    pub workspace: WorkspaceId,
    pub lease: Option<&'a JobLease>,
    pub work: &'a CampaignWork,
}

/// A journey with everything its next step reads, fetched together.
#[derive(Debug, Clone, PartialEq)]
pub struct JourneyContext {
    pub journey: Journey,
    pub campaign_name: String,
    pub campaign_state: herald_domain::CampaignState,
    pub contact: herald_domain::Contact,
    /// The event that started the journey, without its request; `None` when there was none
    /// or it was erased.
    pub event: Option<herald_domain::Event>,
    /// The workspace's default time zone.
    pub workspace_timezone: Option<String>,
    /// The contact's address is on the suppression list.
    pub suppressed: bool,
    /// The workspace has an SMTP transport of its own.
    pub workspace_smtp: bool,
}

/// The jobs of `items` completed by one statement each: grouped by the claim (lease) they
/// were taken with and the workspace they belong to.
pub fn jobs_by_lease(
    items: &[WorkCommit<'_>],
) -> std::collections::BTreeMap<(herald_domain::LeaseId, WorkspaceId), Vec<herald_domain::JobId>> {
    let mut by_lease: std::collections::BTreeMap<_, Vec<_>> = std::collections::BTreeMap::new();
    for (workspace, lease) in items.iter().filter_map(|i| i.lease.map(|lease| (i.workspace, lease))) {
        by_lease.entry((lease.lease_id, workspace)).or_default().push(lease.job_id);
    }
    by_lease
}

/// New jobs grouped per workspace (each workspace's jobs are inserted by one statement).
pub fn jobs_by_workspace<'a>(
    jobs: impl IntoIterator<Item = (WorkspaceId, &'a [NewJob])>,
) -> std::collections::BTreeMap<WorkspaceId, Vec<NewJob>> {
    let mut by_workspace: std::collections::BTreeMap<_, Vec<_>> = std::collections::BTreeMap::new();
    for (workspace, jobs) in jobs.into_iter().filter(|(_, jobs)| !jobs.is_empty()) {
        by_workspace.entry(workspace).or_default().extend(jobs.iter().cloned());
    }
    by_workspace
}

/// The new jobs of `items`, per workspace.
pub fn new_jobs_by_workspace(items: &[WorkCommit<'_>]) -> std::collections::BTreeMap<WorkspaceId, Vec<NewJob>> {
    jobs_by_workspace(items.iter().map(|i| (i.workspace, i.work.jobs.as_slice())))
}

/// Per-campaign statistics.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CampaignStats {
    pub entered: u64,
    pub active: u64,
    pub completed: u64,
    pub exited: u64,
    pub converted: u64,
    /// Per step id: outcome → count.
    pub steps: std::collections::BTreeMap<String, std::collections::BTreeMap<String, u64>>,
}

/// Which messages to list.
#[derive(Debug, Clone, Default)]
pub struct MessageFilter {
    pub contact: Option<ContactId>,
    pub campaign: Option<CampaignId>,
    pub status: Option<MessageStatus>,
}

#[async_trait]
pub trait CampaignStore {
    /// A new campaign in `draft` with its document as version 1.
    async fn create_campaign(
        &self,
        workspace: WorkspaceId,
        name: &str,
        document: &Value,
        now: Timestamp,
    ) -> StoreResult<Campaign>;

    async fn list_campaigns(
        &self,
        workspace: WorkspaceId,
        page: PageRequest<CampaignId>,
    ) -> StoreResult<Page<Campaign>>;

    async fn get_campaign(&self, workspace: WorkspaceId, id: CampaignId) -> StoreResult<Campaign>;

    /// The document of one version (journeys run on the version they started on).
    async fn campaign_version(&self, workspace: WorkspaceId, id: CampaignId, version: u32) -> StoreResult<Value>;

    /// Saves `document` as the next version. Archived campaigns cannot change (`Conflict`
    /// named `campaign_archived`).
    async fn update_campaign(
        &self,
        workspace: WorkspaceId,
        id: CampaignId,
        name: &str,
        document: &Value,
        now: Timestamp,
    ) -> StoreResult<Campaign>;

    /// Moves a campaign from one of `from` to `to` (`Conflict` named `campaign_state` when it
    /// is elsewhere). Into `active` from `paused`, held journeys get their step jobs back;
    /// into `archived`, active journeys exit (reason [`ARCHIVED`]) and, when any did, an
    /// `archive_exits` job (payload `{"campaign"}`) is queued in the same transaction.
    async fn set_campaign_state(
        &self,
        workspace: WorkspaceId,
        id: CampaignId,
        from: &[CampaignState],
        to: CampaignState,
        now: Timestamp,
    ) -> StoreResult<Campaign>;

    /// Deletes a campaign with its journeys and messages.
    async fn delete_campaign(&self, workspace: WorkspaceId, id: CampaignId) -> StoreResult<()>;

    /// Active and paused campaigns: the ones events can affect.
    async fn live_campaigns(&self, workspace: WorkspaceId) -> StoreResult<Vec<Campaign>>;

    async fn campaign_stats(&self, workspace: WorkspaceId, id: CampaignId) -> StoreResult<CampaignStats>;

    /// How many events named `name` the workspace's contact has, received at or after
    /// `since`, up to and including `until` (in event id order).
    async fn count_contact_events(
        &self,
        workspace: WorkspaceId,
        contact: ContactId,
        name: &str,
        since: Option<Timestamp>,
        until: EventId,
    ) -> StoreResult<u64>;

    /// Whether the workspace's contact has an event (any, or one of `names`) after `after`, in
    /// event id order.
    async fn contact_event_after(
        &self,
        workspace: WorkspaceId,
        contact: ContactId,
        names: &[String],
        after: EventId,
    ) -> StoreResult<bool>;

    /// The workspace's contact's journeys in `campaign` (in every campaign when `None`),
    /// newest first (at most `limit`).
    async fn contact_journeys(
        &self,
        workspace: WorkspaceId,
        contact: ContactId,
        campaign: Option<CampaignId>,
        limit: u32,
    ) -> StoreResult<Vec<Journey>>;

    /// Journeys of a campaign that exited because it was archived, by id after `after`, at
    /// most `limit`: (journey, contact).
    async fn archived_journeys(
        &self,
        workspace: WorkspaceId,
        campaign: CampaignId,
        after: Option<JourneyId>,
        limit: u32,
    ) -> StoreResult<Vec<(JourneyId, ContactId)>>;

    /// Journeys with their campaigns' state, their contacts and their trigger events, in one
    /// read. Ids that name no journey of `workspace` are left out; the order is unspecified.
    async fn journey_contexts(&self, workspace: WorkspaceId, ids: &[JourneyId]) -> StoreResult<Vec<JourneyContext>>;

    /// One journey's context ([`Self::journey_contexts`]).
    async fn journey_context(&self, workspace: WorkspaceId, id: JourneyId) -> StoreResult<JourneyContext> {
        let mut found = self.journey_contexts(workspace, &[id]).await?;
        found.pop().ok_or(crate::StoreError::NotFound { entity: "journey" })
    }

    /// Commits `work`; with a lease, also completes that job, or fails with `LeaseLost`. A
    /// journey update whose expectation no longer holds fails the whole write with a
    /// `Conflict` named `journey_moved`.
    async fn commit_campaign_work(
        &self,
        workspace: WorkspaceId,
        lease: Option<&JobLease>,
        work: &CampaignWork,
        now: Timestamp,
    ) -> StoreResult<()> {
        let item = WorkCommit { workspace, lease, work };
        self.commit_campaign_batch(std::slice::from_ref(&item), now).await?.pop().unwrap_or(Ok(()))
    }

    /// Commits several jobs' work in one transaction (group commit: one fsync for all). Each
    /// item applies whole or not at all, as `commit_campaign_work` would; the results are in
    /// item order. `Err` for the whole batch only when the transaction itself failed.
    async fn commit_campaign_batch(
        &self,
        items: &[WorkCommit<'_>],
        now: Timestamp,
    ) -> StoreResult<Vec<StoreResult<()>>>;

    async fn list_messages(
        &self,
        workspace: WorkspaceId,
        filter: &MessageFilter,
        page: PageRequest<MessageId>,
    ) -> StoreResult<Page<Message>>;

    async fn get_message(&self, workspace: WorkspaceId, id: MessageId) -> StoreResult<Message>;

    /// The messages of `ids` that exist, in no particular order (deleted ones are left out).
    async fn get_messages(&self, workspace: WorkspaceId, ids: &[MessageId]) -> StoreResult<Vec<Message>>;

    /// The journey's emails, oldest first, each with its opens and clicks.
    async fn journey_emails(&self, workspace: WorkspaceId, journey: JourneyId) -> StoreResult<Vec<EmailSummary>>;
}

/// The jobs that decide segment memberships and evaluate campaign triggers for newly
/// committed events, one per workspace with live campaigns or segments (`live` answers that),
/// to insert in the events' own transaction: an
/// accepted event is evaluated exactly once, even if the process dies right after the commit.
pub fn evaluation_jobs(
    events: &[herald_domain::Event],
    mut live: impl FnMut(WorkspaceId) -> bool,
    now: Timestamp,
) -> Vec<(WorkspaceId, NewJob)> {
    let mut by_workspace: std::collections::BTreeMap<WorkspaceId, Vec<EventId>> = Default::default();
    for event in events.iter().filter(|e| e.contact_id.is_some()) {
        by_workspace.entry(event.workspace_id).or_default().push(event.id);
    }
    by_workspace
        .into_iter()
        .filter(|(workspace, _)| live(*workspace))
        .map(|(workspace, events)| {
            let job = NewJob::new(herald_domain::JobKind::EvaluateEvents, serde_json::json!({ "events": events }), now);
            (workspace, job)
        })
        .collect()
}
