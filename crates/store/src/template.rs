//! Shared email templates and layouts: every edit a new immutable version, all kept.

use async_trait::async_trait;
use herald_domain::{SavedTemplate, TemplateContent, TemplateId, TemplateKind, Timestamp, WorkspaceId};

use crate::StoreResult;

#[async_trait]
pub trait TemplateStore {
    /// Creates a template or layout at version 1. Names are unique per workspace and kind
    /// among those not deleted (`Conflict` named `templates_kind_name`).
    async fn create_template(
        &self,
        workspace: WorkspaceId,
        kind: TemplateKind,
        name: &str,
        content: &TemplateContent,
        now: Timestamp,
    ) -> StoreResult<SavedTemplate>;

    /// Adds the next version with this name and content (`NotFound` once deleted;
    /// `Conflict` named `templates_kind_name` for a name another one has).
    async fn update_template(
        &self,
        workspace: WorkspaceId,
        id: TemplateId,
        name: &str,
        content: &TemplateContent,
        now: Timestamp,
    ) -> StoreResult<SavedTemplate>;

    /// The latest version of each of the workspace's templates of `kind` not deleted, by name.
    async fn list_templates(&self, workspace: WorkspaceId, kind: TemplateKind) -> StoreResult<Vec<SavedTemplate>>;

    /// Every version of the given templates (deleted ones included: journeys still use them),
    /// by id then version; ids not in the workspace are left out.
    async fn template_versions(&self, workspace: WorkspaceId, ids: &[TemplateId]) -> StoreResult<Vec<SavedTemplate>>;

    /// Marks a template deleted (`NotFound` if it is not there or already deleted).
    async fn delete_template(&self, workspace: WorkspaceId, id: TemplateId, now: Timestamp) -> StoreResult<()>;
}
