//! The templates' pages: the list of templates and layouts, and the editor (saving makes a
//! new version) with the versions kept and a preview for a chosen contact.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::header::CONTENT_SECURITY_POLICY;
use axum::http::{HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Router, extract::FromRef};
use herald_domain::{ContactId, EmailAddress, PageRequest, SavedTemplate, TemplateContent, TemplateKind};
use herald_store::ContactFilter;
use serde::Deserialize;

use super::TemplatesState;
use super::service::{self, RenderedEmail};
use crate::web::error::ApiError;
use crate::web::{
    EMAIL_PREVIEW_CSP, FieldErrors, Form, Layout, NoticeQuery, SelectOption, Session, UiResult, WebState, non_blank,
    parse_id, render, see_other, when,
};

/// The list and the editor.
pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    TemplatesState: FromRef<S>,
    WebState: FromRef<S>,
{
    Router::new()
        .route("/templates", get(list))
        .route("/templates/new", get(new).post(create))
        .route("/templates/{id}", get(show).post(update))
}

pub struct Row {
    pub id: String,
    pub name: String,
    pub subject: String,
    pub version: u32,
    pub saved: String,
}

fn row(t: &SavedTemplate) -> Row {
    Row {
        id: t.id.to_string(),
        name: t.name.clone(),
        subject: t.content.subject.clone(),
        version: t.version,
        saved: when(t.version_created_at),
    }
}

#[derive(Template)]
#[template(path = "templates.html")]
struct ListPage {
    l: Layout,
    templates: Vec<Row>,
    layouts: Vec<Row>,
}

pub async fn list(State(state): State<TemplatesState>, session: Session) -> UiResult {
    let ws = session.workspace_id;
    let rows = |list: Vec<SavedTemplate>| list.iter().map(row).collect();
    let page = ListPage {
        l: Layout::new(&session, "/templates", "Templates"),
        templates: rows(state.store.list_templates(ws, TemplateKind::Template).await?),
        layouts: rows(state.store.list_templates(ws, TemplateKind::Layout).await?),
    };
    Ok(render(&page).into_response())
}

/// The editor's fields, as posted.
#[derive(Debug, Default, Deserialize)]
pub struct EditorForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    html: String,
    text: Option<String>,
    layout: Option<String>,
}

impl EditorForm {
    fn of(t: &SavedTemplate) -> Self {
        Self {
            name: t.name.clone(),
            subject: t.content.subject.clone(),
            html: t.content.html.clone(),
            text: t.content.text.clone(),
            layout: t.content.layout.map(|l| l.to_string()),
        }
    }

    fn content(&self) -> Result<TemplateContent, ApiError> {
        let layout =
            non_blank(&self.layout).map(|l| l.parse().map_err(|e| ApiError::invalid("layout", e))).transpose()?;
        let text = non_blank(&self.text).map(|_| self.text.clone().unwrap_or_default());
        Ok(TemplateContent { subject: self.subject.clone(), html: self.html.clone(), text, layout })
    }
}

/// Whom to preview for: a contact's id or email, and a version (blank: the latest).
#[derive(Debug, Default, Deserialize)]
pub struct PreviewQuery {
    contact: Option<String>,
    version: Option<String>,
    notice: Option<String>,
}

pub struct Version {
    pub version: u32,
    pub name: String,
    pub subject: String,
    pub saved: String,
}

#[derive(Template)]
#[template(path = "template.html")]
struct EditorPage {
    l: Layout,
    /// Empty for a new one.
    id: String,
    kind: &'static str,
    form: EditorForm,
    layouts: Vec<SelectOption>,
    errors: FieldErrors,
    versions: Vec<Version>,
    contact: String,
    preview_version: String,
    preview: Option<Result<RenderedEmail, String>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct KindQuery {
    kind: Option<String>,
}

fn kind_of(query: &KindQuery) -> TemplateKind {
    query.kind.as_deref().and_then(TemplateKind::parse).unwrap_or(TemplateKind::Template)
}

/// What the editor shows besides the form: a preview and a notice.
#[derive(Default)]
struct Shown {
    /// The contact's id or email as typed.
    contact: String,
    version: Option<u32>,
    preview: Option<Result<RenderedEmail, String>>,
    notice: Option<String>,
}

/// The editor page; `status` is 400 when it shows errors.
async fn editor(
    state: &TemplatesState,
    session: &Session,
    kind: TemplateKind,
    saved: Option<&SavedTemplate>,
    form: EditorForm,
    errors: FieldErrors,
    shown: Shown,
) -> UiResult {
    let ws = session.workspace_id;
    let layouts = match kind {
        TemplateKind::Template => state.store.list_templates(ws, TemplateKind::Layout).await?,
        TemplateKind::Layout => Vec::new(),
    };
    let chosen = form.layout.clone().unwrap_or_default();
    let layouts = layouts
        .iter()
        .map(|l| {
            let value = l.id.to_string();
            SelectOption { selected: value == chosen, label: l.name.clone(), value }
        })
        .collect();
    let versions = match saved {
        Some(t) => service::versions(state, ws, t.id)
            .await?
            .into_iter()
            .map(|v| Version {
                version: v.version,
                saved: when(v.version_created_at),
                name: v.name,
                subject: v.content.subject,
            })
            .collect(),
        None => Vec::new(),
    };
    let title = saved.map_or_else(|| format!("New {}", kind.as_str()), |t| t.name.clone());
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::BAD_REQUEST };
    let page = EditorPage {
        l: Layout::new(session, "/templates", title).with_notice(shown.notice),
        id: saved.map(|t| t.id.to_string()).unwrap_or_default(),
        kind: kind.as_str(),
        form,
        layouts,
        errors,
        versions,
        contact: shown.contact,
        preview_version: shown.version.map(|v| v.to_string()).unwrap_or_default(),
        preview: shown.preview,
    };
    let mut response = (status, render(&page)).into_response();
    response.headers_mut().insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(EMAIL_PREVIEW_CSP));
    Ok(response)
}

const FIELDS: [&str; 5] = ["name", "subject", "html", "text", "layout"];

pub async fn new(State(state): State<TemplatesState>, session: Session, Query(query): Query<KindQuery>) -> UiResult {
    let form = match kind_of(&query) {
        TemplateKind::Layout => EditorForm { html: "{{ content }}".into(), ..EditorForm::default() },
        TemplateKind::Template => EditorForm::default(),
    };
    editor(&state, &session, kind_of(&query), None, form, FieldErrors::default(), Default::default()).await
}

pub async fn create(
    State(state): State<TemplatesState>,
    Query(query): Query<KindQuery>,
    Form(session, form): Form<EditorForm>,
) -> UiResult {
    let kind = kind_of(&query);
    let saved = match form.content() {
        Ok(content) => service::save(&state, session.workspace_id, kind, None, &form.name, &content).await,
        Err(e) => Err(e),
    };
    match saved {
        Ok(t) => Ok(see_other(&format!("/templates/{}", t.id), "template_saved")),
        Err(error) => {
            let errors = FieldErrors::from_api(error, &FIELDS);
            editor(&state, &session, kind, None, form, errors, Default::default()).await
        }
    }
}

/// The contact a preview is for: an id (`ct_…`) or an email address.
async fn find_contact(state: &TemplatesState, session: &Session, text: &str) -> Result<ContactId, String> {
    if let Ok(id) = text.parse::<ContactId>() {
        return Ok(id);
    }
    let email =
        EmailAddress::parse(text).map_err(|_| format!("{text:?} is neither a contact id nor an email address"))?;
    let filter = ContactFilter { email: Some(email), ..ContactFilter::default() };
    let found = state.store.list_contacts(session.workspace_id, &filter, PageRequest::first(1)).await;
    found.ok().and_then(|page| page.items.first().map(|c| c.id)).ok_or_else(|| format!("no contact {text}"))
}

pub async fn show(
    State(state): State<TemplatesState>,
    session: Session,
    Path(id): Path<String>,
    Query(query): Query<PreviewQuery>,
) -> UiResult {
    let saved = service::latest(&state, session.workspace_id, parse_id(&id)?).await?;
    let contact = non_blank(&query.contact).map(str::to_owned);
    let version = non_blank(&query.version).and_then(|v| v.parse::<u32>().ok());
    let preview = match &contact {
        Some(text) => Some(match find_contact(&state, &session, text).await {
            Ok(contact) => service::preview(&state, saved.clone(), version, contact, Default::default())
                .await
                .map_err(|e| e.message),
            Err(message) => Err(message),
        }),
        None => None,
    };
    let shown = Shown {
        contact: contact.unwrap_or_default(),
        version,
        preview,
        notice: NoticeQuery { notice: query.notice }.message(),
    };
    editor(&state, &session, saved.kind, Some(&saved), EditorForm::of(&saved), FieldErrors::default(), shown).await
}

pub async fn update(
    State(state): State<TemplatesState>,
    Path(id): Path<String>,
    Form(session, form): Form<EditorForm>,
) -> UiResult {
    let current = service::latest(&state, session.workspace_id, parse_id(&id)?).await?;
    let saved = match form.content() {
        Ok(content) => {
            service::save(&state, session.workspace_id, current.kind, Some(current.id), &form.name, &content).await
        }
        Err(e) => Err(e),
    };
    match saved {
        Ok(t) => Ok(see_other(&format!("/templates/{}", t.id), "template_saved")),
        Err(error) => {
            let errors = FieldErrors::from_api(error, &FIELDS);
            editor(&state, &session, current.kind, Some(&current), form, errors, Default::default()).await
        }
    }
}
