//! Webhook calls held at draft steps, on PostgreSQL.

use async_trait::async_trait;
use herald_domain::{
    CampaignId, ContactId, DraftId, JourneyId, Page, PageRequest, Timestamp, WebhookDraft, WorkspaceId,
};
use herald_store::StoreResult;
use herald_store::secrets::{Document, SecretKeys, columns};
use herald_store::webhook::{DraftJob, DraftSelection, DraftStore};
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::{Postgres, QueryBuilder};
use uuid::Uuid;

use crate::jobs::insert_jobs;
use crate::rows::{document, get, ts, uuid};
use crate::{PgStore, db_error, encode};

const COLUMNS: &str = "id, workspace_id, journey_id, campaign_id, contact_id, step, request, call, created_at";

fn draft(row: &PgRow, keys: &SecretKeys) -> StoreResult<WebhookDraft> {
    Ok(WebhookDraft {
        id: DraftId::from_uuid(uuid(row, "id")?),
        workspace_id: WorkspaceId::from_uuid(uuid(row, "workspace_id")?),
        journey_id: JourneyId::from_uuid(uuid(row, "journey_id")?),
        campaign_id: CampaignId::from_uuid(uuid(row, "campaign_id")?),
        contact_id: ContactId::from_uuid(uuid(row, "contact_id")?),
        step: get(row, "step")?,
        request: get::<Json<Value>>(row, "request")?.0,
        call: document(row, "call", keys, Document::Call, columns::DRAFT_CALL)?,
        created_at: ts(row, "created_at")?,
    })
}

/// A draft whose journey is still running: one whose journey ended (exited at a goal, its
/// campaign archived, its contact deleted) is never shown or sent.
const LIVE: &str = "EXISTS (SELECT 1 FROM journeys j WHERE j.id = webhook_drafts.journey_id AND j.status = 'active')";

/// `WHERE …` for a selection, oldest first after `after`.
fn select(query: &mut QueryBuilder<Postgres>, workspace: WorkspaceId, s: &DraftSelection, after: Option<DraftId>) {
    query.push(" FROM webhook_drafts WHERE workspace_id = ").push_bind(workspace.as_uuid());
    if !s.ids.is_empty() {
        query.push(" AND id = ANY(").push_bind(s.ids.iter().map(|id| id.as_uuid()).collect::<Vec<Uuid>>()).push(")");
    }
    if let Some(campaign) = s.campaign {
        query.push(" AND campaign_id = ").push_bind(campaign.as_uuid());
    }
    if let Some(step) = &s.step {
        query.push(" AND step = ").push_bind(encode::text(step).into_owned());
    }
    if let Some(after) = after {
        query.push(" AND id > ").push_bind(after.as_uuid());
    }
    query.push(format!(" AND {LIVE} ORDER BY id"));
}

#[async_trait]
impl DraftStore for PgStore {
    async fn list_drafts(
        &self,
        workspace: WorkspaceId,
        selection: &DraftSelection,
        page: PageRequest<DraftId>,
    ) -> StoreResult<Page<WebhookDraft>> {
        let mut query = QueryBuilder::<Postgres>::new(format!("SELECT {COLUMNS}"));
        select(&mut query, workspace, selection, page.after);
        query.push(" LIMIT ").push_bind(i64::from(page.limit) + 1);
        let rows = query.build().fetch_all(&self.pool).await.map_err(db_error)?;
        let items = rows.iter().map(|row| draft(row, &self.secrets)).collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::from_overfetch(items, page.limit, |d| d.id))
    }

    async fn settle_drafts(
        &self,
        workspace: WorkspaceId,
        selection: &DraftSelection,
        limit: u32,
        job: DraftJob<'_>,
        now: Timestamp,
    ) -> StoreResult<Vec<WebhookDraft>> {
        let mut tx = self.begin().await?;
        // Two people settling the same drafts at once: each draft goes to exactly one of them.
        let mut query = QueryBuilder::<Postgres>::new("DELETE FROM webhook_drafts WHERE id IN (SELECT id");
        select(&mut query, workspace, selection, None);
        query.push(" LIMIT ").push_bind(i64::from(limit)).push(format!(" FOR UPDATE SKIP LOCKED) RETURNING {COLUMNS}"));
        let rows = query.build().fetch_all(&mut *tx).await.map_err(db_error)?;
        let mut drafts = rows.iter().map(|row| draft(row, &self.secrets)).collect::<StoreResult<Vec<_>>>()?;
        drafts.sort_by_key(|d| d.id.as_uuid());
        let jobs: Vec<_> = drafts.iter().map(job).collect();
        insert_jobs(&mut tx, workspace, &jobs, now).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM webhook_drafts WHERE workspace_id = $1 AND NOT {LIVE}")))
            .bind(workspace.as_uuid())
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        Ok(drafts)
    }
}
