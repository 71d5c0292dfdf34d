//! Workspaces and API keys on SQLite.

use async_trait::async_trait;
use herald_domain::{
    ApiKey, ApiKeyId, ApiKeyName, Page, PageRequest, Timestamp, TokenHash, Workspace, WorkspaceId, WorkspaceName,
};
use herald_store::{NewApiKey, Principal, StoreError, StoreResult, WorkspaceStore, new_uuid};

use uuid::Uuid;

use crate::rows::{self, uuid};
use crate::{SqliteStore, Tx, db_error};

/// The columns `rows::api_key` reads, for `concat!` into the queries below.
macro_rules! key_columns {
    () => {
        "id, workspace_id, name, hint, created_at, revoked_at"
    };
}

async fn insert_workspace(tx: &mut Tx, name: &WorkspaceName, now: Timestamp) -> StoreResult<Workspace> {
    let id = WorkspaceId::from_uuid(new_uuid(now));
    sqlx::query("INSERT INTO workspaces (id, name, created_at) VALUES (?, ?, ?)")
        .bind(id.as_uuid())
        .bind(name.as_str())
        .bind(now.unix_millis())
        .execute(&mut **tx)
        .await
        .map_err(db_error)?;
    Ok(Workspace { id, name: name.clone(), timezone: None, created_at: now })
}

pub(crate) async fn insert_key(
    tx: &mut Tx,
    workspace: WorkspaceId,
    key: NewApiKey,
    bootstrap: bool,
    now: Timestamp,
) -> StoreResult<ApiKey> {
    let id = ApiKeyId::from_uuid(new_uuid(now));
    sqlx::query(
        "INSERT INTO api_keys (id, workspace_id, name, hint, key_hash, bootstrap, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(id.as_uuid())
    .bind(workspace.as_uuid())
    .bind(key.name.as_str())
    .bind(&key.hint)
    .bind(key.hash.as_bytes().as_slice())
    .bind(bootstrap)
    .bind(now.unix_millis())
    .execute(&mut **tx)
    .await
    .map_err(db_error)?;
    Ok(ApiKey { id, workspace_id: workspace, name: key.name, hint: key.hint, created_at: now, revoked_at: None })
}

#[async_trait]
impl WorkspaceStore for SqliteStore {
    async fn ensure_default_workspace(&self, now: Timestamp) -> StoreResult<Workspace> {
        let name = WorkspaceName::default_name();
        let mut tx = self.write().await?;
        let existing = sqlx::query("SELECT id, name, timezone, created_at FROM workspaces WHERE name = ?")
            .bind(name.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_error)?;
        let workspace = match existing {
            Some(row) => rows::workspace(&row)?,
            None => insert_workspace(&mut tx, &name, now).await?,
        };
        tx.commit().await.map_err(db_error)?;
        Ok(workspace)
    }

    async fn create_workspace(&self, name: &WorkspaceName, now: Timestamp) -> StoreResult<Workspace> {
        let mut tx = self.write().await?;
        let workspace = insert_workspace(&mut tx, name, now).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(workspace)
    }

    async fn workspace_by_name(&self, name: &WorkspaceName) -> StoreResult<Option<Workspace>> {
        sqlx::query("SELECT id, name, timezone, created_at FROM workspaces WHERE name = ?")
            .bind(name.as_str())
            .fetch_optional(&self.readers)
            .await
            .map_err(db_error)?
            .map(|row| rows::workspace(&row))
            .transpose()
    }

    async fn get_workspace(&self, id: WorkspaceId) -> StoreResult<Workspace> {
        let row = sqlx::query("SELECT id, name, timezone, created_at FROM workspaces WHERE id = ?")
            .bind(id.as_uuid())
            .fetch_optional(&self.readers)
            .await
            .map_err(db_error)?
            .ok_or(StoreError::NotFound { entity: "workspace" })?;
        rows::workspace(&row)
    }

    async fn set_workspace_timezone(&self, id: WorkspaceId, timezone: Option<&str>) -> StoreResult<Workspace> {
        let mut tx = self.write().await?;
        let row =
            sqlx::query("UPDATE workspaces SET timezone = ? WHERE id = ? RETURNING id, name, timezone, created_at")
                .bind(timezone)
                .bind(id.as_uuid())
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_error)?
                .ok_or(StoreError::NotFound { entity: "workspace" })?;
        tx.commit().await.map_err(db_error)?;
        rows::workspace(&row)
    }

    async fn list_workspaces(&self) -> StoreResult<Vec<Workspace>> {
        sqlx::query("SELECT id, name, timezone, created_at FROM workspaces ORDER BY id")
            .fetch_all(&self.readers)
            .await
            .map_err(db_error)?
            .iter()
            .map(rows::workspace)
            .collect()
    }

    async fn create_api_key(&self, workspace: WorkspaceId, key: NewApiKey, now: Timestamp) -> StoreResult<ApiKey> {
        let mut tx = self.write().await?;
        let key = insert_key(&mut tx, workspace, key, false, now).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(key)
    }

    async fn install_bootstrap_key(
        &self,
        workspace: WorkspaceId,
        hash: TokenHash,
        now: Timestamp,
    ) -> StoreResult<ApiKey> {
        let mut tx = self.write().await?;
        let current = sqlx::query(concat!(
            "SELECT ",
            key_columns!(),
            " FROM api_keys WHERE workspace_id = ? AND key_hash = ? AND bootstrap = 1 AND revoked_at IS NULL"
        ))
        .bind(workspace.as_uuid())
        .bind(hash.as_bytes().as_slice())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_error)?;
        let key = match current {
            Some(row) => rows::api_key(&row)?,
            None => {
                sqlx::query(
                    "UPDATE api_keys SET revoked_at = ? WHERE workspace_id = ? AND bootstrap = 1 AND revoked_at IS NULL",
                )
                .bind(now.unix_millis())
                .bind(workspace.as_uuid())
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
                let name = ApiKeyName::parse("HERALD_ADMIN_TOKEN").map_err(|e| StoreError::Corrupt(e.to_string()))?;
                let new = NewApiKey { name, hash, hint: "from HERALD_ADMIN_TOKEN".to_owned() };
                insert_key(&mut tx, workspace, new, true, now).await?
            }
        };
        tx.commit().await.map_err(db_error)?;
        Ok(key)
    }

    async fn authenticate(&self, hash: &TokenHash) -> StoreResult<Option<Principal>> {
        let row = sqlx::query("SELECT id, workspace_id FROM api_keys WHERE key_hash = ? AND revoked_at IS NULL")
            .bind(hash.as_bytes().as_slice())
            .fetch_optional(&self.readers)
            .await
            .map_err(db_error)?;
        row.map(|row| {
            Ok(Principal {
                workspace_id: WorkspaceId::from_uuid(uuid(&row, "workspace_id")?),
                api_key_id: ApiKeyId::from_uuid(uuid(&row, "id")?),
            })
        })
        .transpose()
    }

    async fn list_api_keys(&self, workspace: WorkspaceId, page: PageRequest<ApiKeyId>) -> StoreResult<Page<ApiKey>> {
        let after = page.after.map_or(Uuid::nil(), |id| id.as_uuid());
        let rows = sqlx::query(concat!(
            "SELECT ",
            key_columns!(),
            " FROM api_keys WHERE workspace_id = ? AND id > ? ORDER BY id LIMIT ?"
        ))
        .bind(workspace.as_uuid())
        .bind(after)
        .bind(i64::from(page.limit) + 1)
        .fetch_all(&self.readers)
        .await
        .map_err(db_error)?;
        let keys = rows.iter().map(rows::api_key).collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::from_overfetch(keys, page.limit, |k| k.id))
    }

    async fn get_api_key(&self, workspace: WorkspaceId, id: ApiKeyId) -> StoreResult<ApiKey> {
        let row = sqlx::query(concat!("SELECT ", key_columns!(), " FROM api_keys WHERE workspace_id = ? AND id = ?"))
            .bind(workspace.as_uuid())
            .bind(id.as_uuid())
            .fetch_optional(&self.readers)
            .await
            .map_err(db_error)?
            .ok_or(StoreError::NotFound { entity: "api key" })?;
        rows::api_key(&row)
    }

    async fn revoke_api_key(&self, workspace: WorkspaceId, id: ApiKeyId, now: Timestamp) -> StoreResult<ApiKey> {
        let mut tx = self.write().await?;
        let row = sqlx::query(concat!(
            "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE workspace_id = ? AND id = ? RETURNING ",
            key_columns!(),
            ""
        ))
        .bind(now.unix_millis())
        .bind(workspace.as_uuid())
        .bind(id.as_uuid())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_error)?
        .ok_or(StoreError::NotFound { entity: "api key" })?;
        tx.commit().await.map_err(db_error)?;
        rows::api_key(&row)
    }
}
