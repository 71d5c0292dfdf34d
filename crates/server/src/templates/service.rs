//! The templates' use cases: checking a template or layout before it is saved (every part
//! must compile; a layout needs its one `{{ content }}`), saving a new version, and rendering
//! one for a contact, which previews and transactional sends share.

use axum::http::StatusCode;
use herald_campaign::SharedEmail;
use herald_domain::template::placeholders;
use herald_domain::{SavedTemplate, TemplateContent, TemplateId, TemplateKind, Timestamp, WorkspaceId};
use herald_template::{Escape, Limits, Template, html_to_text};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::{TemplatesState, shared_email};
use crate::web::error::ApiError;

/// Longest template name, in characters.
const MAX_NAME: usize = 200;

/// A template or layout part that does not compile: 422 naming the part (`subject`, `html`,
/// `text`) and the Liquid error's line and column.
pub fn invalid_template(field: &str, message: impl std::fmt::Display) -> ApiError {
    let mut error = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_template", format!("{field}: {message}"));
    error.field = Some(field.to_owned());
    error
}

/// Checks a name and content of `kind` before they are saved as a new version.
pub async fn check(
    state: &TemplatesState,
    workspace: WorkspaceId,
    kind: TemplateKind,
    name: &str,
    content: &TemplateContent,
) -> Result<(), ApiError> {
    if name.trim().is_empty() || name.chars().count() > MAX_NAME {
        return Err(ApiError::invalid("name", format!("is required (1 to {MAX_NAME} characters)")));
    }
    let parts =
        [("subject", Some(content.subject.as_str())), ("html", Some(&content.html)), ("text", content.text.as_deref())];
    for (field, source) in parts {
        let Some(source) = source else { continue };
        let required = match (kind, field) {
            (TemplateKind::Layout, "subject") if !source.is_empty() => {
                return Err(ApiError::invalid("subject", "a layout has no subject; its templates do"));
            }
            (_, "html") | (TemplateKind::Template, "subject") => true,
            _ => false,
        };
        if required && source.trim().is_empty() {
            return Err(ApiError::invalid(field, "must not be empty"));
        }
        Template::compile(source).map_err(|e| invalid_template(field, e))?;
        if kind == TemplateKind::Layout && field != "subject" && placeholders(source) != 1 {
            return Err(invalid_template(field, "a layout needs exactly one {{ content }}, where the body goes"));
        }
    }
    match (kind, content.layout) {
        (TemplateKind::Layout, Some(_)) => Err(ApiError::invalid("layout", "a layout cannot have a layout")),
        (TemplateKind::Template, Some(id)) => match latest(state, workspace, id).await {
            Ok(layout) if layout.kind == TemplateKind::Layout => Ok(()),
            _ => Err(ApiError::invalid("layout", format!("no layout {id} in this workspace"))),
        },
        (_, None) => Ok(()),
    }
}

/// The latest version of a template or layout that is not deleted.
pub async fn latest(state: &TemplatesState, workspace: WorkspaceId, id: TemplateId) -> Result<SavedTemplate, ApiError> {
    state
        .store
        .template_versions(workspace, &[id])
        .await?
        .into_iter()
        .filter(|t| t.deleted_at.is_none())
        .max_by_key(|t| t.version)
        .ok_or_else(|| ApiError::not_found("template"))
}

/// What a template or layout sends, with its layout's current version around it. A layout
/// is shown around a sample body.
pub async fn as_sent(state: &TemplatesState, template: &SavedTemplate) -> Result<SharedEmail, ApiError> {
    if template.kind == TemplateKind::Layout {
        let sample = SavedTemplate {
            kind: TemplateKind::Template,
            content: TemplateContent {
                subject: format!("{} (layout preview)", template.name),
                html: "<p>The template's body goes here.</p>".into(),
                text: Some("The template's body goes here.".into()),
                layout: Some(template.id),
            },
            ..template.clone()
        };
        return Ok(shared_email(&sample, Some(template)));
    }
    let layout = match template.content.layout {
        Some(id) => Some(latest(state, template.workspace_id, id).await?),
        None => None,
    };
    Ok(shared_email(template, layout.as_ref()))
}

/// An email rendered for one recipient.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RenderedEmail {
    pub subject: String,
    pub html: String,
    pub text: String,
    /// Missing variables and the like, each with its part, line and column.
    pub warnings: Vec<String>,
}

/// Renders a shared email over `variables` (a contact's, with `data`). A part that does too
/// much work fails naming it (`html`); missing variables are warnings.
pub fn render(email: &SharedEmail, variables: &Value, now: Timestamp) -> Result<RenderedEmail, ApiError> {
    let mut warnings = Vec::new();
    let mut part = |field: &str, source: &str, escape: Escape| -> Result<String, ApiError> {
        let template = Template::compile(source).map_err(|e| invalid_template(field, e))?;
        let rendered = template
            .render_at(variables, escape, &Limits::default(), now.to_offset_date_time())
            .map_err(|e| invalid_template(field, e))?;
        warnings.extend(rendered.warnings.iter().map(|w| format!("{field}: {w}")));
        Ok(rendered.output)
    };
    // A subject is one line, whatever the template produced.
    let subject = part("subject", &email.subject, Escape::Text)?.split_whitespace().collect::<Vec<_>>().join(" ");
    let html = part("html", &email.html, Escape::Html)?;
    let text = match &email.text {
        Some(text) => part("text", text, Escape::Text)?,
        None => html_to_text(&html),
    };
    Ok(RenderedEmail { subject, html, text, warnings })
}

/// Saves a new template or layout, or a new version of one (`id`), after [`check`].
pub async fn save(
    state: &TemplatesState,
    workspace: WorkspaceId,
    kind: TemplateKind,
    id: Option<TemplateId>,
    name: &str,
    content: &TemplateContent,
) -> Result<SavedTemplate, ApiError> {
    let name = name.trim();
    check(state, workspace, kind, name, content).await?;
    let now = state.clock.now();
    Ok(match id {
        None => state.store.create_template(workspace, kind, name, content, now).await?,
        Some(id) => {
            if latest(state, workspace, id).await?.kind != kind {
                return Err(ApiError::not_found(kind.as_str()));
            }
            state.store.update_template(workspace, id, name, content, now).await?
        }
    })
}

/// What a shared email sees when sent to `contact` outside a campaign: the contact's fields
/// and attributes (as in campaigns), the send's `data.*`, and `unsubscribe_url`.
pub fn variables(
    contact: &herald_domain::Contact,
    data: serde_json::Map<String, Value>,
    unsubscribe_url: &str,
) -> Value {
    let none = serde_json::Map::new();
    let scope = herald_campaign::context::Scope {
        contact,
        event: None,
        custom_variables: &none,
        campaign: None,
        unsubscribe_url,
        emails: &[],
    };
    let mut variables = scope.variables();
    if let Value::Object(top) = &mut variables {
        top.insert("data".into(), Value::Object(data));
    }
    variables
}

/// The latest version of template or layout `id`, if it is of `kind`.
pub async fn of_kind(
    state: &TemplatesState,
    workspace: WorkspaceId,
    kind: TemplateKind,
    id: TemplateId,
) -> Result<SavedTemplate, ApiError> {
    Some(latest(state, workspace, id).await?)
        .filter(|t| t.kind == kind)
        .ok_or_else(|| ApiError::not_found(kind.as_str()))
}

/// Every version of a template or layout, newest first.
pub async fn versions(
    state: &TemplatesState,
    workspace: WorkspaceId,
    id: TemplateId,
) -> Result<Vec<SavedTemplate>, ApiError> {
    let mut all = state.store.template_versions(workspace, &[id]).await?;
    all.sort_by_key(|t| std::cmp::Reverse(t.version));
    Ok(all)
}

/// Renders `template` (its `version`, or the one given) for `contact` with `data`, inside its
/// layout, sending nothing.
pub async fn preview(
    state: &TemplatesState,
    template: SavedTemplate,
    version: Option<u32>,
    contact: herald_domain::ContactId,
    data: serde_json::Map<String, Value>,
) -> Result<RenderedEmail, ApiError> {
    let workspace = template.workspace_id;
    let chosen = match version {
        None => template,
        Some(version) => versions(state, workspace, template.id)
            .await?
            .into_iter()
            .find(|t| t.version == version)
            .ok_or_else(|| ApiError::invalid("version", format!("{} has no version {version}", template.id)))?,
    };
    let contact = state.store.get_contact(workspace, contact).await?;
    let email = as_sent(state, &chosen).await?;
    render(&email, &variables(&contact, data, ""), state.clock.now())
}
