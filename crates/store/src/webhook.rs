//! Outbound webhook storage: deliveries with their attempts, and the workspace's signing keys.

use async_trait::async_trait;
use herald_domain::job::{JobLease, JobOutcome};
use herald_domain::{
    ActionId, CampaignId, CampaignWebhookId, ContactId, DraftId, JourneyId, NewJob, Page, PageRequest, Timestamp,
    WebhookAttempt, WebhookDelivery, WebhookDeliveryId, WebhookDraft, WebhookStatus, WorkspaceId,
};
use serde_json::Value;

use crate::StoreResult;

/// A call to record before its first attempt.
#[derive(Clone, PartialEq)]
pub struct NewDelivery {
    pub journey_id: Option<JourneyId>,
    pub campaign_id: Option<CampaignId>,
    pub contact_id: Option<ContactId>,
    pub step: Option<String>,
    /// The campaign event webhook making the call.
    pub campaign_webhook_id: Option<CampaignWebhookId>,
    /// Unique in the workspace: a second call with the same key is the first one.
    pub idempotency_key: String,
    pub endpoint: String,
    pub request: Value,
    /// The job payload that makes the call, secrets included: kept for resending, never
    /// returned by the API. `null` for a call whose request could not be rendered, which is
    /// never resent.
    pub call: Value,
}

impl std::fmt::Debug for NewDelivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewDelivery")
            .field("idempotency_key", &self.idempotency_key)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

/// What an attempt changed on its delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryProgress {
    pub status: WebhookStatus,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    pub response: Value,
}

/// One job's attempt to record (see [`WebhookStore::record_attempt`]).
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    pub workspace: WorkspaceId,
    pub lease: JobLease,
    pub delivery: WebhookDeliveryId,
    pub attempt: WebhookAttempt,
    pub progress: DeliveryProgress,
    pub outcome: JobOutcome,
    /// Jobs enqueued with it (the journey's next step once the call is over).
    pub follow_up: Vec<NewJob>,
}

/// A call a journey step made at once, recorded with the step's effects (see
/// [`CampaignWork::calls`](crate::campaign::CampaignWork::calls)): the delivery, opened under
/// `id`, and its first attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct CallRecord {
    pub id: WebhookDeliveryId,
    pub delivery: NewDelivery,
    pub attempt: WebhookAttempt,
    pub progress: DeliveryProgress,
}

/// How a store refuses a [`CallRecord`] whose idempotency key is already open (the call was
/// made and recorded before): a `Conflict`, so that only the work carrying it is refused.
pub fn call_already_open() -> crate::StoreError {
    crate::StoreError::Conflict { constraint: "webhook_deliveries_idempotency_key".into() }
}

/// Which deliveries to list.
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    pub journey: Option<JourneyId>,
    pub contact: Option<ContactId>,
    pub campaign: Option<CampaignId>,
    pub campaign_webhook: Option<CampaignWebhookId>,
    pub status: Option<WebhookStatus>,
    /// Only calls of this campaign step (a step id; usually with `campaign`).
    pub step: Option<String>,
    /// Only calls of a saved action.
    pub action: Option<ActionCalls>,
}

/// The calls of one saved action: its runs for one contact (their call names the action) and
/// the calls of the campaign steps that use it. Which steps those are is read from the
/// campaigns' documents by the caller: the store keeps no index of them.
#[derive(Debug, Clone)]
pub struct ActionCalls {
    pub action: ActionId,
    /// `(campaign, step id)` of every step that uses the action.
    pub steps: Vec<(CampaignId, String)>,
}

/// A workspace's key for signing webhooks.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKeyRecord {
    pub id: String,
    /// A secret: shown once, when created.
    pub secret: Vec<u8>,
    pub created_at: Timestamp,
    /// When it stops signing (a rotated key signs beside its successor until then).
    pub retires_at: Option<Timestamp>,
}

impl std::fmt::Debug for SigningKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyRecord")
            .field("id", &self.id)
            .field("created_at", &self.created_at)
            .field("retires_at", &self.retires_at)
            .finish_non_exhaustive()
    }
}

#[async_trait]
pub trait WebhookStore {
    /// Records a call, or returns the one already recorded with its idempotency key (so a
    /// replayed job or event never makes a second call).
    async fn open_delivery(
        &self,
        workspace: WorkspaceId,
        delivery: &NewDelivery,
        now: Timestamp,
    ) -> StoreResult<WebhookDelivery> {
        let calls = [(workspace, delivery.clone())];
        self.open_deliveries(&calls, now).await?.pop().unwrap_or(Err(crate::StoreError::Corrupt("no result".into())))
    }

    /// [`open_delivery`](Self::open_delivery) for several calls in one transaction (group
    /// commit): one result per call, in order; `Err` for the whole batch only when the
    /// transaction itself failed.
    async fn open_deliveries(
        &self,
        calls: &[(WorkspaceId, NewDelivery)],
        now: Timestamp,
    ) -> StoreResult<Vec<StoreResult<WebhookDelivery>>>;

    /// Makes finished calls pending again with a delivery job each (the stored call), in one
    /// transaction: `ids`, or with `ids` empty every call in `status` finished between `from`
    /// and `to` (at most `limit`). Calls kept without a call to make (`NewDelivery::call`
    /// `null`) are left as they are. Returns the calls resent.
    #[allow(clippy::too_many_arguments)]
    async fn resend_deliveries(
        &self,
        workspace: WorkspaceId,
        ids: &[WebhookDeliveryId],
        status: Option<WebhookStatus>,
        from: Timestamp,
        to: Timestamp,
        limit: u32,
        now: Timestamp,
    ) -> StoreResult<Vec<WebhookDeliveryId>>;

    /// Records an attempt and its effect on the delivery, finishes the job with `outcome` and
    /// enqueues `follow_up` (the journey's next step once the call is over), in one
    /// transaction fenced by the lease.
    #[allow(clippy::too_many_arguments)]
    async fn record_attempt(
        &self,
        workspace: WorkspaceId,
        lease: &JobLease,
        delivery: WebhookDeliveryId,
        attempt: &WebhookAttempt,
        progress: &DeliveryProgress,
        outcome: &JobOutcome,
        follow_up: &[NewJob],
        now: Timestamp,
    ) -> StoreResult<()> {
        let record = AttemptRecord {
            workspace,
            lease: *lease,
            delivery,
            attempt: attempt.clone(),
            progress: progress.clone(),
            outcome: outcome.clone(),
            follow_up: follow_up.to_vec(),
        };
        self.record_attempts(std::slice::from_ref(&record), now).await?.pop().unwrap_or(Ok(()))
    }

    /// [`record_attempt`](Self::record_attempt) for several jobs in one transaction (group
    /// commit): each record applies whole or not at all (a lost lease refuses only its own),
    /// one result per record, in order; `Err` for the whole batch only when the transaction
    /// itself failed.
    async fn record_attempts(&self, records: &[AttemptRecord], now: Timestamp) -> StoreResult<Vec<StoreResult<()>>>;

    async fn get_delivery(
        &self,
        workspace: WorkspaceId,
        id: WebhookDeliveryId,
    ) -> StoreResult<(WebhookDelivery, Vec<WebhookAttempt>)>;

    async fn list_deliveries(
        &self,
        workspace: WorkspaceId,
        filter: &DeliveryFilter,
        page: PageRequest<WebhookDeliveryId>,
    ) -> StoreResult<Page<WebhookDelivery>>;

    /// Makes up to `limit` waiting retries to `endpoint` due now (fast recovery: the endpoint
    /// answered again); returns how many.
    async fn release_endpoint_retries(
        &self,
        workspace: WorkspaceId,
        endpoint: &str,
        now: Timestamp,
        limit: u32,
    ) -> StoreResult<u64>;

    /// The keys that sign now (not retired at `now`), newest first.
    async fn signing_keys(&self, workspace: WorkspaceId, now: Timestamp) -> StoreResult<Vec<SigningKeyRecord>>;

    /// Adds `key` as the newest signing key; keys signing until now retire at `retire_at`.
    async fn rotate_signing_key(
        &self,
        workspace: WorkspaceId,
        key: &SigningKeyRecord,
        retire_at: Timestamp,
    ) -> StoreResult<()>;
}

/// The job that makes a delivery's next attempt.
pub fn webhook_job(delivery: Value, run_at: Timestamp) -> NewJob {
    let mut job = NewJob::new(herald_domain::JobKind::DeliverWebhook, delivery, run_at);
    // The delivery counts its own attempts; this only stops a job that keeps dying with its
    // process.
    job.max_attempts = crate::email::DELIVERY_MAX_CLAIMS;
    job
}

/// Which drafts to list or settle: `ids`, or with `ids` empty every draft of `campaign`
/// (at `step`, when given).
#[derive(Debug, Clone, Default)]
pub struct DraftSelection {
    pub ids: Vec<DraftId>,
    pub campaign: Option<CampaignId>,
    pub step: Option<String>,
}

/// Makes the job that carries out a draft's decision (its call, or its journey resumed).
pub type DraftJob<'a> = &'a (dyn Fn(&WebhookDraft) -> NewJob + Send + Sync);

#[async_trait]
pub trait DraftStore {
    /// Drafts waiting for a decision, oldest first.
    async fn list_drafts(
        &self,
        workspace: WorkspaceId,
        selection: &DraftSelection,
        page: PageRequest<DraftId>,
    ) -> StoreResult<Page<WebhookDraft>>;

    /// Removes up to `limit` selected drafts and enqueues `job(draft)` for each, in one
    /// transaction, so every draft is sent or skipped exactly once. Returns them.
    async fn settle_drafts(
        &self,
        workspace: WorkspaceId,
        selection: &DraftSelection,
        limit: u32,
        job: DraftJob<'_>,
        now: Timestamp,
    ) -> StoreResult<Vec<WebhookDraft>>;
}
