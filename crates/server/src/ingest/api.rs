//! `/api/v1/sources`: inbound endpoints. The URL (with its secret token) is shown when a
//! source is created and when it is rotated, never again; lists show a hint.

use std::time::Duration;

use axum::Json;
use axum::extract::{FromRef, Path, State};
use axum::http::StatusCode;
use herald_domain::mapping::suggest;
use herald_domain::source::parse_source_name;
use herald_domain::{Source, SourceId, SourceKind, SourceToken, Timestamp};
use herald_store::SourceUpdate;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::IngestState;
use super::service::{self, compile_mapping, mapped, sample, samples};
use crate::web::auth::Auth;
use crate::web::error::{ApiError, ApiJson, ApiQuery, ErrorBody};
use crate::web::list::{List, ListParams};

/// A source as listed.
#[derive(Debug, Serialize, ToSchema)]
pub struct SourceDto {
    #[schema(value_type = String, example = "src_0193a4b2c3d47e5f8a9b0c1d2e3f4a5b")]
    id: SourceId,
    #[schema(example = "Website signups")]
    name: String,
    #[schema(value_type = String, example = "generic")]
    kind: SourceKind,
    enabled: bool,
    /// The URL with its token shortened; the full URL is shown only at creation and rotation.
    #[schema(example = "https://herald.example.com/webhooks/inbound/whk_3fQx…")]
    url_hint: String,
    /// Until when the URL before the last rotation keeps working.
    #[schema(value_type = Option<String>, format = DateTime)]
    previous_url_expires_at: Option<Timestamp>,
    /// Requests per second accepted before answering 429; null: unlimited.
    rate_limit_per_second: Option<u32>,
    /// The field mapping of a `mapped` source.
    #[schema(value_type = Option<Object>)]
    mapping: Option<Value>,
    #[schema(value_type = String, format = DateTime)]
    created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    updated_at: Timestamp,
}

/// A source with its full URL: returned by create and rotate only.
#[derive(Debug, Serialize, ToSchema)]
pub struct SourceWithUrl {
    #[serde(flatten)]
    source: SourceDto,
    /// Where to send events. A secret: anyone with it can send data to this workspace.
    #[schema(example = "https://herald.example.com/webhooks/inbound/whk_3fQxV0m1w2c9dJ1nq5Q2Zr7tY8uI0oPaSdFgHjKlZxC")]
    url: String,
}

fn dto(state: &IngestState, s: Source) -> SourceDto {
    SourceDto {
        id: s.id,
        url_hint: format!("{}/webhooks/inbound/{}", state.public_url, s.token_hint),
        name: s.name,
        kind: s.kind,
        enabled: s.enabled,
        previous_url_expires_at: s.previous_token_expires_at,
        rate_limit_per_second: s.rate_limit_per_second,
        mapping: s.mapping,
        created_at: s.created_at,
        updated_at: s.updated_at,
    }
}

fn with_url(state: &IngestState, source: Source, token: &SourceToken) -> SourceWithUrl {
    SourceWithUrl {
        url: format!("{}/webhooks/inbound/{}", state.public_url, token.expose()),
        source: dto(state, source),
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSource {
    #[schema(example = "Website signups", min_length = 1, max_length = 100)]
    name: String,
    /// `generic` (email/event/userId/data), `posthog` (PostHog's webhook destination) or
    /// `mapped` (any JSON, with a field mapping).
    #[schema(example = "generic", pattern = "^(generic|posthog|mapped)$")]
    kind: String,
    rate_limit_per_second: Option<u32>,
}

/// Changes to a source. Absent fields stay; `null` clears `rate_limit_per_second` or `mapping`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSource {
    name: Option<String>,
    enabled: Option<bool>,
    #[serde(default, deserialize_with = "crate::web::present")]
    #[schema(value_type = Option<u32>)]
    rate_limit_per_second: Option<Option<u32>>,
    /// A mapping (see the `mapped` kind): `email`, `user_id`, `phone`, `event_name`
    /// (`{"path": ...}` or `{"constant": ...}`), `occurred_at`, `attributes`, `properties`,
    /// `include_body_as_properties`, `dedupe_key`.
    #[serde(default, deserialize_with = "crate::web::present")]
    #[schema(value_type = Option<Object>)]
    mapping: Option<Option<Value>>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rotate {
    /// Seconds the old URL keeps working (at most 7 days); absent or 0: it stops at once.
    grace_seconds: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RejectionDto {
    #[schema(value_type = String, format = DateTime)]
    received_at: Timestamp,
    status: u16,
    #[schema(example = "validation_failed")]
    code: String,
    #[schema(example = "email: must contain exactly one `@` with text on both sides")]
    reason: String,
    /// The first 4 KiB of the body (lossy UTF-8).
    body: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SampleDto {
    #[schema(value_type = String, format = DateTime)]
    received_at: Timestamp,
    #[schema(value_type = Object)]
    body: Value,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewMapping {
    /// The mapping to try.
    #[schema(value_type = Object)]
    mapping: Value,
    /// Which captured sample to apply it to (0 = newest); or give `body`.
    sample: Option<usize>,
    #[schema(value_type = Option<Object>)]
    body: Option<Value>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SuggestParams {
    /// Which captured sample to start from (0 = newest).
    sample: Option<usize>,
}

pub fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    IngestState: FromRef<S>,
{
    OpenApiRouter::new()
        .routes(routes!(list_sources, create_source))
        .routes(routes!(get_source, update_source, delete_source))
        .routes(routes!(rotate_source))
        .routes(routes!(enable_source))
        .routes(routes!(disable_source))
        .routes(routes!(list_rejections))
        .routes(routes!(list_samples))
        .routes(routes!(preview_mapping))
        .routes(routes!(suggest_mapping))
}

fn parse_id(raw: &str) -> Result<SourceId, ApiError> {
    raw.parse().map_err(|e| ApiError::invalid("id", e))
}

/// List sources, oldest first.
#[utoipa::path(get, path = "/sources", tag = "sources", params(ListParams),
    responses((status = 200, body = List<SourceDto>), (status = 400, body = ErrorBody)))]
async fn list_sources(
    State(state): State<IngestState>,
    Auth(p): Auth,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<List<SourceDto>>, ApiError> {
    let page = state.store.list_sources(p.workspace_id, params.page()?).await?;
    Ok(Json(List::from_page(page, |s| dto(&state, s))))
}

/// Create a source. The response holds its URL, which contains a secret token.
#[utoipa::path(post, path = "/sources", tag = "sources", request_body = CreateSource,
    responses((status = 201, body = SourceWithUrl), (status = 400, body = ErrorBody)))]
async fn create_source(
    State(state): State<IngestState>,
    Auth(p): Auth,
    ApiJson(body): ApiJson<CreateSource>,
) -> Result<(StatusCode, Json<SourceWithUrl>), ApiError> {
    let (source, token) =
        service::create(&state, p.workspace_id, &body.name, &body.kind, body.rate_limit_per_second).await?;
    Ok((StatusCode::CREATED, Json(with_url(&state, source, &token))))
}

/// Get a source.
#[utoipa::path(get, path = "/sources/{id}", tag = "sources", params(("id" = String, Path)),
    responses((status = 200, body = SourceDto), (status = 404, body = ErrorBody)))]
async fn get_source(
    State(state): State<IngestState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<SourceDto>, ApiError> {
    let source = state.store.get_source(p.workspace_id, parse_id(&id)?).await?;
    Ok(Json(dto(&state, source)))
}

/// Change a source's name, enabled flag, rate limit or mapping.
#[utoipa::path(patch, path = "/sources/{id}", tag = "sources", params(("id" = String, Path)), request_body = UpdateSource,
    responses((status = 200, body = SourceDto), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn update_source(
    State(state): State<IngestState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateSource>,
) -> Result<Json<SourceDto>, ApiError> {
    let id = parse_id(&id)?;
    let name = body.name.as_deref().map(parse_source_name).transpose().map_err(|e| ApiError::invalid("name", e))?;
    let changes = SourceUpdate {
        name,
        enabled: body.enabled,
        rate_limit_per_second: body.rate_limit_per_second,
        mapping: body.mapping,
    };
    let source = service::update(&state, p.workspace_id, id, changes).await?;
    Ok(Json(dto(&state, source)))
}

/// Delete a source. Its URL stops working; its events stay in the log.
#[utoipa::path(delete, path = "/sources/{id}", tag = "sources", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn delete_source(
    State(state): State<IngestState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.store.delete_source(p.workspace_id, parse_id(&id)?).await?;
    state.sources.clear();
    Ok(StatusCode::NO_CONTENT)
}

/// Give the source a new URL. The old one answers 404 at once, or after `grace_seconds`.
#[utoipa::path(post, path = "/sources/{id}/rotate", tag = "sources", params(("id" = String, Path)), request_body(content = Rotate, description = "optional"),
    responses((status = 200, body = SourceWithUrl), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn rotate_source(
    State(state): State<IngestState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<SourceWithUrl>, ApiError> {
    let id = parse_id(&id)?;
    // The body is optional: an empty one means "no grace period".
    let options: Rotate = if body.iter().all(u8::is_ascii_whitespace) {
        Rotate::default()
    } else {
        serde_json::from_slice::<crate::web::error::JsonObject<Rotate>>(&body)
            .map_err(|e| ApiError::invalid("body", e))?
            .0
    };
    let grace = Duration::from_secs(options.grace_seconds.unwrap_or(0));
    let (source, token) = service::rotate(&state, p.workspace_id, id, grace).await?;
    Ok(Json(with_url(&state, source, &token)))
}

async fn set_enabled(
    state: &IngestState,
    workspace: herald_domain::WorkspaceId,
    id: &str,
    enabled: bool,
) -> Result<Json<SourceDto>, ApiError> {
    let update = SourceUpdate { enabled: Some(enabled), ..SourceUpdate::default() };
    let source = state.store.update_source(workspace, parse_id(id)?, update, state.clock.now()).await?;
    state.sources.clear();
    Ok(Json(dto(state, source)))
}

/// Start accepting requests again.
#[utoipa::path(post, path = "/sources/{id}/enable", tag = "sources", params(("id" = String, Path)),
    responses((status = 200, body = SourceDto), (status = 404, body = ErrorBody)))]
async fn enable_source(
    State(state): State<IngestState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<SourceDto>, ApiError> {
    set_enabled(&state, p.workspace_id, &id, true).await
}

/// Stop accepting requests: the URL answers 404 until enabled again.
#[utoipa::path(post, path = "/sources/{id}/disable", tag = "sources", params(("id" = String, Path)),
    responses((status = 200, body = SourceDto), (status = 404, body = ErrorBody)))]
async fn disable_source(
    State(state): State<IngestState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<SourceDto>, ApiError> {
    set_enabled(&state, p.workspace_id, &id, false).await
}

/// Recent refused requests (newest first, at most 100): why events do not appear.
#[utoipa::path(get, path = "/sources/{id}/rejections", tag = "sources", params(("id" = String, Path)),
    responses((status = 200, body = List<RejectionDto>), (status = 404, body = ErrorBody)))]
async fn list_rejections(
    State(state): State<IngestState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<List<RejectionDto>>, ApiError> {
    let id = parse_id(&id)?;
    state.store.get_source(p.workspace_id, id).await?;
    let rejections = state.store.list_rejections(p.workspace_id, id).await?;
    let data = rejections
        .into_iter()
        .map(|r| RejectionDto {
            received_at: r.received_at,
            status: r.status,
            code: r.code,
            reason: r.reason,
            body: String::from_utf8_lossy(&r.body_prefix).into_owned(),
        })
        .collect();
    Ok(Json(List { data, next_cursor: None }))
}

/// The last 20 requests a mapped source received, newest first, to build a mapping from.
#[utoipa::path(get, path = "/sources/{id}/samples", tag = "sources", params(("id" = String, Path)),
    responses((status = 200, body = List<SampleDto>), (status = 404, body = ErrorBody)))]
async fn list_samples(
    State(state): State<IngestState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<List<SampleDto>>, ApiError> {
    let samples = samples(&state, p.workspace_id, parse_id(&id)?).await?;
    let data = samples.into_iter().map(|s| SampleDto { received_at: s.received_at, body: s.body }).collect();
    Ok(Json(List { data, next_cursor: None }))
}

/// Apply a mapping to a captured sample (or a given body) without storing anything: the
/// contact fields, event name and properties it would produce, or the errors.
#[utoipa::path(post, path = "/sources/{id}/mapping/preview", tag = "sources", params(("id" = String, Path)), request_body = PreviewMapping,
    responses((status = 200, description = "`{\"ok\": true, \"event\": {...}}` or `{\"ok\": false, \"errors\": [...]}`"), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn preview_mapping(
    State(state): State<IngestState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<PreviewMapping>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&id)?;
    let compiled = compile_mapping(&body.mapping)?;
    let payload = match body.body {
        Some(payload) => payload,
        None => sample(&state, p.workspace_id, id, body.sample.unwrap_or(0)).await?.body,
    };
    Ok(Json(match mapped(&compiled, &payload) {
        Ok(event) => serde_json::json!({"ok": true, "event": event}),
        Err(errors) => serde_json::json!({
            "ok": false,
            "errors": errors.iter().map(|e| serde_json::json!({"field": e.field, "message": e.reason})).collect::<Vec<_>>()
        }),
    }))
}

/// A starting mapping guessed from a captured sample (the email, ids, event name it finds).
#[utoipa::path(get, path = "/sources/{id}/mapping/suggest", tag = "sources", params(("id" = String, Path), SuggestParams),
    responses((status = 200, description = "a mapping", body = Object), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn suggest_mapping(
    State(state): State<IngestState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiQuery(params): ApiQuery<SuggestParams>,
) -> Result<Json<Value>, ApiError> {
    let sample = sample(&state, p.workspace_id, parse_id(&id)?, params.sample.unwrap_or(0)).await?;
    serde_json::to_value(suggest(&sample.body)).map(Json).map_err(|e| ApiError::invalid("sample", e))
}
