//! Sources: list, create (generic, PostHog, mapped), the URL with ready-to-paste snippets
//! (shown at creation and rotation only: Herald keeps a hash of the token), rotation with a
//! confirmation, the recent rejections, and a mapped source's samples and mapping (`mapping.rs`).

use std::time::Duration;

use askama::Template;
use axum::Router;
use axum::extract::{FromRef, Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use herald_domain::{PageRequest, Source, SourceId, SourceKind};
use serde::Deserialize;

use super::IngestState;
use super::mapping::{self, MappingEditor, Submitted};
use super::service;
use crate::web::{
    FieldErrors, Form, Layout, NoticeQuery, Session, UiResult, WebState, non_blank, parse_id, render, see_other, when,
};

/// The sources' pages.
pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    IngestState: FromRef<S>,
    WebState: FromRef<S>,
{
    Router::new()
        .route("/sources", get(list).post(create))
        .route("/sources/{id}", get(show))
        .route("/sources/{id}/rotate", get(confirm_rotate).post(rotate))
        .route("/sources/{id}/mapping", post(submit_mapping))
}

pub struct SourceRow {
    pub id: String,
    pub name: String,
    pub kind: &'static str,
    pub enabled: bool,
    pub url_hint: String,
    pub created: String,
}

fn row(state: &IngestState, s: &Source) -> SourceRow {
    SourceRow {
        id: s.id.to_string(),
        name: s.name.clone(),
        kind: s.kind.as_str(),
        enabled: s.enabled,
        url_hint: service::inbound_url(state, &s.token_hint),
        created: when(s.created_at),
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct NewSource {
    #[serde(default)]
    name: String,
    #[serde(default)]
    kind: String,
}

#[derive(Template)]
#[template(path = "sources.html")]
struct SourcesPage {
    l: Layout,
    rows: Vec<SourceRow>,
    next: Option<String>,
    form: NewSource,
    errors: FieldErrors,
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    cursor: Option<String>,
}

async fn list_page(
    state: &IngestState,
    session: &Session,
    cursor: Option<&str>,
    form: NewSource,
    errors: FieldErrors,
) -> UiResult {
    let after = cursor
        .map(herald_domain::Cursor::decode::<SourceId>)
        .transpose()
        .map_err(|_| crate::web::UiError(crate::web::error::ApiError::invalid("cursor", "is not a cursor")))?;
    let page = state.store.list_sources(session.workspace_id, PageRequest { after, limit: 50 }).await?;
    let rows = page.items.iter().map(|s| row(state, s)).collect();
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::BAD_REQUEST };
    let page = SourcesPage {
        l: Layout::new(session, "/sources", "Sources"),
        rows,
        next: page.next_cursor.map(|c| c.as_str().to_owned()),
        form,
        errors,
    };
    Ok((status, render(&page)).into_response())
}

pub async fn list(State(state): State<IngestState>, session: Session, Query(q): Query<ListQuery>) -> UiResult {
    let form = NewSource { name: String::new(), kind: "generic".into() };
    list_page(&state, &session, non_blank(&q.cursor), form, FieldErrors::default()).await
}

pub struct Snippet {
    pub id: &'static str,
    pub label: &'static str,
    pub code: String,
}

fn snippets(kind: &str, url: &str) -> Vec<Snippet> {
    let (json, py, js) = match kind {
        "mapped" => (
            r#"{"user": {"email": "ada@example.com"}, "type": "user_signed_up", "plan": "pro"}"#,
            r#"{"user": {"email": "ada@example.com"}, "type": "user_signed_up", "plan": "pro"}"#,
            r#"{ user: { email: "ada@example.com" }, type: "user_signed_up", plan: "pro" }"#,
        ),
        _ => (
            r#"{"email": "ada@example.com", "event": "user_signed_up", "data": {"plan": "pro"}}"#,
            r#"{"email": "ada@example.com", "event": "user_signed_up", "data": {"plan": "pro"}}"#,
            r#"{ email: "ada@example.com", event: "user_signed_up", data: { plan: "pro" } }"#,
        ),
    };
    let mut list = vec![
        Snippet {
            id: "snippet-curl",
            label: "curl",
            code: format!("curl -X POST '{url}' \\\n  -H 'Content-Type: application/json' \\\n  -d '{json}'"),
        },
        Snippet {
            id: "snippet-fetch",
            label: "JavaScript fetch",
            code: format!(
                "await fetch(\"{url}\", {{\n  method: \"POST\",\n  headers: {{ \"Content-Type\": \"application/json\" }},\n  body: JSON.stringify({js}),\n}});"
            ),
        },
        Snippet {
            id: "snippet-python",
            label: "Python (requests)",
            code: format!(
                "import requests\n\nrequests.post(\n    \"{url}\",\n    json={py},\n    timeout=10,\n).raise_for_status()"
            ),
        },
    ];
    if kind == "posthog" {
        list.insert(
            0,
            Snippet {
                id: "snippet-posthog",
                label: "PostHog",
                code: format!(
                    "Data pipelines → Destinations → New destination → HTTP Webhook\nWebhook URL: {url}\nMethod: POST\nJSON body: keep PostHog's default (event, person, properties)"
                ),
            },
        );
    } else {
        list.push(Snippet {
            id: "snippet-nocode",
            label: "Zapier, Make, n8n",
            code: format!(
                "Zapier: Webhooks by Zapier → POST; URL {url}; Payload Type json\nMake: HTTP → Make a request; URL {url}; Method POST; Body type Raw, JSON\nn8n: HTTP Request node; Method POST; URL {url}; Send Body: JSON"
            ),
        });
    }
    list
}

#[derive(Template)]
#[template(path = "source_url.html")]
struct SourceUrlPage {
    l: Layout,
    s: SourceRow,
    url: String,
    rotated: bool,
    snippets: Vec<Snippet>,
}

fn url_page(
    state: &IngestState,
    session: &Session,
    source: &Source,
    token: &herald_domain::SourceToken,
    rotated: bool,
) -> UiResult {
    let url = service::inbound_url(state, token.expose());
    let page = SourceUrlPage {
        l: Layout::new(session, "/sources", source.name.clone()),
        s: row(state, source),
        snippets: snippets(source.kind.as_str(), &url),
        url,
        rotated,
    };
    Ok(render(&page))
}

pub async fn create(State(state): State<IngestState>, Form(session, form): Form<NewSource>) -> UiResult {
    match service::create(&state, session.workspace_id, &form.name, &form.kind, None).await {
        Ok((source, token)) => url_page(&state, &session, &source, &token, false),
        Err(error) => {
            let errors = FieldErrors::from_api(error, &["name", "kind"]);
            list_page(&state, &session, None, form, errors).await
        }
    }
}

pub struct RejectionRow {
    pub when: String,
    pub status: u16,
    pub reason: String,
    pub body: String,
}

#[derive(Template)]
#[template(path = "source.html")]
struct SourcePage {
    l: Layout,
    s: SourceRow,
    rate: Option<u32>,
    previous_expires: Option<String>,
    rejections: Vec<RejectionRow>,
    /// A mapped source's samples and mapping form.
    editor: Option<MappingEditor>,
    /// Another kind's mapping, if one was set through the API (not used by that kind).
    mapping: Option<String>,
}

/// The source's page; `editor` for a mapped source.
pub(super) async fn page(
    state: &IngestState,
    session: &Session,
    source: &Source,
    notice: Option<String>,
    editor: Option<MappingEditor>,
    status: StatusCode,
) -> UiResult {
    let rejections = state.store.list_rejections(session.workspace_id, source.id).await?;
    let page = SourcePage {
        l: Layout::new(session, "/sources", source.name.clone()).with_notice(notice),
        s: row(state, source),
        rate: source.rate_limit_per_second,
        previous_expires: source.previous_token_expires_at.map(when),
        rejections: rejections
            .into_iter()
            .take(20)
            .map(|r| RejectionRow {
                when: when(r.received_at),
                status: r.status,
                reason: r.reason,
                body: String::from_utf8_lossy(&r.body_prefix).into_owned(),
            })
            .collect(),
        mapping: source.mapping.as_ref().filter(|_| editor.is_none()).map(crate::web::pretty),
        editor,
    };
    Ok((status, render(&page)).into_response())
}

/// `?sample=N&suggest=1`: start the mapping form from the suggestion for sample N.
#[derive(Debug, Default, Deserialize)]
pub struct SampleQuery {
    sample: Option<usize>,
    suggest: Option<String>,
}

pub async fn show(
    State(state): State<IngestState>,
    session: Session,
    Path(id): Path<String>,
    Query(notice): Query<NoticeQuery>,
    Query(q): Query<SampleQuery>,
) -> UiResult {
    let id: SourceId = parse_id(&id)?;
    let source = state.store.get_source(session.workspace_id, id).await?;
    let editor = match source.kind {
        SourceKind::Mapped => {
            let suggested = non_blank(&q.suggest).is_some();
            Some(mapping::editor(&state, &session, &source, q.sample.unwrap_or(0), suggested).await?)
        }
        _ => None,
    };
    page(&state, &session, &source, notice.message(), editor, StatusCode::OK).await
}

#[derive(Template)]
#[template(path = "source_rotate.html")]
struct RotatePage {
    l: Layout,
    s: SourceRow,
}

pub async fn confirm_rotate(State(state): State<IngestState>, session: Session, Path(id): Path<String>) -> UiResult {
    let source = state.store.get_source(session.workspace_id, parse_id(&id)?).await?;
    let page =
        RotatePage { l: Layout::new(&session, "/sources", format!("Rotate {}", source.name)), s: row(&state, &source) };
    Ok(render(&page))
}

#[derive(Debug, Deserialize)]
pub struct RotateForm {
    #[serde(default)]
    grace_seconds: u64,
}

pub async fn rotate(
    State(state): State<IngestState>,
    Path(id): Path<String>,
    Form(session, form): Form<RotateForm>,
) -> UiResult {
    let id: SourceId = parse_id(&id)?;
    let (source, token) =
        service::rotate(&state, session.workspace_id, id, Duration::from_secs(form.grace_seconds)).await?;
    url_page(&state, &session, &source, &token, true)
}

/// Preview or save a mapped source's mapping (see [`mapping::submitted`]).
pub async fn submit_mapping(
    State(state): State<IngestState>,
    Path(id): Path<String>,
    Form(session, pairs): Form<Vec<(String, String)>>,
) -> UiResult {
    let id: SourceId = parse_id(&id)?;
    let source = state.store.get_source(session.workspace_id, id).await?;
    match mapping::submitted(&state, session.workspace_id, &source, &pairs).await? {
        Submitted::Saved => Ok(see_other(&format!("/sources/{id}"), "mapping")),
        Submitted::Shown(editor, status) => page(&state, &session, &source, None, Some(*editor), status).await,
    }
}
