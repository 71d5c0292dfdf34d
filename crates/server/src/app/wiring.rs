//! The named interfaces through which an earlier stage asks a later one, implemented here
//! where every stage is known, so that no slice imports a later one.

use std::sync::Arc;

use herald_campaign::engine::{WebhookOutcome, WebhookRequest};
use herald_domain::{
    CampaignEvent, CampaignId, ContactId, EmailAddress, Journey, NewJob, Timestamp, TopicId, WebhookAttempt,
    WebhookDeliveryId, WebhookDraft, WebhookStatus, WorkspaceId,
};
use herald_store::StoreResult;
use herald_store::webhook::CallRecord;
use serde_json::{Map, Value};

use crate::campaigns::{CallMade, JourneyEmail, JourneyWebhooks};
use crate::contacts::ContactDelivery;
use crate::delivery::email::{self, Email, EmailState};
use crate::delivery::webhooks::campaign_events::{self, Hooks};
use crate::delivery::webhooks::{self, UnsubscribeLinks, Webhooks, WebhooksState};
use crate::web::error::ApiError;

/// Delivery, as the contact page's buttons reach it.
#[derive(Debug)]
pub struct DeliveryForContacts {
    pub email: EmailState,
    pub webhooks: WebhooksState,
}

#[async_trait::async_trait]
impl ContactDelivery for DeliveryForContacts {
    async fn suppress(
        &self,
        workspace: WorkspaceId,
        email: &EmailAddress,
        reason: String,
        detail: Option<String>,
    ) -> Result<(), ApiError> {
        email::service::suppress(&self.email, workspace, email, reason, detail).await?;
        Ok(())
    }

    async fn run_action(&self, workspace: WorkspaceId, action: &str, contact: ContactId) -> Result<String, ApiError> {
        webhooks::service::run_action(&self.webhooks, workspace, action, contact, None).await
    }
}

#[async_trait::async_trait]
impl UnsubscribeLinks for Email {
    async fn unsubscribe_url(&self, workspace: WorkspaceId, contact: ContactId) -> StoreResult<String> {
        Email::unsubscribe_url(self, workspace, contact, None).await
    }
}

#[async_trait::async_trait]
impl JourneyEmail for Email {
    async fn unsubscribe_url(
        &self,
        workspace: WorkspaceId,
        contact: ContactId,
        topic: Option<TopicId>,
    ) -> StoreResult<String> {
        Email::unsubscribe_url(self, workspace, contact, topic).await
    }

    fn sends_smtp(&self, workspace_smtp: bool) -> bool {
        Email::sends_smtp(self, workspace_smtp)
    }

    fn list_headers(&self, unsubscribe_url: &str, from_address: &str) -> Map<String, Value> {
        email::list_headers(unsubscribe_url, from_address)
    }
}

/// Outbound webhooks, as journeys and campaign events reach them.
#[derive(Debug)]
pub struct WebhooksForCampaigns {
    pub webhooks: Arc<Webhooks>,
    /// Each campaign's event webhooks, briefly cached for the journey runner.
    pub hooks: Hooks,
}

#[async_trait::async_trait]
impl JourneyWebhooks for WebhooksForCampaigns {
    async fn call_now(
        &self,
        journey: &Journey,
        index: u32,
        step: &str,
        request: WebhookRequest,
    ) -> StoreResult<CallMade> {
        let call = self.webhooks.call_now(journey, index, step, request).await?;
        let (record, jobs, result) = (call.record.clone(), call.jobs.clone(), call.result.clone());
        let webhooks = self.webhooks.clone();
        let recorded = Box::pin(async move { call.recorded(&webhooks).await });
        Ok(CallMade { record, jobs, result, recorded })
    }

    fn call_job(&self, journey: &Journey, index: u32, step: &str, request: WebhookRequest, now: Timestamp) -> NewJob {
        webhooks::call_job(journey, index, step, request, now)
    }

    fn draft(
        &self,
        journey: &Journey,
        index: u32,
        step: &str,
        request: WebhookRequest,
        now: Timestamp,
    ) -> WebhookDraft {
        webhooks::draft(journey, index, step, request, now)
    }

    fn draft_step_index(&self, draft: &WebhookDraft) -> Option<u32> {
        webhooks::draft_step_index(draft)
    }

    fn unrendered_call(
        &self,
        journey: &Journey,
        step: &str,
        method: &str,
        url: Option<&str>,
        reason: &str,
        now: Timestamp,
    ) -> CallRecord {
        webhooks::unrendered_call(journey, step, method, url, reason, now)
    }

    fn failed_call_data(
        &self,
        delivery: WebhookDeliveryId,
        step: &str,
        url: Option<&str>,
        status: WebhookStatus,
        last: &WebhookAttempt,
    ) -> Value {
        webhooks::failed_call_data(delivery, step, url, status, last)
    }

    fn outcome(&self, status: WebhookStatus) -> Option<WebhookOutcome> {
        webhooks::outcome(status)
    }

    async fn event_jobs(&self, event: &CampaignEvent<'_>, now: Timestamp) -> StoreResult<Vec<NewJob>> {
        let hooks = self.hooks.of(event.contact.workspace_id, event.campaign_id).await?;
        Ok(campaign_events::jobs(&hooks, event, now))
    }

    fn forget_hooks(&self, workspace: WorkspaceId, campaign: CampaignId) {
        self.hooks.forget(workspace, campaign);
    }
}
