//! Workspaces and API keys on PostgreSQL.
//!
//! The two "create unless present" use cases must stay correct when several processes start
//! at once, which SQLite gets for free from its single writer: the default workspace is
//! inserted with `ON CONFLICT DO NOTHING`, and bootstrap-key installation locks its
//! workspace row first.

use async_trait::async_trait;
use herald_domain::{
    ApiKey, ApiKeyId, ApiKeyName, Page, PageRequest, Timestamp, TokenHash, Workspace, WorkspaceId, WorkspaceName,
};
use herald_store::{NewApiKey, Principal, StoreError, StoreResult, WorkspaceStore, new_uuid};
use uuid::Uuid;

use crate::rows::{self, uuid};
use crate::{PgStore, Tx, db_error};

/// The columns `rows::api_key` reads, for `concat!` into the queries below.
macro_rules! key_columns {
    () => {
        "id, workspace_id, name, hint, created_at, revoked_at"
    };
}

async fn insert_workspace(tx: &mut Tx, name: &WorkspaceName, now: Timestamp) -> StoreResult<Workspace> {
    let id = WorkspaceId::from_uuid(new_uuid(now));
    sqlx::query("INSERT INTO workspaces (id, name, created_at) VALUES ($1, $2, $3)")
        .bind(id.as_uuid())
        .bind(name.as_str())
        .bind(now.to_offset_date_time())
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
        "INSERT INTO api_keys (id, workspace_id, name, hint, key_hash, bootstrap, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(id.as_uuid())
    .bind(workspace.as_uuid())
    .bind(key.name.as_str())
    .bind(&key.hint)
    .bind(key.hash.as_bytes().as_slice())
    .bind(bootstrap)
    .bind(now.to_offset_date_time())
    .execute(&mut **tx)
    .await
    .map_err(db_error)?;
    Ok(ApiKey { id, workspace_id: workspace, name: key.name, hint: key.hint, created_at: now, revoked_at: None })
}

#[async_trait]
impl WorkspaceStore for PgStore {
    async fn ensure_default_workspace(&self, now: Timestamp) -> StoreResult<Workspace> {
        let name = WorkspaceName::default_name();
        let mut tx = self.begin().await?;
        // Two processes starting together may both find no default workspace. `ON CONFLICT`
        // makes the later insert wait for the earlier one and then do nothing, instead of
        // failing on `workspaces_name`; the SELECT (a new snapshot under READ COMMITTED)
        // then reads whichever row won.
        sqlx::query(
            "INSERT INTO workspaces (id, name, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(new_uuid(now))
        .bind(name.as_str())
        .bind(now.to_offset_date_time())
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        let row = sqlx::query("SELECT id, name, timezone, created_at FROM workspaces WHERE name = $1")
            .bind(name.as_str())
            .fetch_one(&mut *tx)
            .await
            .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        rows::workspace(&row)
    }

    async fn create_workspace(&self, name: &WorkspaceName, now: Timestamp) -> StoreResult<Workspace> {
        let mut tx = self.begin().await?;
        let workspace = insert_workspace(&mut tx, name, now).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(workspace)
    }

    async fn workspace_by_name(&self, name: &WorkspaceName) -> StoreResult<Option<Workspace>> {
        sqlx::query("SELECT id, name, timezone, created_at FROM workspaces WHERE name = $1")
            .bind(name.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?
            .map(|row| rows::workspace(&row))
            .transpose()
    }

    async fn get_workspace(&self, id: WorkspaceId) -> StoreResult<Workspace> {
        let row = sqlx::query("SELECT id, name, timezone, created_at FROM workspaces WHERE id = $1")
            .bind(id.as_uuid())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?
            .ok_or(StoreError::NotFound { entity: "workspace" })?;
        rows::workspace(&row)
    }

    async fn set_workspace_timezone(&self, id: WorkspaceId, timezone: Option<&str>) -> StoreResult<Workspace> {
        let row =
            sqlx::query("UPDATE workspaces SET timezone = $1 WHERE id = $2 RETURNING id, name, timezone, created_at")
                .bind(timezone.map(crate::encode::text))
                .bind(id.as_uuid())
                .fetch_optional(&self.pool)
                .await
                .map_err(db_error)?
                .ok_or(StoreError::NotFound { entity: "workspace" })?;
        rows::workspace(&row)
    }

    async fn list_workspaces(&self) -> StoreResult<Vec<Workspace>> {
        sqlx::query("SELECT id, name, timezone, created_at FROM workspaces ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?
            .iter()
            .map(rows::workspace)
            .collect()
    }

    async fn create_api_key(&self, workspace: WorkspaceId, key: NewApiKey, now: Timestamp) -> StoreResult<ApiKey> {
        let mut tx = self.begin().await?;
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
        let mut tx = self.begin().await?;
        // Serialise installations per workspace: otherwise two processes starting with the
        // same token would both find no key and the second insert would fail on
        // `api_keys_key_hash`, and two with different tokens could leave two live bootstrap
        // keys. `FOR NO KEY UPDATE` conflicts only with itself (and deletes), so ordinary key
        // inserts, whose foreign key check takes `FOR KEY SHARE`, do not wait for it.
        sqlx::query("SELECT 1 FROM workspaces WHERE id = $1 FOR NO KEY UPDATE")
            .bind(workspace.as_uuid())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_error)?
            .ok_or(StoreError::NotFound { entity: "workspace" })?;
        let current = sqlx::query(concat!(
            "SELECT ",
            key_columns!(),
            " FROM api_keys WHERE workspace_id = $1 AND key_hash = $2 AND bootstrap AND revoked_at IS NULL"
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
                    "UPDATE api_keys SET revoked_at = $1 \
                     WHERE workspace_id = $2 AND bootstrap AND revoked_at IS NULL",
                )
                .bind(now.to_offset_date_time())
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
        let row = sqlx::query("SELECT id, workspace_id FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL")
            .bind(hash.as_bytes().as_slice())
            .fetch_optional(&self.pool)
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
        // `uuid` compares bytewise, like SQLite's BLOB, so UUIDv7 ids page in creation order.
        let after = page.after.map_or(Uuid::nil(), |id| id.as_uuid());
        let rows = sqlx::query(concat!(
            "SELECT ",
            key_columns!(),
            " FROM api_keys WHERE workspace_id = $1 AND id > $2 ORDER BY id LIMIT $3"
        ))
        .bind(workspace.as_uuid())
        .bind(after)
        .bind(i64::from(page.limit) + 1)
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        let keys = rows.iter().map(rows::api_key).collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::from_overfetch(keys, page.limit, |k| k.id))
    }

    async fn get_api_key(&self, workspace: WorkspaceId, id: ApiKeyId) -> StoreResult<ApiKey> {
        let row = sqlx::query(concat!("SELECT ", key_columns!(), " FROM api_keys WHERE workspace_id = $1 AND id = $2"))
            .bind(workspace.as_uuid())
            .bind(id.as_uuid())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?
            .ok_or(StoreError::NotFound { entity: "api key" })?;
        rows::api_key(&row)
    }

    async fn revoke_api_key(&self, workspace: WorkspaceId, id: ApiKeyId, now: Timestamp) -> StoreResult<ApiKey> {
        let mut tx = self.begin().await?;
        let row = sqlx::query(concat!(
            "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $1) ",
            "WHERE workspace_id = $2 AND id = $3 RETURNING ",
            key_columns!()
        ))
        .bind(now.to_offset_date_time())
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
