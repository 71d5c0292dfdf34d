//! People who log in to the web UI with an email and a password.

use async_trait::async_trait;
use herald_domain::{
    ApiKey, EmailAddress, PasswordHash, Timestamp, TokenHash, UserAccount, UserAccountId, WorkspaceId,
};

use crate::{NewApiKey, StoreResult};

/// What using a one-time login link came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginLinkUse {
    /// The link was good: it is used up now, and this key (in the link's workspace) was made
    /// for the session it opens.
    Redeemed(ApiKey),
    /// Used before.
    Used,
    /// Unused, but past its expiry.
    Expired,
    /// No such link.
    Unknown,
}

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

    /// Records a first-run login link (the hash of its token) for `workspace`, valid until
    /// `expires_at`, unless someone can log in already: an unrevoked API key or a user, in
    /// any workspace. Returns whether it recorded the link.
    async fn create_first_run_link(
        &self,
        workspace: WorkspaceId,
        hash: &TokenHash,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> StoreResult<bool>;

    /// Uses the link with this hash: if it is unused and unexpired, marks it used and creates
    /// `key` in its workspace, in one transaction. Of two uses, even at the same time, one
    /// redeems and the other finds it used.
    async fn redeem_login_link(&self, hash: &TokenHash, key: NewApiKey, now: Timestamp) -> StoreResult<LoginLinkUse>;
}
