//! `/api/v1/workspace`: the workspace the caller's key belongs to.

use axum::Json;
use axum::extract::State;
use herald_domain::{Timestamp, Workspace, WorkspaceId};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::Auth;
use super::error::{ApiError, ErrorBody};

#[derive(Debug, Serialize, ToSchema)]
pub struct WorkspaceDto {
    #[schema(value_type = String, example = "ws_0193a4b2c3d47e5f8a9b0c1d2e3f4a5b")]
    id: WorkspaceId,
    #[schema(value_type = String, example = "default")]
    name: String,
    #[schema(value_type = String, format = DateTime)]
    created_at: Timestamp,
}

impl From<Workspace> for WorkspaceDto {
    fn from(w: Workspace) -> Self {
        Self { id: w.id, name: w.name.as_str().to_owned(), created_at: w.created_at }
    }
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_workspace))
}

/// The workspace this API key acts for.
#[utoipa::path(
    get,
    path = "/workspace",
    tag = "workspace",
    responses((status = 200, body = WorkspaceDto), (status = 401, body = ErrorBody))
)]
async fn get_workspace(State(state): State<AppState>, Auth(principal): Auth) -> Result<Json<WorkspaceDto>, ApiError> {
    Ok(Json(state.store.get_workspace(principal.workspace_id).await?.into()))
}
