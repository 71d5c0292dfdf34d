//! Campaign event webhooks on PostgreSQL.

use async_trait::async_trait;
use herald_domain::{CampaignEventKind, CampaignId, CampaignWebhook, CampaignWebhookId, PayloadMapping, WorkspaceId};
use herald_store::campaign_webhook::CampaignWebhookStore;
use herald_store::secrets::{SecretKeys, columns};
use herald_store::{StoreError, StoreResult};
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::Query;
use sqlx::types::Json;
use sqlx::{Postgres, QueryBuilder};

use crate::rows::{corrupt, get, ts, uuid};
use crate::{PgStore, db_error, encode};

const NOT_FOUND: StoreError = StoreError::NotFound { entity: "campaign webhook" };

fn hook(row: &PgRow, keys: &SecretKeys) -> StoreResult<CampaignWebhook> {
    let username: Option<String> = get(row, "username")?;
    let password: Option<String> = get(row, "password")?;
    let password = password.map(|p| keys.open_text(columns::HOOK_PASSWORD, &p)).transpose()?;
    let secret: Option<String> = get(row, "secret")?;
    Ok(CampaignWebhook {
        id: CampaignWebhookId::from_uuid(uuid(row, "id")?),
        workspace_id: WorkspaceId::from_uuid(uuid(row, "workspace_id")?),
        campaign_id: CampaignId::from_uuid(uuid(row, "campaign_id")?),
        url: get(row, "url")?,
        content_type: get::<String>(row, "content_type")?.parse().map_err(|e: String| corrupt("content_type", e))?,
        method: get::<String>(row, "method")?.parse().map_err(|e: String| corrupt("method", e))?,
        basic_auth: username.map(|user| (user, password.unwrap_or_default())),
        secret: secret.map(|s| keys.open_text(columns::HOOK_SECRET, &s)).transpose()?,
        log_response_body: get(row, "log_response_body")?,
        active: get(row, "active")?,
        events: get::<Json<Vec<CampaignEventKind>>>(row, "events")?.0,
        payload: get::<Option<Json<PayloadMapping>>>(row, "payload")?.map(|p| p.0),
        created_at: ts(row, "created_at")?,
        updated_at: ts(row, "updated_at")?,
    })
}

/// The columns a create and an update both write, in this order.
macro_rules! fields {
    () => {
        "url, content_type, method, username, password, secret, log_response_body, active, events, payload, updated_at"
    };
}

/// Binds [`fields!`] as `$1` to `$11`, the secrets sealed.
fn bind_fields<'q>(
    query: Query<'q, Postgres, PgArguments>,
    hook: &'q CampaignWebhook,
    keys: &SecretKeys,
) -> Query<'q, Postgres, PgArguments> {
    query
        .bind(encode::text(&hook.url))
        .bind(hook.content_type.as_str())
        .bind(hook.method.as_str())
        .bind(encode::opt_text(hook.basic_auth.as_ref().map(|(user, _)| user.as_str())))
        .bind(hook.basic_auth.as_ref().map(|(_, password)| keys.seal_text(columns::HOOK_PASSWORD, password)))
        .bind(hook.secret.as_ref().map(|secret| keys.seal_text(columns::HOOK_SECRET, secret)))
        .bind(hook.log_response_body)
        .bind(hook.active)
        .bind(Json(&hook.events))
        .bind(hook.payload.as_ref().map(Json))
        .bind(encode::ts(hook.updated_at))
}

#[async_trait]
impl CampaignWebhookStore for PgStore {
    async fn create_campaign_webhook(&self, new: &CampaignWebhook) -> StoreResult<CampaignWebhook> {
        let inserted = bind_fields(
            sqlx::query(concat!(
                "INSERT INTO campaign_webhooks (",
                fields!(),
                ", id, created_at, workspace_id, campaign_id) \
                 SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, workspace_id, id FROM campaigns \
                 WHERE workspace_id = $14 AND id = $15"
            )),
            new,
            &self.secrets,
        )
        .bind(new.id.as_uuid())
        .bind(encode::ts(new.created_at))
        .bind(new.workspace_id.as_uuid())
        .bind(new.campaign_id.as_uuid())
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        if inserted.rows_affected() == 0 {
            return Err(StoreError::NotFound { entity: "campaign" });
        }
        self.get_campaign_webhook(new.workspace_id, new.campaign_id, new.id).await
    }

    async fn list_campaign_webhooks(
        &self,
        workspace: WorkspaceId,
        campaign: Option<CampaignId>,
    ) -> StoreResult<Vec<CampaignWebhook>> {
        let mut query = QueryBuilder::<Postgres>::new("SELECT * FROM campaign_webhooks WHERE workspace_id = ");
        query.push_bind(workspace.as_uuid());
        if let Some(campaign) = campaign {
            query.push(" AND campaign_id = ").push_bind(campaign.as_uuid());
        }
        query.push(" ORDER BY id");
        let rows = query.build().fetch_all(&self.pool).await.map_err(db_error)?;
        rows.iter().map(|row| hook(row, &self.secrets)).collect()
    }

    async fn get_campaign_webhook(
        &self,
        workspace: WorkspaceId,
        campaign: CampaignId,
        id: CampaignWebhookId,
    ) -> StoreResult<CampaignWebhook> {
        let row =
            sqlx::query("SELECT * FROM campaign_webhooks WHERE workspace_id = $1 AND campaign_id = $2 AND id = $3")
                .bind(workspace.as_uuid())
                .bind(campaign.as_uuid())
                .bind(id.as_uuid())
                .fetch_optional(&self.pool)
                .await
                .map_err(db_error)?
                .ok_or(NOT_FOUND)?;
        hook(&row, &self.secrets)
    }

    async fn update_campaign_webhook(&self, new: &CampaignWebhook) -> StoreResult<CampaignWebhook> {
        let updated = bind_fields(
            sqlx::query(concat!(
                "UPDATE campaign_webhooks SET (",
                fields!(),
                ") = ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                 WHERE workspace_id = $12 AND campaign_id = $13 AND id = $14"
            )),
            new,
            &self.secrets,
        )
        .bind(new.workspace_id.as_uuid())
        .bind(new.campaign_id.as_uuid())
        .bind(new.id.as_uuid())
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        if updated.rows_affected() == 0 {
            return Err(NOT_FOUND);
        }
        self.get_campaign_webhook(new.workspace_id, new.campaign_id, new.id).await
    }

    async fn delete_campaign_webhook(
        &self,
        workspace: WorkspaceId,
        campaign: CampaignId,
        id: CampaignWebhookId,
    ) -> StoreResult<()> {
        let deleted =
            sqlx::query("DELETE FROM campaign_webhooks WHERE workspace_id = $1 AND campaign_id = $2 AND id = $3")
                .bind(workspace.as_uuid())
                .bind(campaign.as_uuid())
                .bind(id.as_uuid())
                .execute(&self.pool)
                .await
                .map_err(db_error)?;
        if deleted.rows_affected() == 0 {
            return Err(NOT_FOUND);
        }
        Ok(())
    }
}
