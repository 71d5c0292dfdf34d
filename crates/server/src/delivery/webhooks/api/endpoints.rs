//! `/api/v1/webhook-endpoints`: the endpoints Herald calls and their health. One that failed
//! every attempt for the disable period is disabled (its calls fail at once, without a
//! request, and an `endpoint_disabled` event is in the event log); enabling it is one call.

use axum::Json;
use axum::extract::{FromRef, Path, State};
use herald_domain::{EndpointHealth, EndpointId, Timestamp};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::delivery::webhooks::WebhooksState;
use crate::web::auth::Auth;
use crate::web::error::{ApiError, ErrorBody};

/// An endpoint (`scheme://host:port`) and whether it answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointDto {
    #[schema(value_type = String, example = "wep_0193a4b2c3d47e5f8a9b0c1d2e3f4a5b")]
    id: EndpointId,
    #[schema(example = "https://crm.example.com:443")]
    endpoint: String,
    /// `healthy`, `failing` (every attempt since `failing_since` failed) or `disabled`.
    #[schema(example = "failing")]
    status: &'static str,
    #[schema(value_type = Option<String>, format = DateTime)]
    failing_since: Option<Timestamp>,
    #[schema(value_type = Option<String>, format = DateTime)]
    last_success_at: Option<Timestamp>,
    #[schema(value_type = Option<String>, format = DateTime)]
    disabled_at: Option<Timestamp>,
    disabled_reason: Option<String>,
}

impl From<EndpointHealth> for EndpointDto {
    fn from(h: EndpointHealth) -> Self {
        let status = match (h.disabled_at, h.failing_since) {
            (Some(_), _) => "disabled",
            (None, Some(_)) => "failing",
            (None, None) => "healthy",
        };
        Self {
            id: h.id,
            endpoint: h.endpoint,
            status,
            failing_since: h.failing_since,
            last_success_at: h.last_success_at,
            disabled_at: h.disabled_at,
            disabled_reason: h.disabled_reason,
        }
    }
}

pub fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    WebhooksState: FromRef<S>,
{
    OpenApiRouter::new().routes(routes!(list_endpoints)).routes(routes!(enable_endpoint))
}

/// Every endpoint the workspace has called: disabled first, then failing, then healthy.
#[utoipa::path(get, path = "/webhook-endpoints", tag = "webhooks",
    responses((status = 200, body = Vec<EndpointDto>), (status = 401, body = ErrorBody)))]
async fn list_endpoints(State(state): State<WebhooksState>, Auth(p): Auth) -> Result<Json<Vec<EndpointDto>>, ApiError> {
    let endpoints = state.store.list_endpoints(p.workspace_id).await?;
    Ok(Json(endpoints.into_iter().map(EndpointDto::from).collect()))
}

/// Enable a disabled endpoint: its calls are made again, and its failure streak starts over.
#[utoipa::path(post, path = "/webhook-endpoints/{id}/enable", tag = "webhooks",
    params(("id" = String, Path, description = "Endpoint id (`wep_…`)")),
    responses((status = 200, body = EndpointDto), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn enable_endpoint(
    State(state): State<WebhooksState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<EndpointDto>, ApiError> {
    let id: EndpointId = id.parse().map_err(|e| ApiError::invalid("id", e))?;
    let health = state.store.enable_endpoint(p.workspace_id, id).await?;
    state.webhooks.health.forget();
    Ok(Json(health.into()))
}
