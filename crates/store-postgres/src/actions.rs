//! Saved webhook actions on PostgreSQL.

use async_trait::async_trait;
use herald_domain::{ActionId, SavedAction, Timestamp, WorkspaceId};
use herald_store::action::ActionStore;
use herald_store::secrets::{SecretKeys, columns};
use herald_store::{StoreError, StoreResult, new_uuid};
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use uuid::Uuid;

use crate::rows::{corrupt, get, opt_ts, ts, uuid};
use crate::{PgStore, db_error, encode};

const NOT_FOUND: StoreError = StoreError::NotFound { entity: "action" };

macro_rules! action_columns {
    () => {
        "id, workspace_id, name, definition, created_at, updated_at, deleted_at"
    };
}

/// A definition as stored: sealed, as a JSON string (the column is `jsonb`).
pub(crate) fn seal_definition(keys: &SecretKeys, definition: &Value) -> Json<Value> {
    Json(Value::String(keys.seal_text(columns::ACTION_DEFINITION, &definition.to_string())))
}

/// A stored definition opened; one stored before secrets were sealed is the object itself.
pub(crate) fn open_definition(keys: &SecretKeys, stored: Value) -> StoreResult<Value> {
    match stored {
        Value::String(sealed) => serde_json::from_str(&keys.open_text(columns::ACTION_DEFINITION, &sealed)?)
            .map_err(|e| corrupt("definition", e)),
        clear => Ok(clear),
    }
}

fn action(row: &PgRow, keys: &SecretKeys) -> StoreResult<SavedAction> {
    Ok(SavedAction {
        id: ActionId::from_uuid(uuid(row, "id")?),
        workspace_id: WorkspaceId::from_uuid(uuid(row, "workspace_id")?),
        name: get(row, "name")?,
        definition: open_definition(keys, get::<Json<Value>>(row, "definition")?.0)?,
        created_at: ts(row, "created_at")?,
        updated_at: ts(row, "updated_at")?,
        deleted_at: opt_ts(row, "deleted_at")?,
    })
}

#[async_trait]
impl ActionStore for PgStore {
    async fn create_action(
        &self,
        workspace: WorkspaceId,
        name: &str,
        definition: &Value,
        now: Timestamp,
    ) -> StoreResult<SavedAction> {
        let row = sqlx::query(concat!(
            "INSERT INTO actions (id, workspace_id, name, definition, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $5) RETURNING ",
            action_columns!()
        ))
        .bind(new_uuid(now))
        .bind(workspace.as_uuid())
        .bind(encode::text(name))
        .bind(seal_definition(&self.secrets, definition))
        .bind(encode::ts(now))
        .fetch_one(&self.pool)
        .await
        .map_err(db_error)?;
        action(&row, &self.secrets)
    }

    async fn list_actions(&self, workspace: WorkspaceId) -> StoreResult<Vec<SavedAction>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            action_columns!(),
            " FROM actions WHERE workspace_id = $1 AND deleted_at IS NULL ORDER BY name"
        ))
        .bind(workspace.as_uuid())
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        rows.iter().map(|row| action(row, &self.secrets)).collect()
    }

    async fn actions_by_ids(&self, workspace: WorkspaceId, ids: &[ActionId]) -> StoreResult<Vec<SavedAction>> {
        let ids: Vec<Uuid> = ids.iter().map(|id| id.as_uuid()).collect();
        let rows = sqlx::query(concat!(
            "SELECT ",
            action_columns!(),
            " FROM actions WHERE workspace_id = $1 AND id = ANY($2)"
        ))
        .bind(workspace.as_uuid())
        .bind(&ids)
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
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
        let row = sqlx::query(concat!(
            "UPDATE actions SET name = $1, definition = $2, updated_at = $3 \
             WHERE workspace_id = $4 AND id = $5 AND deleted_at IS NULL RETURNING ",
            action_columns!()
        ))
        .bind(encode::text(name))
        .bind(seal_definition(&self.secrets, definition))
        .bind(encode::ts(now))
        .bind(workspace.as_uuid())
        .bind(id.as_uuid())
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        action(&row.ok_or(NOT_FOUND)?, &self.secrets)
    }

    async fn delete_action(&self, workspace: WorkspaceId, id: ActionId, now: Timestamp) -> StoreResult<()> {
        let deleted = sqlx::query(
            "UPDATE actions SET deleted_at = $1 WHERE workspace_id = $2 AND id = $3 AND deleted_at IS NULL",
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
