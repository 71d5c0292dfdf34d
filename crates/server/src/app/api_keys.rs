//! `/api/v1/api-keys`: list, create (the token is shown once), get and revoke admin API keys.

use axum::Json;
use axum::extract::{FromRef, Path, State};
use axum::http::StatusCode;
use herald_domain::{ApiKey, ApiKeyId, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::web::WebState;
use crate::web::api_keys::{create, revoke};
use crate::web::auth::Auth;
use crate::web::error::{ApiError, ApiJson, ApiQuery, ErrorBody};
use crate::web::list::{List, ListParams};

/// An API key as listed. The token itself is never returned after creation.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyDto {
    #[schema(value_type = String, example = "key_0193a4b2c3d47e5f8a9b0c1d2e3f4a5b")]
    id: ApiKeyId,
    #[schema(example = "zapier")]
    name: String,
    /// The token's first characters, to tell keys apart.
    #[schema(example = "hk_3fQx…")]
    hint: String,
    #[schema(value_type = String, format = DateTime)]
    created_at: Timestamp,
    #[schema(value_type = Option<String>, format = DateTime)]
    revoked_at: Option<Timestamp>,
}

impl From<ApiKey> for ApiKeyDto {
    fn from(k: ApiKey) -> Self {
        Self {
            id: k.id,
            name: k.name.as_str().to_owned(),
            hint: k.hint,
            created_at: k.created_at,
            revoked_at: k.revoked_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    /// A label, 1–100 characters.
    #[schema(example = "zapier", min_length = 1, max_length = 100)]
    name: String,
}

/// A new key with its token: the only time the token is shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedApiKey {
    #[serde(flatten)]
    key: ApiKeyDto,
    /// The secret to send as `Authorization: Bearer <token>`. Store it now: Herald keeps only a hash.
    #[schema(example = "hk_3fQxV0m1w2c9dJ1nq5Q2Zr7tY8uI0oPaSdFgHjKlZxC")]
    token: String,
}

pub fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    WebState: FromRef<S>,
{
    OpenApiRouter::new().routes(routes!(list_api_keys, create_api_key)).routes(routes!(get_api_key, revoke_api_key))
}

fn parse_id(raw: &str) -> Result<ApiKeyId, ApiError> {
    raw.parse().map_err(|e| ApiError::invalid("id", e))
}

/// List the workspace's API keys, oldest first.
#[utoipa::path(
    get,
    path = "/api-keys",
    tag = "api-keys",
    params(ListParams),
    responses((status = 200, body = List<ApiKeyDto>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody))
)]
async fn list_api_keys(
    State(state): State<WebState>,
    Auth(principal): Auth,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<List<ApiKeyDto>>, ApiError> {
    let page = state.store.list_api_keys(principal.workspace_id, params.page()?).await?;
    Ok(Json(List::from_page(page, ApiKeyDto::from)))
}

/// Create an API key. The response holds the token; it cannot be retrieved again.
#[utoipa::path(
    post,
    path = "/api-keys",
    tag = "api-keys",
    request_body = CreateApiKey,
    responses((status = 201, body = CreatedApiKey), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody))
)]
async fn create_api_key(
    State(state): State<WebState>,
    Auth(principal): Auth,
    ApiJson(body): ApiJson<CreateApiKey>,
) -> Result<(StatusCode, Json<CreatedApiKey>), ApiError> {
    let (key, token) = create(&state, principal.workspace_id, &body.name).await?;
    Ok((StatusCode::CREATED, Json(CreatedApiKey { key: key.into(), token: token.expose().to_owned() })))
}

/// Get one API key.
#[utoipa::path(
    get,
    path = "/api-keys/{id}",
    tag = "api-keys",
    params(("id" = String, Path, description = "API key id (`key_…`)")),
    responses((status = 200, body = ApiKeyDto), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody))
)]
async fn get_api_key(
    State(state): State<WebState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> Result<Json<ApiKeyDto>, ApiError> {
    Ok(Json(state.store.get_api_key(principal.workspace_id, parse_id(&id)?).await?.into()))
}

/// Revoke an API key. It stops working at once; revoking again changes nothing.
#[utoipa::path(
    delete,
    path = "/api-keys/{id}",
    tag = "api-keys",
    params(("id" = String, Path, description = "API key id (`key_…`)")),
    responses((status = 200, body = ApiKeyDto), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody))
)]
async fn revoke_api_key(
    State(state): State<WebState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> Result<Json<ApiKeyDto>, ApiError> {
    let key = revoke(&state, principal.workspace_id, parse_id(&id)?).await?;
    Ok(Json(key.into()))
}
