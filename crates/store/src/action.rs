//! Saved webhook actions: named requests that campaign steps refer to and that can be run for
//! one contact.

use async_trait::async_trait;
use herald_domain::{ActionId, SavedAction, Timestamp, WorkspaceId};
use serde_json::Value;

use crate::StoreResult;

#[async_trait]
pub trait ActionStore {
    /// Names are unique among a workspace's actions that are not deleted (`Conflict` named
    /// `actions_name`).
    async fn create_action(
        &self,
        workspace: WorkspaceId,
        name: &str,
        definition: &Value,
        now: Timestamp,
    ) -> StoreResult<SavedAction>;

    /// The workspace's actions that are not deleted, by name.
    async fn list_actions(&self, workspace: WorkspaceId) -> StoreResult<Vec<SavedAction>>;

    /// Actions by id, deleted ones included (journeys on older campaign versions still run
    /// them); ids not in the workspace are left out.
    async fn actions_by_ids(&self, workspace: WorkspaceId, ids: &[ActionId]) -> StoreResult<Vec<SavedAction>>;

    /// Replaces an action's name and definition (`NotFound` once deleted).
    async fn update_action(
        &self,
        workspace: WorkspaceId,
        id: ActionId,
        name: &str,
        definition: &Value,
        now: Timestamp,
    ) -> StoreResult<SavedAction>;

    /// Marks an action deleted (`NotFound` if it is not there or already deleted).
    async fn delete_action(&self, workspace: WorkspaceId, id: ActionId, now: Timestamp) -> StoreResult<()>;
}
