//! Web UI users on SQLite.

use async_trait::async_trait;
use herald_domain::{EmailAddress, PasswordHash, Timestamp, TokenHash, UserAccount, UserAccountId, WorkspaceId};
use herald_store::user::{LoginLinkUse, UserAccountStore};
use herald_store::{NewApiKey, StoreError, StoreResult, new_uuid};
use sqlx::sqlite::SqliteRow;

use crate::rows::{get, opt_ts, ts, uuid};
use crate::workspaces::insert_key;
use crate::{SqliteStore, db_error};

const NOT_FOUND: StoreError = StoreError::NotFound { entity: "user" };

macro_rules! user_columns {
    () => {
        "id, workspace_id, email, password_hash, created_at, password_changed_at"
    };
}

fn user(row: &SqliteRow) -> StoreResult<UserAccount> {
    Ok(UserAccount {
        id: UserAccountId::from_uuid(uuid(row, "id")?),
        workspace_id: WorkspaceId::from_uuid(uuid(row, "workspace_id")?),
        email: EmailAddress::from_stored(get(row, "email")?),
        password_hash: PasswordHash::from_phc(get(row, "password_hash")?),
        created_at: ts(row, "created_at")?,
        password_changed_at: ts(row, "password_changed_at")?,
    })
}

#[async_trait]
impl UserAccountStore for SqliteStore {
    async fn create_user(
        &self,
        workspace: WorkspaceId,
        email: &EmailAddress,
        hash: &PasswordHash,
        now: Timestamp,
    ) -> StoreResult<UserAccount> {
        let mut tx = self.write().await?;
        let row = sqlx::query(concat!(
            "INSERT INTO users (id, workspace_id, email, password_hash, created_at, password_changed_at) \
             VALUES (?, ?, ?, ?, ?, ?) RETURNING ",
            user_columns!()
        ))
        .bind(new_uuid(now))
        .bind(workspace.as_uuid())
        .bind(email.as_str())
        .bind(hash.as_str())
        .bind(now.unix_millis())
        .bind(now.unix_millis())
        .fetch_one(&mut *tx)
        .await
        .map_err(db_error)?;
        let created = user(&row)?;
        tx.commit().await.map_err(db_error)?;
        Ok(created)
    }

    async fn user_by_email(&self, workspace: WorkspaceId, email: &EmailAddress) -> StoreResult<Option<UserAccount>> {
        let row = sqlx::query(concat!("SELECT ", user_columns!(), " FROM users WHERE workspace_id = ? AND email = ?"))
            .bind(workspace.as_uuid())
            .bind(email.as_str())
            .fetch_optional(&self.readers)
            .await
            .map_err(db_error)?;
        row.as_ref().map(user).transpose()
    }

    async fn get_user(&self, workspace: WorkspaceId, id: UserAccountId) -> StoreResult<UserAccount> {
        let row = sqlx::query(concat!("SELECT ", user_columns!(), " FROM users WHERE workspace_id = ? AND id = ?"))
            .bind(workspace.as_uuid())
            .bind(id.as_uuid())
            .fetch_optional(&self.readers)
            .await
            .map_err(db_error)?;
        user(&row.ok_or(NOT_FOUND)?)
    }

    async fn list_users(&self, workspace: WorkspaceId) -> StoreResult<Vec<UserAccount>> {
        let rows =
            sqlx::query(concat!("SELECT ", user_columns!(), " FROM users WHERE workspace_id = ? ORDER BY email"))
                .bind(workspace.as_uuid())
                .fetch_all(&self.readers)
                .await
                .map_err(db_error)?;
        rows.iter().map(user).collect()
    }

    async fn delete_user(&self, workspace: WorkspaceId, id: UserAccountId) -> StoreResult<()> {
        let mut tx = self.write().await?;
        let deleted = sqlx::query("DELETE FROM users WHERE workspace_id = ? AND id = ?")
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

    async fn set_user_password(
        &self,
        workspace: WorkspaceId,
        id: UserAccountId,
        hash: &PasswordHash,
        now: Timestamp,
    ) -> StoreResult<UserAccount> {
        let mut tx = self.write().await?;
        let row = sqlx::query(concat!(
            "UPDATE users SET password_hash = ?, password_changed_at = ? WHERE workspace_id = ? AND id = ? RETURNING ",
            user_columns!()
        ))
        .bind(hash.as_str())
        .bind(now.unix_millis())
        .bind(workspace.as_uuid())
        .bind(id.as_uuid())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_error)?;
        let updated = user(&row.ok_or(NOT_FOUND)?)?;
        tx.commit().await.map_err(db_error)?;
        Ok(updated)
    }

    async fn create_first_run_link(
        &self,
        workspace: WorkspaceId,
        hash: &TokenHash,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let mut tx = self.write().await?;
        let someone: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM api_keys WHERE revoked_at IS NULL) OR EXISTS (SELECT 1 FROM users)",
        )
        .fetch_one(&mut *tx)
        .await
        .map_err(db_error)?;
        if someone {
            return Ok(false);
        }
        // Links from earlier starts are useless a day after they expired.
        sqlx::query("DELETE FROM login_links WHERE expires_at < ?")
            .bind(now.unix_millis() - 86_400_000)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        sqlx::query("INSERT INTO login_links (token_hash, workspace_id, created_at, expires_at) VALUES (?, ?, ?, ?)")
            .bind(hash.as_bytes().as_slice())
            .bind(workspace.as_uuid())
            .bind(now.unix_millis())
            .bind(expires_at.unix_millis())
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        Ok(true)
    }

    async fn redeem_login_link(&self, hash: &TokenHash, key: NewApiKey, now: Timestamp) -> StoreResult<LoginLinkUse> {
        let mut tx = self.write().await?;
        let link = sqlx::query("SELECT workspace_id, expires_at, used_at FROM login_links WHERE token_hash = ?")
            .bind(hash.as_bytes().as_slice())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_error)?;
        let Some(link) = link else { return Ok(LoginLinkUse::Unknown) };
        if opt_ts(&link, "used_at")?.is_some() {
            return Ok(LoginLinkUse::Used);
        }
        if ts(&link, "expires_at")? <= now {
            return Ok(LoginLinkUse::Expired);
        }
        sqlx::query("UPDATE login_links SET used_at = ? WHERE token_hash = ?")
            .bind(now.unix_millis())
            .bind(hash.as_bytes().as_slice())
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        let workspace = WorkspaceId::from_uuid(uuid(&link, "workspace_id")?);
        let key = insert_key(&mut tx, workspace, key, false, now).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(LoginLinkUse::Redeemed(key))
    }
}
