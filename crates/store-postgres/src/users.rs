//! Web UI users on PostgreSQL.

use async_trait::async_trait;
use herald_domain::{EmailAddress, PasswordHash, Timestamp, UserAccount, UserAccountId, WorkspaceId};
use herald_store::user::UserAccountStore;
use herald_store::{StoreError, StoreResult, new_uuid};
use sqlx::postgres::PgRow;

use crate::rows::{get, ts, uuid};
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
}
