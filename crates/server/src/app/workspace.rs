//! `/api/v1/workspace`: the workspace the caller's key belongs to.

use axum::Json;
use axum::extract::{FromRef, State};
use herald_domain::{Timestamp, Workspace, WorkspaceId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::web::WebState;
use crate::web::auth::Auth;
use crate::web::error::{ApiError, ApiJson, ErrorBody};

#[derive(Debug, Serialize, ToSchema)]
pub struct WorkspaceDto {
    #[schema(value_type = String, example = "ws_0193a4b2c3d47e5f8a9b0c1d2e3f4a5b")]
    id: WorkspaceId,
    #[schema(value_type = String, example = "default")]
    name: String,
    /// Default time zone for campaign waits until a time of day (after the contact's
    /// `timezone` attribute and the campaign's `timezone`); null: UTC.
    #[schema(example = "Europe/Paris")]
    timezone: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    created_at: Timestamp,
}

/// Changes to the workspace.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateWorkspace {
    /// An IANA time zone name, or null for UTC.
    #[serde(default, deserialize_with = "crate::web::present")]
    #[schema(value_type = Option<String>, example = "Europe/Paris")]
    timezone: Option<Option<String>>,
}

impl From<Workspace> for WorkspaceDto {
    fn from(w: Workspace) -> Self {
        Self { id: w.id, name: w.name.as_str().to_owned(), timezone: w.timezone, created_at: w.created_at }
    }
}

pub fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    WebState: FromRef<S>,
{
    OpenApiRouter::new().routes(routes!(get_workspace, update_workspace))
}

/// The workspace this API key acts for.
#[utoipa::path(
    get,
    path = "/workspace",
    tag = "workspace",
    responses((status = 200, body = WorkspaceDto), (status = 401, body = ErrorBody))
)]
async fn get_workspace(State(state): State<WebState>, Auth(principal): Auth) -> Result<Json<WorkspaceDto>, ApiError> {
    Ok(Json(state.store.get_workspace(principal.workspace_id).await?.into()))
}

/// Change the workspace's settings.
#[utoipa::path(
    patch,
    path = "/workspace",
    tag = "workspace",
    request_body = UpdateWorkspace,
    responses((status = 200, body = WorkspaceDto), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody))
)]
async fn update_workspace(
    State(state): State<WebState>,
    Auth(principal): Auth,
    ApiJson(body): ApiJson<UpdateWorkspace>,
) -> Result<Json<WorkspaceDto>, ApiError> {
    let mut workspace = state.store.get_workspace(principal.workspace_id).await?;
    if let Some(timezone) = body.timezone {
        if let Some(Err(e)) = timezone.as_deref().map(herald_campaign::compile::check_timezone) {
            return Err(ApiError::invalid("timezone", e));
        }
        workspace = state.store.set_workspace_timezone(principal.workspace_id, timezone.as_deref()).await?;
    }
    Ok(Json(workspace.into()))
}
