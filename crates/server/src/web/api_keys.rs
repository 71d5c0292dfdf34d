//! Admin API keys as credentials: making one (the token exists only in the answer; the store
//! keeps its hash) and revoking one. The `/api/v1/api-keys` handlers and the settings page
//! both call these.

use herald_domain::{ApiKey, ApiKeyId, ApiKeyName, ApiToken, WorkspaceId};
use herald_store::NewApiKey;

use super::WebState;
use super::error::ApiError;

/// Makes an API key named `name`; returns it with its token, shown to the caller once.
pub async fn create(state: &WebState, workspace: WorkspaceId, name: &str) -> Result<(ApiKey, ApiToken), ApiError> {
    let name = ApiKeyName::parse(name).map_err(|e| ApiError::invalid("name", e))?;
    let token = ApiToken::generate(rand::random());
    let new = NewApiKey { name, hash: token.hash(), hint: token.hint() };
    let key = state.store.create_api_key(workspace, new, state.clock.now()).await?;
    tracing::info!(key = %key.id, workspace = %workspace, "API key created");
    Ok((key, token))
}

/// Revokes an API key: requests and web sessions made with it are refused from now on.
pub async fn revoke(state: &WebState, workspace: WorkspaceId, id: ApiKeyId) -> Result<ApiKey, ApiError> {
    let key = state.store.revoke_api_key(workspace, id, state.clock.now()).await?;
    tracing::info!(key = %key.id, workspace = %workspace, "API key revoked");
    Ok(key)
}
