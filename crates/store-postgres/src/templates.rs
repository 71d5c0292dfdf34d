//! Shared email templates and layouts on PostgreSQL.

use async_trait::async_trait;
use herald_domain::{SavedTemplate, TemplateContent, TemplateId, TemplateKind, Timestamp, WorkspaceId};
use herald_store::template::TemplateStore;
use herald_store::{StoreError, StoreResult, new_uuid};
use sqlx::postgres::PgRow;
use uuid::Uuid;

use crate::rows::{corrupt, get, opt_ts, ts, uuid};
use crate::{PgStore, Tx, db_error, encode};

const NOT_FOUND: StoreError = StoreError::NotFound { entity: "template" };

/// A template's row joined with one of its versions (`v`), then `$rest`.
macro_rules! select {
    ($rest:literal) => {
        concat!(
            "SELECT t.id, t.workspace_id, t.kind, t.created_at, t.deleted_at, v.version, v.name, v.subject, \
             v.html, v.text, v.layout_id, v.created_at AS version_created_at \
             FROM templates t JOIN template_versions v ON v.template_id = t.id",
            $rest
        )
    };
}

fn template(row: &PgRow) -> StoreResult<SavedTemplate> {
    let kind: String = get(row, "kind")?;
    let version: i32 = get(row, "version")?;
    Ok(SavedTemplate {
        id: TemplateId::from_uuid(uuid(row, "id")?),
        workspace_id: WorkspaceId::from_uuid(uuid(row, "workspace_id")?),
        kind: TemplateKind::parse(&kind).ok_or_else(|| corrupt("kind", kind))?,
        name: get(row, "name")?,
        version: u32::try_from(version).map_err(|e| corrupt("version", e))?,
        content: TemplateContent {
            subject: get(row, "subject")?,
            html: get(row, "html")?,
            text: get(row, "text")?,
            layout: get::<Option<Uuid>>(row, "layout_id")?.map(TemplateId::from_uuid),
        },
        created_at: ts(row, "created_at")?,
        version_created_at: ts(row, "version_created_at")?,
        deleted_at: opt_ts(row, "deleted_at")?,
    })
}

/// Adds version `version` of template `id` and reads it back.
async fn add_version(
    tx: &mut Tx,
    id: Uuid,
    version: i32,
    name: &str,
    content: &TemplateContent,
    now: Timestamp,
) -> StoreResult<SavedTemplate> {
    sqlx::query(
        "INSERT INTO template_versions (template_id, version, name, subject, html, text, layout_id, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(id)
    .bind(version)
    .bind(encode::text(name))
    .bind(encode::text(&content.subject))
    .bind(encode::text(&content.html))
    .bind(content.text.as_deref().map(encode::text))
    .bind(content.layout.map(|l| l.as_uuid()))
    .bind(encode::ts(now))
    .execute(&mut **tx)
    .await
    .map_err(db_error)?;
    let row = sqlx::query(select!(" WHERE t.id = $1 AND v.version = $2"))
        .bind(id)
        .bind(version)
        .fetch_one(&mut **tx)
        .await
        .map_err(db_error)?;
    template(&row)
}

#[async_trait]
impl TemplateStore for PgStore {
    async fn create_template(
        &self,
        workspace: WorkspaceId,
        kind: TemplateKind,
        name: &str,
        content: &TemplateContent,
        now: Timestamp,
    ) -> StoreResult<SavedTemplate> {
        let mut tx = self.begin().await?;
        let id = new_uuid(now);
        sqlx::query(
            "INSERT INTO templates (id, workspace_id, kind, name, latest_version, created_at) \
             VALUES ($1, $2, $3, $4, 1, $5)",
        )
        .bind(id)
        .bind(workspace.as_uuid())
        .bind(kind.as_str())
        .bind(encode::text(name))
        .bind(encode::ts(now))
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        let created = add_version(&mut tx, id, 1, name, content, now).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(created)
    }

    async fn update_template(
        &self,
        workspace: WorkspaceId,
        id: TemplateId,
        name: &str,
        content: &TemplateContent,
        now: Timestamp,
    ) -> StoreResult<SavedTemplate> {
        let mut tx = self.begin().await?;
        // The row lock taken here orders concurrent edits: each gets its own version number.
        let version: Option<i32> = sqlx::query_scalar(
            "UPDATE templates SET name = $1, latest_version = latest_version + 1 \
             WHERE workspace_id = $2 AND id = $3 AND deleted_at IS NULL RETURNING latest_version",
        )
        .bind(encode::text(name))
        .bind(workspace.as_uuid())
        .bind(id.as_uuid())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_error)?;
        let updated = add_version(&mut tx, id.as_uuid(), version.ok_or(NOT_FOUND)?, name, content, now).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(updated)
    }

    async fn list_templates(&self, workspace: WorkspaceId, kind: TemplateKind) -> StoreResult<Vec<SavedTemplate>> {
        let rows = sqlx::query(select!(
            " AND v.version = t.latest_version \
             WHERE t.workspace_id = $1 AND t.kind = $2 AND t.deleted_at IS NULL ORDER BY v.name, t.id"
        ))
        .bind(workspace.as_uuid())
        .bind(kind.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        rows.iter().map(template).collect()
    }

    async fn template_versions(&self, workspace: WorkspaceId, ids: &[TemplateId]) -> StoreResult<Vec<SavedTemplate>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<Uuid> = ids.iter().map(|id| id.as_uuid()).collect();
        let rows = sqlx::query(select!(" WHERE t.workspace_id = $1 AND t.id = ANY($2) ORDER BY t.id, v.version"))
            .bind(workspace.as_uuid())
            .bind(&ids)
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        rows.iter().map(template).collect()
    }

    async fn delete_template(&self, workspace: WorkspaceId, id: TemplateId, now: Timestamp) -> StoreResult<()> {
        let deleted = sqlx::query(
            "UPDATE templates SET deleted_at = $1 WHERE workspace_id = $2 AND id = $3 AND deleted_at IS NULL",
        )
        .bind(encode::ts(now))
        .bind(workspace.as_uuid())
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
