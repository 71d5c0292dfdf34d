//! `/api/v1/templates` and `/api/v1/layouts`: shared email templates and the layouts around
//! them. A campaign email step uses a template with `{"type": "email", "from": …, "template":
//! "tpl_…"}`; a transactional send with `"template": "tpl_…"`. Saving makes a new version;
//! every version is kept and listed.

use axum::Json;
use axum::extract::{FromRef, Path, State};
use axum::http::StatusCode;
use herald_domain::{ContactId, SavedTemplate, TemplateContent, TemplateId, TemplateKind, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::TemplatesState;
use super::service::{self, RenderedEmail};
use crate::web::auth::Auth;
use crate::web::error::{ApiError, ApiJson, ErrorBody};

/// One version of a template or layout.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "id": "tpl_0193a4b2c3d47e5f8a9b0c1d2e3f4a5b", "kind": "template", "name": "Password reset", "version": 2,
    "subject": "Reset your password", "html": "<p>Hi {{ first_name | default: \"there\" }}, <a href=\"{{ data.link }}\">reset it</a>.</p>",
    "layout": "tpl_0193a4b2c3d47e5f8a9b0c1d2e3f4a00",
    "created_at": "2026-11-23T08:00:00Z", "version_created_at": "2026-11-24T09:30:00Z"
}))]
pub struct TemplateDto {
    #[schema(value_type = String)]
    id: TemplateId,
    /// `template` or `layout`.
    #[schema(value_type = String)]
    kind: TemplateKind,
    name: String,
    version: u32,
    /// Templates only.
    #[serde(skip_serializing_if = "String::is_empty")]
    subject: String,
    html: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<String>,
    /// The layout (`tpl_…`) a template's HTML and text go into.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    layout: Option<TemplateId>,
    #[schema(value_type = String, format = DateTime)]
    created_at: Timestamp,
    /// When this version was saved.
    #[schema(value_type = String, format = DateTime)]
    version_created_at: Timestamp,
}

impl From<SavedTemplate> for TemplateDto {
    fn from(t: SavedTemplate) -> Self {
        let TemplateContent { subject, html, text, layout } = t.content;
        Self {
            id: t.id,
            kind: t.kind,
            name: t.name,
            version: t.version,
            subject,
            html,
            text,
            layout,
            created_at: t.created_at,
            version_created_at: t.version_created_at,
        }
    }
}

/// A template to save: Liquid sources, each checked now.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateBody {
    name: String,
    #[schema(example = "Reset your password")]
    subject: String,
    html: String,
    /// Derived from the HTML when absent.
    text: Option<String>,
    /// A layout (`tpl_…`) to put the HTML and text in.
    layout: Option<String>,
}

/// A layout to save: HTML (and text) with one `{{ content }}` where a template's body goes;
/// put the unsubscribe block (`{{ unsubscribe_url }}`) here.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LayoutBody {
    name: String,
    #[schema(
        example = "<html><body>{{ content }}<p><a href=\"{{ unsubscribe_url }}\">Unsubscribe</a></p></body></html>"
    )]
    html: String,
    text: Option<String>,
}

/// Whom to preview for.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewBody {
    /// The contact (`ct_…`) whose fields and attributes the template sees.
    #[schema(example = "ct_0193a4b2c3d47e5f8a9b0c1d2e3f4a5b")]
    contact_id: String,
    /// Variables under `data.*`, as a transactional send passes them.
    #[schema(value_type = Option<Object>)]
    data: Option<Map<String, Value>>,
    /// A version to preview; the latest when absent.
    version: Option<u32>,
}

pub fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    TemplatesState: FromRef<S>,
{
    OpenApiRouter::new()
        .routes(routes!(list_templates, create_template))
        .routes(routes!(get_template, update_template, delete_template))
        .routes(routes!(template_versions))
        .routes(routes!(preview_template))
        .routes(routes!(list_layouts, create_layout))
        .routes(routes!(get_layout, update_layout, delete_layout))
        .routes(routes!(layout_versions))
        .routes(routes!(preview_layout))
}

fn parse_id(raw: &str) -> Result<TemplateId, ApiError> {
    raw.parse().map_err(|e| ApiError::invalid("id", e))
}

fn layout_id(raw: Option<String>) -> Result<Option<TemplateId>, ApiError> {
    raw.map(|l| l.parse().map_err(|e| ApiError::invalid("layout", e))).transpose()
}

impl TemplateBody {
    fn content(self) -> Result<(String, TemplateContent), ApiError> {
        let layout = layout_id(self.layout)?;
        Ok((self.name, TemplateContent { subject: self.subject, html: self.html, text: self.text, layout }))
    }
}

impl LayoutBody {
    fn content(self) -> (String, TemplateContent) {
        (self.name, TemplateContent { subject: String::new(), html: self.html, text: self.text, layout: None })
    }
}

async fn list(state: &TemplatesState, p: &Auth, kind: TemplateKind) -> Result<Json<Vec<TemplateDto>>, ApiError> {
    let found = state.store.list_templates(p.0.workspace_id, kind).await?;
    Ok(Json(found.into_iter().map(TemplateDto::from).collect()))
}

async fn save(
    state: &TemplatesState,
    p: &Auth,
    kind: TemplateKind,
    id: Option<&str>,
    (name, content): (String, TemplateContent),
) -> Result<TemplateDto, ApiError> {
    let id = id.map(parse_id).transpose()?;
    Ok(service::save(state, p.0.workspace_id, kind, id, &name, &content).await?.into())
}

async fn one(state: &TemplatesState, p: &Auth, kind: TemplateKind, id: &str) -> Result<SavedTemplate, ApiError> {
    service::of_kind(state, p.0.workspace_id, kind, parse_id(id)?).await
}

async fn delete(state: &TemplatesState, p: &Auth, kind: TemplateKind, id: &str) -> Result<StatusCode, ApiError> {
    let found = one(state, p, kind, id).await?;
    state.store.delete_template(p.0.workspace_id, found.id, state.clock.now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn versions(
    state: &TemplatesState,
    p: &Auth,
    kind: TemplateKind,
    id: &str,
) -> Result<Json<Vec<TemplateDto>>, ApiError> {
    let found = one(state, p, kind, id).await?;
    let all = service::versions(state, p.0.workspace_id, found.id).await?;
    Ok(Json(all.into_iter().map(TemplateDto::from).collect()))
}

async fn preview(
    state: &TemplatesState,
    p: &Auth,
    kind: TemplateKind,
    id: &str,
    body: PreviewBody,
) -> Result<Json<RenderedEmail>, ApiError> {
    let found = one(state, p, kind, id).await?;
    let contact: ContactId = body.contact_id.parse().map_err(|e| ApiError::invalid("contact_id", e))?;
    let data = body.data.unwrap_or_default();
    Ok(Json(service::preview(state, found, body.version, contact, data).await?))
}

/// List the workspace's templates (their latest versions) by name.
#[utoipa::path(get, path = "/templates", tag = "templates",
    responses((status = 200, body = Vec<TemplateDto>), (status = 401, body = ErrorBody)))]
async fn list_templates(State(state): State<TemplatesState>, p: Auth) -> Result<Json<Vec<TemplateDto>>, ApiError> {
    list(&state, &p, TemplateKind::Template).await
}

/// Save a template (version 1). Each part must compile: a broken one is refused naming it
/// (`subject`, `html`, `text`) with the Liquid error's line and column.
#[utoipa::path(post, path = "/templates", tag = "templates", request_body = TemplateBody,
    responses((status = 201, body = TemplateDto), (status = 409, body = ErrorBody, description = "The name is taken"),
        (status = 422, body = ErrorBody, description = "A part does not compile; `field` names it")))]
async fn create_template(
    State(state): State<TemplatesState>,
    p: Auth,
    ApiJson(body): ApiJson<TemplateBody>,
) -> Result<(StatusCode, Json<TemplateDto>), ApiError> {
    Ok((StatusCode::CREATED, Json(save(&state, &p, TemplateKind::Template, None, body.content()?).await?)))
}

/// A template's latest version.
#[utoipa::path(get, path = "/templates/{id}", tag = "templates", params(("id" = String, Path)),
    responses((status = 200, body = TemplateDto), (status = 404, body = ErrorBody)))]
async fn get_template(
    State(state): State<TemplatesState>,
    p: Auth,
    Path(id): Path<String>,
) -> Result<Json<TemplateDto>, ApiError> {
    Ok(Json(one(&state, &p, TemplateKind::Template, &id).await?.into()))
}

/// Save a new version of a template. Journeys already running keep the version current when
/// they entered their campaign; later journeys and sends use this one.
#[utoipa::path(put, path = "/templates/{id}", tag = "templates", params(("id" = String, Path)),
    request_body = TemplateBody,
    responses((status = 200, body = TemplateDto), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "The name is taken"), (status = 422, body = ErrorBody)))]
async fn update_template(
    State(state): State<TemplatesState>,
    p: Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<TemplateBody>,
) -> Result<Json<TemplateDto>, ApiError> {
    Ok(Json(save(&state, &p, TemplateKind::Template, Some(&id), body.content()?).await?))
}

/// Delete a template. Journeys already running still send it; new campaign versions and
/// sends cannot use it.
#[utoipa::path(delete, path = "/templates/{id}", tag = "templates", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn delete_template(
    State(state): State<TemplatesState>,
    p: Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    delete(&state, &p, TemplateKind::Template, &id).await
}

/// Every version of a template, newest first.
#[utoipa::path(get, path = "/templates/{id}/versions", tag = "templates", params(("id" = String, Path)),
    responses((status = 200, body = Vec<TemplateDto>), (status = 404, body = ErrorBody)))]
async fn template_versions(
    State(state): State<TemplatesState>,
    p: Auth,
    Path(id): Path<String>,
) -> Result<Json<Vec<TemplateDto>>, ApiError> {
    versions(&state, &p, TemplateKind::Template, &id).await
}

/// Render a template (in its layout) for a contact, without sending anything.
#[utoipa::path(post, path = "/templates/{id}/preview", tag = "templates", params(("id" = String, Path)),
    request_body = PreviewBody,
    responses((status = 200, body = RenderedEmail), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn preview_template(
    State(state): State<TemplatesState>,
    p: Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<PreviewBody>,
) -> Result<Json<RenderedEmail>, ApiError> {
    preview(&state, &p, TemplateKind::Template, &id, body).await
}

/// List the workspace's layouts (their latest versions) by name.
#[utoipa::path(get, path = "/layouts", tag = "templates",
    responses((status = 200, body = Vec<TemplateDto>), (status = 401, body = ErrorBody)))]
async fn list_layouts(State(state): State<TemplatesState>, p: Auth) -> Result<Json<Vec<TemplateDto>>, ApiError> {
    list(&state, &p, TemplateKind::Layout).await
}

/// Save a layout (version 1): its HTML (and text, if given) must compile and hold one
/// `{{ content }}`.
#[utoipa::path(post, path = "/layouts", tag = "templates", request_body = LayoutBody,
    responses((status = 201, body = TemplateDto), (status = 409, body = ErrorBody, description = "The name is taken"),
        (status = 422, body = ErrorBody, description = "A part does not compile; `field` names it")))]
async fn create_layout(
    State(state): State<TemplatesState>,
    p: Auth,
    ApiJson(body): ApiJson<LayoutBody>,
) -> Result<(StatusCode, Json<TemplateDto>), ApiError> {
    Ok((StatusCode::CREATED, Json(save(&state, &p, TemplateKind::Layout, None, body.content()).await?)))
}

/// A layout's latest version.
#[utoipa::path(get, path = "/layouts/{id}", tag = "templates", params(("id" = String, Path)),
    responses((status = 200, body = TemplateDto), (status = 404, body = ErrorBody)))]
async fn get_layout(
    State(state): State<TemplatesState>,
    p: Auth,
    Path(id): Path<String>,
) -> Result<Json<TemplateDto>, ApiError> {
    Ok(Json(one(&state, &p, TemplateKind::Layout, &id).await?.into()))
}

/// Save a new version of a layout; as with templates, running journeys keep theirs.
#[utoipa::path(put, path = "/layouts/{id}", tag = "templates", params(("id" = String, Path)),
    request_body = LayoutBody,
    responses((status = 200, body = TemplateDto), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "The name is taken"), (status = 422, body = ErrorBody)))]
async fn update_layout(
    State(state): State<TemplatesState>,
    p: Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<LayoutBody>,
) -> Result<Json<TemplateDto>, ApiError> {
    Ok(Json(save(&state, &p, TemplateKind::Layout, Some(&id), body.content()).await?))
}

/// Delete a layout. Templates that name it are sent without it from then on.
#[utoipa::path(delete, path = "/layouts/{id}", tag = "templates", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn delete_layout(
    State(state): State<TemplatesState>,
    p: Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    delete(&state, &p, TemplateKind::Layout, &id).await
}

/// Every version of a layout, newest first.
#[utoipa::path(get, path = "/layouts/{id}/versions", tag = "templates", params(("id" = String, Path)),
    responses((status = 200, body = Vec<TemplateDto>), (status = 404, body = ErrorBody)))]
async fn layout_versions(
    State(state): State<TemplatesState>,
    p: Auth,
    Path(id): Path<String>,
) -> Result<Json<Vec<TemplateDto>>, ApiError> {
    versions(&state, &p, TemplateKind::Layout, &id).await
}

/// Render a layout around a sample body for a contact.
#[utoipa::path(post, path = "/layouts/{id}/preview", tag = "templates", params(("id" = String, Path)),
    request_body = PreviewBody,
    responses((status = 200, body = RenderedEmail), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn preview_layout(
    State(state): State<TemplatesState>,
    p: Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<PreviewBody>,
) -> Result<Json<RenderedEmail>, ApiError> {
    preview(&state, &p, TemplateKind::Layout, &id, body).await
}
