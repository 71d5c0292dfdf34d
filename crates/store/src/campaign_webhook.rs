//! Campaign event webhook storage: each campaign's webhooks, with their write-only secrets.
//! The calls they make are ordinary deliveries (`webhook.rs`), tagged with the webhook's id.

use async_trait::async_trait;
use herald_domain::{CampaignId, CampaignWebhook, CampaignWebhookId, WorkspaceId};

use crate::StoreResult;

#[async_trait]
pub trait CampaignWebhookStore {
    /// Stores a new webhook (`hook.id` is the caller's); `NotFound` when the workspace has no
    /// such campaign.
    async fn create_campaign_webhook(&self, hook: &CampaignWebhook) -> StoreResult<CampaignWebhook>;

    /// A campaign's webhooks, or with `campaign` `None` every webhook of the workspace, oldest
    /// first.
    async fn list_campaign_webhooks(
        &self,
        workspace: WorkspaceId,
        campaign: Option<CampaignId>,
    ) -> StoreResult<Vec<CampaignWebhook>>;

    async fn get_campaign_webhook(
        &self,
        workspace: WorkspaceId,
        campaign: CampaignId,
        id: CampaignWebhookId,
    ) -> StoreResult<CampaignWebhook>;

    /// Replaces every field but the ids and `created_at` with `hook`'s.
    async fn update_campaign_webhook(&self, hook: &CampaignWebhook) -> StoreResult<CampaignWebhook>;

    /// Deletes one; its past deliveries stay in the log, still tagged with its id.
    async fn delete_campaign_webhook(
        &self,
        workspace: WorkspaceId,
        campaign: CampaignId,
        id: CampaignWebhookId,
    ) -> StoreResult<()>;
}
