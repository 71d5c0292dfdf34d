//! Shared email templates and layouts on SQLite.

use async_trait::async_trait;
use herald_domain::{SavedTemplate, TemplateContent, TemplateId, TemplateKind, Timestamp, WorkspaceId};
use herald_store::template::TemplateStore;
use herald_store::{StoreError, StoreResult, new_uuid};
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Sqlite};

use crate::rows::{corrupt, get, opt_ts, ts, uuid};
use crate::{SqliteStore, Tx, db_error};

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

fn template(row: &SqliteRow) -> StoreResult<SavedTemplate> {
    let kind: String = get(row, "kind")?;
    Ok(SavedTemplate {
        id: TemplateId::from_uuid(uuid(row, "id")?),
        workspace_id: WorkspaceId::from_uuid(uuid(row, "workspace_id")?),
        kind: TemplateKind::parse(&kind).ok_or_else(|| corrupt("kind", kind))?,
        name: get(row, "name")?,
        version: get::<u32>(row, "version")?,
        content: TemplateContent {
            subject: get(row, "subject")?,
            html: get(row, "html")?,
            text: get(row, "text")?,
            layout: get::<Option<uuid::Uuid>>(row, "layout_id")?.map(TemplateId::from_uuid),
        },
        created_at: ts(row, "created_at")?,
        version_created_at: ts(row, "version_created_at")?,
        deleted_at: opt_ts(row, "deleted_at")?,
    })
}

/// Adds version `version` of template `id` and reads it back.
async fn add_version(
    tx: &mut Tx,
    id: uuid::Uuid,
    version: u32,
    name: &str,
    content: &TemplateContent,
    now: Timestamp,
) -> StoreResult<SavedTemplate> {
    sqlx::query(
        "INSERT INTO template_versions (template_id, version, name, subject, html, text, layout_id, created_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(id)
    .bind(version)
    .bind(name)
    .bind(&content.subject)
    .bind(&content.html)
    .bind(content.text.as_deref())
    .bind(content.layout.map(|l| l.as_uuid()))
    .bind(now.unix_millis())
    .execute(&mut **tx)
    .await
    .map_err(db_error)?;
    let row = sqlx::query(select!(" WHERE t.id = ? AND v.version = ?"))
        .bind(id)
        .bind(version)
        .fetch_one(&mut **tx)
        .await
        .map_err(db_error)?;
    template(&row)
}

#[async_trait]
impl TemplateStore for SqliteStore {
    async fn create_template(
        &self,
        workspace: WorkspaceId,
        kind: TemplateKind,
        name: &str,
        content: &TemplateContent,
        now: Timestamp,
    ) -> StoreResult<SavedTemplate> {
        let mut tx = self.write().await?;
        let id = new_uuid(now);
        sqlx::query(
            "INSERT INTO templates (id, workspace_id, kind, name, latest_version, created_at) VALUES (?, ?, ?, ?, 1, ?)",
        )
        .bind(id)
        .bind(workspace.as_uuid())
        .bind(kind.as_str())
        .bind(name)
        .bind(now.unix_millis())
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
        let mut tx = self.write().await?;
        let version: Option<u32> = sqlx::query_scalar(
            "UPDATE templates SET name = ?, latest_version = latest_version + 1 \
             WHERE workspace_id = ? AND id = ? AND deleted_at IS NULL RETURNING latest_version",
        )
        .bind(name)
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
             WHERE t.workspace_id = ? AND t.kind = ? AND t.deleted_at IS NULL ORDER BY v.name, t.id"
        ))
        .bind(workspace.as_uuid())
        .bind(kind.as_str())
        .fetch_all(&self.readers)
        .await
        .map_err(db_error)?;
        rows.iter().map(template).collect()
    }

    async fn template_versions(&self, workspace: WorkspaceId, ids: &[TemplateId]) -> StoreResult<Vec<SavedTemplate>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut query = QueryBuilder::<Sqlite>::new(select!(""));
        query.push(" WHERE t.workspace_id = ").push_bind(workspace.as_uuid()).push(" AND t.id IN (");
        let mut list = query.separated(", ");
        for id in ids {
            list.push_bind(id.as_uuid());
        }
        query.push(") ORDER BY t.id, v.version");
        let rows = query.build().fetch_all(&self.readers).await.map_err(db_error)?;
        rows.iter().map(template).collect()
    }

    async fn delete_template(&self, workspace: WorkspaceId, id: TemplateId, now: Timestamp) -> StoreResult<()> {
        let mut tx = self.write().await?;
        let deleted =
            sqlx::query("UPDATE templates SET deleted_at = ? WHERE workspace_id = ? AND id = ? AND deleted_at IS NULL")
                .bind(now.unix_millis())
                .bind(workspace.as_uuid())
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
