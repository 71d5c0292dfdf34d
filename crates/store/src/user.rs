//! People who log in to the web UI with an email and a password.

use async_trait::async_trait;
use herald_domain::{EmailAddress, PasswordHash, Timestamp, UserAccount, UserAccountId, WorkspaceId};

use crate::StoreResult;

#[async_trait]
pub trait UserAccountStore {
    /// Fails with `Conflict { constraint: "users_email" }` when the workspace already has a
    /// user with this email.
    async fn create_user(
        &self,
        workspace: WorkspaceId,
        email: &EmailAddress,
        hash: &PasswordHash,
        now: Timestamp,
    ) -> StoreResult<UserAccount>;

    async fn user_by_email(&self, workspace: WorkspaceId, email: &EmailAddress) -> StoreResult<Option<UserAccount>>;

    async fn get_user(&self, workspace: WorkspaceId, id: UserAccountId) -> StoreResult<UserAccount>;

    /// Ordered by email.
    async fn list_users(&self, workspace: WorkspaceId) -> StoreResult<Vec<UserAccount>>;

    /// Removes the user; their sessions end, as they no longer find their user.
    async fn delete_user(&self, workspace: WorkspaceId, id: UserAccountId) -> StoreResult<()>;

    /// Replaces the password hash and sets `password_changed_at`; sessions signed over the old
    /// hash end.
    async fn set_user_password(
        &self,
        workspace: WorkspaceId,
        id: UserAccountId,
        hash: &PasswordHash,
        now: Timestamp,
    ) -> StoreResult<UserAccount>;
}
