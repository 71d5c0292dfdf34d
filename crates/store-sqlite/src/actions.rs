//! Saved webhook actions on SQLite.

use async_trait::async_trait;
use herald_domain::{ActionId, SavedAction, Timestamp, WorkspaceId};
use herald_store::action::ActionStore;
use herald_store::secrets::{SecretKeys, columns};
use herald_store::{StoreError, StoreResult, new_uuid};
use serde_json::Value;
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Sqlite};

use crate::rows::{corrupt, get, opt_ts, ts, uuid};
use crate::{SqliteStore, db_error};

const NOT_FOUND: StoreError = StoreError::NotFound { entity: "action" };

macro_rules! action_columns {
    () => {
        "id, workspace_id, name, definition, created_at, updated_at, deleted_at"
    };
}

fn action(row: &SqliteRow, keys: &SecretKeys) -> StoreResult<SavedAction> {
    let definition = keys.open_text(columns::ACTION_DEFINITION, &get::<String>(row, "definition")?)?;
    Ok(SavedAction {
        id: ActionId::from_uuid(uuid(row, "id")?),
        workspace_id: WorkspaceId::from_uuid(uuid(row, "workspace_id")?),
        name: get(row, "name")?,
        definition: serde_json::from_str(&definition).map_err(|e| corrupt("definition", e))?,
        created_at: ts(row, "created_at")?,
        updated_at: ts(row, "updated_at")?,
        deleted_at: opt_ts(row, "deleted_at")?,
    })
}

#[async_trait]
impl ActionStore for SqliteStore {
    async fn create_action(
        &self,
        workspace: WorkspaceId,
        name: &str,
        definition: &Value,
        now: Timestamp,
    ) -> StoreResult<SavedAction> {
        let mut tx = self.write().await?;
        let row = sqlx::query(concat!(
            "INSERT INTO actions (id, workspace_id, name, definition, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?) RETURNING ",
            action_columns!()
        ))
        .bind(new_uuid(now))
        .bind(workspace.as_uuid())
        .bind(name)
        .bind(self.secrets.seal_text(columns::ACTION_DEFINITION, &definition.to_string()))
        .bind(now.unix_millis())
        .bind(now.unix_millis())
        .fetch_one(&mut *tx)
        .await
        .map_err(db_error)?;
        let created = action(&row, &self.secrets)?;
        tx.commit().await.map_err(db_error)?;
        Ok(created)
    }

    async fn list_actions(&self, workspace: WorkspaceId) -> StoreResult<Vec<SavedAction>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            action_columns!(),
            " FROM actions WHERE workspace_id = ? AND deleted_at IS NULL ORDER BY name"
        ))
        .bind(workspace.as_uuid())
        .fetch_all(&self.readers)
        .await
        .map_err(db_error)?;
        rows.iter().map(|row| action(row, &self.secrets)).collect()
    }

    async fn actions_by_ids(&self, workspace: WorkspaceId, ids: &[ActionId]) -> StoreResult<Vec<SavedAction>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut query =
            QueryBuilder::<Sqlite>::new(concat!("SELECT ", action_columns!(), " FROM actions WHERE workspace_id = "));
        query.push_bind(workspace.as_uuid()).push(" AND id IN (");
        let mut list = query.separated(", ");
        for id in ids {
            list.push_bind(id.as_uuid());
        }
        query.push(")");
        let rows = query.build().fetch_all(&self.readers).await.map_err(db_error)?;
        rows.iter().map(|row| action(row, &self.secrets)).collect()
    }

    async fn update_action(
        &self,
        workspace: WorkspaceId,
        id: ActionId,
        name: &str,
        definition: &Value,
        now: Timestamp,
    ) -> StoreResult<SavedAction> {
        let mut tx = self.write().await?;
        let row = sqlx::query(concat!(
            "UPDATE actions SET name = ?, definition = ?, updated_at = ? \
             WHERE workspace_id = ? AND id = ? AND deleted_at IS NULL RETURNING ",
            action_columns!()
        ))
        .bind(name)
        .bind(self.secrets.seal_text(columns::ACTION_DEFINITION, &definition.to_string()))
        .bind(now.unix_millis())
        .bind(workspace.as_uuid())
        .bind(id.as_uuid())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_error)?;
        let updated = action(&row.ok_or(NOT_FOUND)?, &self.secrets)?;
        tx.commit().await.map_err(db_error)?;
        Ok(updated)
    }

    async fn delete_action(&self, workspace: WorkspaceId, id: ActionId, now: Timestamp) -> StoreResult<()> {
        let mut tx = self.write().await?;
        let deleted =
            sqlx::query("UPDATE actions SET deleted_at = ? WHERE workspace_id = ? AND id = ? AND deleted_at IS NULL")
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
