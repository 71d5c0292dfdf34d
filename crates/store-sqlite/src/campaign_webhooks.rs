//! Campaign event webhooks on SQLite.

use async_trait::async_trait;
use herald_domain::{CampaignId, CampaignWebhook, CampaignWebhookId, WorkspaceId};
use herald_store::campaign_webhook::CampaignWebhookStore;
use herald_store::secrets::{SecretKeys, columns};
use herald_store::{StoreError, StoreResult};
use sqlx::query::Query;
use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::{QueryBuilder, Sqlite};

use crate::rows::{corrupt, get, ts, uuid};
use crate::{SqliteStore, db_error};

const NOT_FOUND: StoreError = StoreError::NotFound { entity: "campaign webhook" };

fn hook(row: &SqliteRow, keys: &SecretKeys) -> StoreResult<CampaignWebhook> {
    let events: String = get(row, "events")?;
    let payload: Option<String> = get(row, "payload")?;
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
        events: serde_json::from_str(&events).map_err(|e| corrupt("events", e))?,
        payload: payload.map(|p| serde_json::from_str(&p)).transpose().map_err(|e| corrupt("payload", e))?,
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

/// Binds [`fields!`] in order.
fn bind_fields<'q>(
    query: Query<'q, Sqlite, SqliteArguments>,
    hook: &'q CampaignWebhook,
    stored: &'q Stored,
) -> Query<'q, Sqlite, SqliteArguments> {
    query
        .bind(&hook.url)
        .bind(hook.content_type.as_str())
        .bind(hook.method.as_str())
        .bind(hook.basic_auth.as_ref().map(|(user, _)| user))
        .bind(&stored.password)
        .bind(&stored.secret)
        .bind(hook.log_response_body)
        .bind(hook.active)
        .bind(&stored.events)
        .bind(&stored.payload)
        .bind(hook.updated_at.unix_millis())
}

/// The stored forms of the JSON columns and of the sealed secrets.
struct Stored {
    events: String,
    payload: Option<String>,
    password: Option<String>,
    secret: Option<String>,
}

fn encoded(hook: &CampaignWebhook, keys: &SecretKeys) -> StoreResult<Stored> {
    let events = serde_json::to_string(&hook.events).map_err(|e| StoreError::Other(Box::new(e)))?;
    let payload =
        hook.payload.as_ref().map(serde_json::to_string).transpose().map_err(|e| StoreError::Other(Box::new(e)))?;
    let password = hook.basic_auth.as_ref().map(|(_, password)| keys.seal_text(columns::HOOK_PASSWORD, password));
    let secret = hook.secret.as_ref().map(|secret| keys.seal_text(columns::HOOK_SECRET, secret));
    Ok(Stored { events, payload, password, secret })
}

#[async_trait]
impl CampaignWebhookStore for SqliteStore {
    async fn create_campaign_webhook(&self, new: &CampaignWebhook) -> StoreResult<CampaignWebhook> {
        let columns = encoded(new, &self.secrets)?;
        let mut tx = self.write().await?;
        let inserted = bind_fields(
            sqlx::query(concat!(
                "INSERT INTO campaign_webhooks (",
                fields!(),
                ", id, created_at, workspace_id, campaign_id) \
                 SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, workspace_id, id FROM campaigns \
                 WHERE workspace_id = ? AND id = ?"
            )),
            new,
            &columns,
        )
        .bind(new.id.as_uuid())
        .bind(new.created_at.unix_millis())
        .bind(new.workspace_id.as_uuid())
        .bind(new.campaign_id.as_uuid())
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        if inserted.rows_affected() == 0 {
            return Err(StoreError::NotFound { entity: "campaign" });
        }
        tx.commit().await.map_err(db_error)?;
        self.get_campaign_webhook(new.workspace_id, new.campaign_id, new.id).await
    }

    async fn list_campaign_webhooks(
        &self,
        workspace: WorkspaceId,
        campaign: Option<CampaignId>,
    ) -> StoreResult<Vec<CampaignWebhook>> {
        let mut query = QueryBuilder::<Sqlite>::new("SELECT * FROM campaign_webhooks WHERE workspace_id = ");
        query.push_bind(workspace.as_uuid());
        if let Some(campaign) = campaign {
            query.push(" AND campaign_id = ").push_bind(campaign.as_uuid());
        }
        query.push(" ORDER BY id");
        let rows = query.build().fetch_all(&self.readers).await.map_err(db_error)?;
        rows.iter().map(|row| hook(row, &self.secrets)).collect()
    }

    async fn get_campaign_webhook(
        &self,
        workspace: WorkspaceId,
        campaign: CampaignId,
        id: CampaignWebhookId,
    ) -> StoreResult<CampaignWebhook> {
        let row = sqlx::query("SELECT * FROM campaign_webhooks WHERE workspace_id = ? AND campaign_id = ? AND id = ?")
            .bind(workspace.as_uuid())
            .bind(campaign.as_uuid())
            .bind(id.as_uuid())
            .fetch_optional(&self.readers)
            .await
            .map_err(db_error)?
            .ok_or(NOT_FOUND)?;
        hook(&row, &self.secrets)
    }

    async fn update_campaign_webhook(&self, new: &CampaignWebhook) -> StoreResult<CampaignWebhook> {
        let columns = encoded(new, &self.secrets)?;
        let mut tx = self.write().await?;
        let updated = bind_fields(
            sqlx::query(concat!(
                "UPDATE campaign_webhooks SET (",
                fields!(),
                ") = (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) WHERE workspace_id = ? AND campaign_id = ? AND id = ?"
            )),
            new,
            &columns,
        )
        .bind(new.workspace_id.as_uuid())
        .bind(new.campaign_id.as_uuid())
        .bind(new.id.as_uuid())
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        if updated.rows_affected() == 0 {
            return Err(NOT_FOUND);
        }
        tx.commit().await.map_err(db_error)?;
        self.get_campaign_webhook(new.workspace_id, new.campaign_id, new.id).await
    }

    async fn delete_campaign_webhook(
        &self,
        workspace: WorkspaceId,
        campaign: CampaignId,
        id: CampaignWebhookId,
    ) -> StoreResult<()> {
        let mut tx = self.write().await?;
        let deleted =
            sqlx::query("DELETE FROM campaign_webhooks WHERE workspace_id = ? AND campaign_id = ? AND id = ?")
                .bind(workspace.as_uuid())
                .bind(campaign.as_uuid())
                .bind(id.as_uuid())
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
        if deleted.rows_affected() == 0 {
            return Err(NOT_FOUND);
        }
        tx.commit().await.map_err(db_error)
    }
}
