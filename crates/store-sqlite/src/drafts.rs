//! Webhook calls held at draft steps, on SQLite.

use async_trait::async_trait;
use herald_domain::{
    CampaignId, ContactId, DraftId, JourneyId, Page, PageRequest, Timestamp, WebhookDraft, WorkspaceId,
};
use herald_store::StoreResult;
use herald_store::secrets::{Document, SecretKeys, columns};
use herald_store::webhook::{DraftJob, DraftSelection, DraftStore};
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Sqlite};

use crate::jobs::insert_jobs;
use crate::rows::{corrupt, document, get, ts, uuid};
use crate::{SqliteStore, db_error};

const COLUMNS: &str = "id, workspace_id, journey_id, campaign_id, contact_id, step, request, call, created_at";

fn draft(row: &SqliteRow, keys: &SecretKeys) -> StoreResult<WebhookDraft> {
    let json = |column| serde_json::from_str(&get::<String>(row, column)?).map_err(|e| corrupt(column, e));
    Ok(WebhookDraft {
        id: DraftId::from_uuid(uuid(row, "id")?),
        workspace_id: WorkspaceId::from_uuid(uuid(row, "workspace_id")?),
        journey_id: JourneyId::from_uuid(uuid(row, "journey_id")?),
        campaign_id: CampaignId::from_uuid(uuid(row, "campaign_id")?),
        contact_id: ContactId::from_uuid(uuid(row, "contact_id")?),
        step: get(row, "step")?,
        request: json("request")?,
        call: document(row, "call", keys, Document::Call, columns::DRAFT_CALL)?,
        created_at: ts(row, "created_at")?,
    })
}

/// A draft whose journey is still running: one whose journey ended (exited at a goal, its
/// campaign archived, its contact deleted) is never shown or sent.
const LIVE: &str = "EXISTS (SELECT 1 FROM journeys j WHERE j.id = webhook_drafts.journey_id AND j.status = 'active')";

/// `WHERE …` for a selection, oldest first after `after`.
fn select(query: &mut QueryBuilder<Sqlite>, workspace: WorkspaceId, s: &DraftSelection, after: Option<DraftId>) {
    query.push(" FROM webhook_drafts WHERE workspace_id = ").push_bind(workspace.as_uuid());
    if !s.ids.is_empty() {
        query.push(" AND id IN (");
        let mut list = query.separated(", ");
        for id in &s.ids {
            list.push_bind(id.as_uuid());
        }
        query.push(")");
    }
    if let Some(campaign) = s.campaign {
        query.push(" AND campaign_id = ").push_bind(campaign.as_uuid());
    }
    if let Some(step) = &s.step {
        query.push(" AND step = ").push_bind(step.clone());
    }
    if let Some(after) = after {
        query.push(" AND id > ").push_bind(after.as_uuid());
    }
    query.push(format!(" AND {LIVE} ORDER BY id"));
}

#[async_trait]
impl DraftStore for SqliteStore {
    async fn list_drafts(
        &self,
        workspace: WorkspaceId,
        selection: &DraftSelection,
        page: PageRequest<DraftId>,
    ) -> StoreResult<Page<WebhookDraft>> {
        let mut query = QueryBuilder::<Sqlite>::new(format!("SELECT {COLUMNS}"));
        select(&mut query, workspace, selection, page.after);
        query.push(" LIMIT ").push_bind(i64::from(page.limit) + 1);
        let rows = query.build().fetch_all(&self.readers).await.map_err(db_error)?;
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
        let mut tx = self.write().await?;
        let mut query = QueryBuilder::<Sqlite>::new("DELETE FROM webhook_drafts WHERE id IN (SELECT id");
        select(&mut query, workspace, selection, None);
        query.push(" LIMIT ").push_bind(i64::from(limit)).push(format!(") RETURNING {COLUMNS}"));
        let rows = query.build().fetch_all(&mut *tx).await.map_err(db_error)?;
        let mut drafts = rows.iter().map(|row| draft(row, &self.secrets)).collect::<StoreResult<Vec<_>>>()?;
        drafts.sort_by_key(|d| d.id.as_uuid());
        let jobs: Vec<_> = drafts.iter().map(job).collect();
        insert_jobs(&mut tx, workspace, &jobs, now).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM webhook_drafts WHERE workspace_id = ? AND NOT {LIVE}")))
            .bind(workspace.as_uuid())
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        Ok(drafts)
    }
}
