//! Web UI users on PostgreSQL.

use async_trait::async_trait;
use herald_domain::{EmailAddress, PasswordHash, Timestamp, TokenHash, UserAccount, UserAccountId, WorkspaceId};
use herald_store::user::{LoginLinkUse, UserAccountStore};
use herald_store::{NewApiKey, StoreError, StoreResult, new_uuid};
use sqlx::postgres::PgRow;

use crate::rows::{get, opt_ts, ts, uuid};
use crate::workspaces::insert_key;
use crate::{PgStore, db_error, encode};

const NOT_FOUND: StoreError = StoreError::NotFound { entity: "user" };

macro_rules! user_columns {
    () => {
        "id, workspace_id, email, password_hash, created_at, password_changed_at"
    };
}

fn user(row: &PgRow) -> StoreResult<UserAccount> {
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
impl UserAccountStore for PgStore {
    async fn create_user(
        &self,
        workspace: WorkspaceId,
        email: &EmailAddress,
        hash: &PasswordHash,
        now: Timestamp,
    ) -> StoreResult<UserAccount> {
        let row = sqlx::query(concat!(
            "INSERT INTO users (id, workspace_id, email, password_hash, created_at, password_changed_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING ",
            user_columns!()
        ))
        .bind(new_uuid(now))
        .bind(workspace.as_uuid())
        .bind(email.as_str())
        .bind(hash.as_str())
        .bind(encode::ts(now))
        .bind(encode::ts(now))
        .fetch_one(&self.pool)
        .await
        .map_err(db_error)?;
        user(&row)
    }

    async fn user_by_email(&self, workspace: WorkspaceId, email: &EmailAddress) -> StoreResult<Option<UserAccount>> {
        let row =
            sqlx::query(concat!("SELECT ", user_columns!(), " FROM users WHERE workspace_id = $1 AND email = $2"))
                .bind(workspace.as_uuid())
                .bind(email.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(db_error)?;
        row.as_ref().map(user).transpose()
    }

    async fn get_user(&self, workspace: WorkspaceId, id: UserAccountId) -> StoreResult<UserAccount> {
        let row = sqlx::query(concat!("SELECT ", user_columns!(), " FROM users WHERE workspace_id = $1 AND id = $2"))
            .bind(workspace.as_uuid())
            .bind(id.as_uuid())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?;
        user(&row.ok_or(NOT_FOUND)?)
    }

    async fn list_users(&self, workspace: WorkspaceId) -> StoreResult<Vec<UserAccount>> {
        let rows =
            sqlx::query(concat!("SELECT ", user_columns!(), " FROM users WHERE workspace_id = $1 ORDER BY email"))
                .bind(workspace.as_uuid())
                .fetch_all(&self.pool)
                .await
                .map_err(db_error)?;
        rows.iter().map(user).collect()
    }

    async fn delete_user(&self, workspace: WorkspaceId, id: UserAccountId) -> StoreResult<()> {
        let deleted = sqlx::query("DELETE FROM users WHERE workspace_id = $1 AND id = $2")
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

    async fn set_user_password(
        &self,
        workspace: WorkspaceId,
        id: UserAccountId,
        hash: &PasswordHash,
        now: Timestamp,
    ) -> StoreResult<UserAccount> {
        let row = sqlx::query(concat!(
            "UPDATE users SET password_hash = $1, password_changed_at = $2 WHERE workspace_id = $3 AND id = $4 RETURNING ",
            user_columns!()
        ))
        .bind(hash.as_str())
        .bind(encode::ts(now))
        .bind(workspace.as_uuid())
        .bind(id.as_uuid())
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        user(&row.ok_or(NOT_FOUND)?)
    }

    async fn create_first_run_link(
        &self,
        workspace: WorkspaceId,
        hash: &TokenHash,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        // Two nodes starting together may both record a link; each prints its own, and either
        // works once.
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
        sqlx::query("DELETE FROM login_links WHERE expires_at < $1")
            .bind((now - std::time::Duration::from_secs(86_400)).to_offset_date_time())
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        sqlx::query(
            "INSERT INTO login_links (token_hash, workspace_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(hash.as_bytes().as_slice())
        .bind(workspace.as_uuid())
        .bind(now.to_offset_date_time())
        .bind(expires_at.to_offset_date_time())
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        Ok(true)
    }

    async fn redeem_login_link(&self, hash: &TokenHash, key: NewApiKey, now: Timestamp) -> StoreResult<LoginLinkUse> {
        let mut tx = self.begin().await?;
        // The row lock makes a concurrent second use wait here, then see `used_at`.
        let link =
            sqlx::query("SELECT workspace_id, expires_at, used_at FROM login_links WHERE token_hash = $1 FOR UPDATE")
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
        sqlx::query("UPDATE login_links SET used_at = $1 WHERE token_hash = $2")
            .bind(now.to_offset_date_time())
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
