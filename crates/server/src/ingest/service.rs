//! Ingest's use cases, shared by the sources API and the sources pages: creating, changing and
//! rotating a source (each change makes this node's hot path see it at once), and reading its
//! samples and what a mapping makes of them.

use std::time::Duration;

use herald_domain::mapping::{CompiledMapping, MappingSpec};
use herald_domain::source::parse_source_name;
use herald_domain::{Source, SourceId, SourceKind, SourceToken, WorkspaceId};
use herald_store::{NewSource, SourceUpdate};
use serde_json::Value;

use super::IngestState;
use crate::web::error::ApiError;

fn fresh_token() -> SourceToken {
    SourceToken::generate(rand::random())
}

/// Creates a source (the API's and the web UI's one way to): validates the name, kind and
/// rate, and returns the source with its new token.
pub async fn create(
    state: &IngestState,
    workspace: WorkspaceId,
    name: &str,
    kind: &str,
    rate_limit_per_second: Option<u32>,
) -> Result<(Source, SourceToken), ApiError> {
    let name = parse_source_name(name).map_err(|e| ApiError::invalid("name", e))?;
    let kind: SourceKind = kind.parse().map_err(|e: String| ApiError::invalid("kind", e))?;
    if rate_limit_per_second == Some(0) {
        return Err(ApiError::invalid("rate_limit_per_second", "must be at least 1 (or absent for no limit)"));
    }
    let token = fresh_token();
    let new = NewSource { name, kind, token_hash: token.hash(), token_hint: token.hint() };
    let now = state.clock.now();
    let mut source = state.store.create_source(workspace, new, now).await?;
    if let Some(rate) = rate_limit_per_second {
        let update = SourceUpdate { rate_limit_per_second: Some(Some(rate)), ..SourceUpdate::default() };
        source = state.store.update_source(workspace, source.id, update, now).await?;
    }
    tracing::info!(source = %source.id, kind = kind.as_str(), "source created");
    Ok((source, token))
}

/// Gives a source a new token; the old one works for `grace` more (at most 7 days).
pub async fn rotate(
    state: &IngestState,
    workspace: WorkspaceId,
    id: SourceId,
    grace: Duration,
) -> Result<(Source, SourceToken), ApiError> {
    if grace > MAX_ROTATION_GRACE {
        return Err(ApiError::invalid("grace_seconds", "must be at most 604800 (7 days)"));
    }
    let now = state.clock.now();
    let token = fresh_token();
    let grace_until = (!grace.is_zero()).then(|| now + grace);
    let source = state.store.rotate_source_token(workspace, id, token.hash(), token.hint(), grace_until, now).await?;
    state.sources.clear();
    tracing::info!(source = %source.id, grace_secs = grace.as_secs(), "source URL rotated");
    Ok((source, token))
}

/// The inbound URL of a token (or of a token hint, for display).
pub fn inbound_url(state: &IngestState, token: &str) -> String {
    format!("{}/webhooks/inbound/{token}", state.public_url)
}

/// Changes a source (the API's and the web UI's one way to): checks the rate and mapping,
/// writes, and makes this node's ingest see the change at once.
pub async fn update(
    state: &IngestState,
    workspace: WorkspaceId,
    id: SourceId,
    update: SourceUpdate,
) -> Result<Source, ApiError> {
    if update.rate_limit_per_second == Some(Some(0)) {
        return Err(ApiError::invalid("rate_limit_per_second", "must be at least 1 (or null for no limit)"));
    }
    if let Some(Some(mapping)) = &update.mapping {
        compile_mapping(mapping)?;
    }
    let source = state.store.update_source(workspace, id, update, state.clock.now()).await?;
    state.sources.clear();
    Ok(source)
}

/// Checks a mapping and returns the field-named errors as one API error.
pub fn compile_mapping(mapping: &Value) -> Result<CompiledMapping, ApiError> {
    let spec: MappingSpec = serde_json::from_value(mapping.clone()).map_err(|e| ApiError::invalid("mapping", e))?;
    spec.validate().map_err(|errors| {
        let first = errors.first().map(|e| e.field.clone()).unwrap_or_default();
        let all: Vec<String> = errors.iter().map(ToString::to_string).collect();
        let mut error = ApiError::invalid("mapping", all.join("; "));
        error.field = Some(format!("mapping.{first}"));
        error
    })
}

/// A source's captured samples, newest first (404 for a source of another workspace).
pub async fn samples(
    state: &IngestState,
    workspace: WorkspaceId,
    id: SourceId,
) -> Result<Vec<herald_store::Sample>, ApiError> {
    state.store.get_source(workspace, id).await?;
    Ok(state.store.list_samples(workspace, id).await?)
}

/// Captured sample `index` (0 = newest), or an error naming `sample`.
pub async fn sample(
    state: &IngestState,
    workspace: WorkspaceId,
    id: SourceId,
    index: usize,
) -> Result<herald_store::Sample, ApiError> {
    samples(state, workspace, id).await?.into_iter().nth(index).ok_or_else(|| {
        ApiError::invalid("sample", format!("there is no sample #{index}; send a request to the source first"))
    })
}

/// What a mapping makes of a body, as the preview shows it: the contact fields, event name
/// and properties, or every field that was refused.
pub fn mapped(compiled: &CompiledMapping, body: &Value) -> Result<Value, Vec<herald_domain::FieldError>> {
    compiled.map_body(body).map(|event| {
        serde_json::json!({
            "email": event.identity.email,
            "user_id": event.identity.user_id,
            "phone": event.identity.phone,
            "name": event.name,
            "occurred_at": event.occurred_at,
            "attributes": event.attributes,
            "properties": event.properties,
            "dedupe_key": event.dedupe_key,
        })
    })
}
/// How long after a rotation with grace the old URL keeps working, at most.
pub const MAX_ROTATION_GRACE: Duration = Duration::from_secs(7 * 24 * 3600);
