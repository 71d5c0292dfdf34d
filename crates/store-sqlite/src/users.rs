//! Web UI users on SQLite.

use async_trait::async_trait;
use herald_domain::{EmailAddress, PasswordHash, Timestamp, UserAccount, UserAccountId, WorkspaceId};
use herald_store::user::UserAccountStore;
use herald_store::{StoreError, StoreResult, new_uuid};
use sqlx::sqlite::SqliteRow;

use crate::rows::{get, ts, uuid};
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
}
