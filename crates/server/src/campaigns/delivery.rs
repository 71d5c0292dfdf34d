//! What campaigns ask of the delivery stage, named here so that campaigns import no delivery
//! code: a journey's email step needs the contact's unsubscribe link, whether messages go to
//! a relay or the outbox, and the headers a message carries; its webhook step makes the call
//! at once or leaves it to a delivery job, holds it as a draft, or records one that could not
//! be rendered; and campaign events become calls of the campaign's event webhooks.
//! `app::wiring` implements both for the delivery slices.

use futures::future::BoxFuture;
use herald_campaign::engine::{WebhookOutcome, WebhookRequest, WebhookResult};
use herald_domain::{
    CampaignEvent, CampaignId, ContactId, Journey, NewJob, Timestamp, TopicId, WebhookAttempt, WebhookDeliveryId,
    WebhookDraft, WebhookStatus, WorkspaceId,
};
use herald_store::StoreResult;
use herald_store::webhook::CallRecord;
use serde_json::{Map, Value};

/// Email, as journeys reach it.
#[async_trait::async_trait]
pub trait JourneyEmail: Send + Sync + std::fmt::Debug + 'static {
    /// The link to `contact`'s preference page in mail about `topic` (`{{ unsubscribe_url }}`
    /// and `List-Unsubscribe`).
    async fn unsubscribe_url(
        &self,
        workspace: WorkspaceId,
        contact: ContactId,
        topic: Option<TopicId>,
    ) -> StoreResult<String>;

    /// Whether messages of a workspace (with or without an SMTP transport of its own) are
    /// queued for a relay rather than handed to the outbox.
    fn sends_smtp(&self, workspace_smtp: bool) -> bool;

    /// The headers a message carries besides the usual ones, as its record shows them.
    fn list_headers(&self, unsubscribe_url: &str, from_address: &str) -> Map<String, Value>;
}

/// Outbound webhooks, as journeys and campaign events reach them.
#[async_trait::async_trait]
pub trait JourneyWebhooks: Send + Sync + std::fmt::Debug + 'static {
    /// Makes the call of a journey waiting at webhook node `index` (step `step`) at once: its
    /// first attempt, and what the step commits with it.
    async fn call_now(
        &self,
        journey: &Journey,
        index: u32,
        step: &str,
        request: WebhookRequest,
    ) -> StoreResult<CallMade>;

    /// The delivery job that makes the call of a journey waiting at webhook node `index`.
    fn call_job(&self, journey: &Journey, index: u32, step: &str, request: WebhookRequest, now: Timestamp) -> NewJob;

    /// The draft of a journey held at webhook node `index`: the call it would make, kept until
    /// someone sends or skips it.
    fn draft(&self, journey: &Journey, index: u32, step: &str, request: WebhookRequest, now: Timestamp)
    -> WebhookDraft;

    /// The webhook node index a draft's call resumes its journey at when the draft is
    /// skipped; `None` when the call does not read as a journey's (it is then sent, and fails
    /// in the delivery log).
    fn draft_step_index(&self, draft: &WebhookDraft) -> Option<u32>;

    /// The record of a journey's call whose request could not be rendered at step `step`.
    fn unrendered_call(
        &self,
        journey: &Journey,
        step: &str,
        method: &str,
        url: Option<&str>,
        reason: &str,
        now: Timestamp,
    ) -> CallRecord;

    /// The `data` of a `webhook_failed` campaign event.
    fn failed_call_data(
        &self,
        delivery: WebhookDeliveryId,
        step: &str,
        url: Option<&str>,
        status: WebhookStatus,
        last: &WebhookAttempt,
    ) -> Value;

    /// How a finished call ended, as the journey that waited for it sees it; `None` while it
    /// is pending.
    fn outcome(&self, status: WebhookStatus) -> Option<WebhookOutcome>;

    /// The calls of the campaign's event webhooks that listen to `event`.
    async fn event_jobs(&self, event: &CampaignEvent<'_>, now: Timestamp) -> StoreResult<Vec<NewJob>>;

    /// Forgets a campaign's event webhooks (one changed through this node's API).
    fn forget_hooks(&self, workspace: WorkspaceId, campaign: CampaignId);
}

/// A journey's call made as its step ran ([`JourneyWebhooks::call_now`]).
pub struct CallMade {
    /// The delivery and its first attempt, for the step's commit.
    pub record: CallRecord,
    /// Jobs the step's commit enqueues: the retry, or the `webhook_failed` events.
    pub jobs: Vec<NewJob>,
    /// How the call ended; `None` while it waits for a retry.
    pub result: Option<WebhookResult>,
    /// What follows the attempt (the endpoint's state noted; a recovered endpoint's waiting
    /// retries released): awaited once the step's commit holds the attempt, and doing nothing
    /// until then.
    pub recorded: BoxFuture<'static, StoreResult<()>>,
}

impl std::fmt::Debug for CallMade {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallMade")
            .field("record", &self.record)
            .field("jobs", &self.jobs)
            .field("result", &self.result)
            .finish_non_exhaustive()
    }
}
