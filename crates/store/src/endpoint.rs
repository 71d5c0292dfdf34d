//! The health of outbound webhook endpoints: failing since when, disabled or not.

use async_trait::async_trait;
use herald_domain::{EndpointHealth, EndpointId, Event, Timestamp, WorkspaceId};

use crate::StoreResult;

#[async_trait]
pub trait EndpointStore {
    /// Records a failed attempt: the endpoint is failing since `now` unless it already was.
    /// Returns its health.
    async fn endpoint_failed(
        &self,
        workspace: WorkspaceId,
        endpoint: &str,
        now: Timestamp,
    ) -> StoreResult<EndpointHealth>;

    /// Records a successful attempt: the endpoint is not failing.
    async fn endpoint_succeeded(&self, workspace: WorkspaceId, endpoint: &str, now: Timestamp) -> StoreResult<()>;

    /// Disables the endpoint if it is still failing since `failing_since` (no success came in
    /// between) and not disabled yet, and then records `event` (`endpoint_disabled`) in the
    /// event log in the same transaction; returns whether this call disabled it.
    async fn disable_endpoint(
        &self,
        workspace: WorkspaceId,
        endpoint: &str,
        failing_since: Timestamp,
        reason: &str,
        event: &Event,
    ) -> StoreResult<bool>;

    /// Every endpoint the workspace has called, failing and disabled ones first.
    async fn list_endpoints(&self, workspace: WorkspaceId) -> StoreResult<Vec<EndpointHealth>>;

    /// The disabled endpoints of every workspace (nodes cache them).
    async fn disabled_endpoints(&self) -> StoreResult<Vec<(WorkspaceId, String)>>;

    /// Enables a disabled endpoint; its failure streak starts over.
    async fn enable_endpoint(&self, workspace: WorkspaceId, id: EndpointId) -> StoreResult<EndpointHealth>;
}
