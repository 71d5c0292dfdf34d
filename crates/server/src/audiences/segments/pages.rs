//! The segments' pages: the list with each segment's size, the builder (a form over the JSON
//! definition the API takes, which the page's script turns into groups of conditions with a
//! live count), and each segment's page with its build's progress, members, CSV export and
//! size over time.

use askama::Template;
use axum::Router;
use axum::extract::{FromRef, Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use herald_campaign::segment;
use herald_domain::{PageRequest, SegmentId, WorkspaceId};
use herald_store::segment::{SegmentRecord, SegmentStatus};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::chart::SizeChart;
use super::{SegmentsState, api::PREVIEW_SAMPLE, service};
use crate::web::error::ApiError;
use crate::web::{
    FieldErrors, Form, Layout, NoticeQuery, Session, UiResult, WebState, capitalize, cursor, list_url, parse_id,
    pretty, render, see_other, when,
};

pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    SegmentsState: FromRef<S>,
    WebState: FromRef<S>,
{
    Router::new()
        .route("/segments", get(list))
        .route("/segments/new", get(new).post(create))
        .route("/segments/preview", post(preview))
        .route("/segments/{id}", get(show))
        .route("/segments/{id}/edit", get(edit).post(update))
        .route("/segments/{id}/progress", get(progress))
        .route("/segments/{id}/members.csv", get(export))
}

/// Members a segment's page lists at a time.
const MEMBERS_PAGE: u32 = 50;
/// Days the size chart shows.
const CHART_DAYS: u32 = 30;
/// What a new segment starts from: everyone with an email address.
const STARTER: &str = r#"{"all": [{"field": "email", "op": "exists"}]}"#;

pub struct Row {
    pub id: String,
    pub name: String,
    pub members: u64,
    pub building: bool,
    pub progress: u64,
    pub updated: String,
}

fn row(s: &SegmentRecord) -> Row {
    Row {
        id: s.id.to_string(),
        name: s.name.clone(),
        members: s.members,
        building: s.status == SegmentStatus::Building,
        progress: s.progress,
        updated: when(s.updated_at),
    }
}

#[derive(Template)]
#[template(path = "segments.html")]
struct ListPage {
    l: Layout,
    rows: Vec<Row>,
}

pub async fn list(State(state): State<SegmentsState>, session: Session) -> UiResult {
    let segments = state.store.list_segments(session.workspace_id).await?;
    let page = ListPage { l: Layout::new(&session, "/segments", "Segments"), rows: segments.iter().map(row).collect() };
    Ok(render(&page).into_response())
}

/// The builder's fields, as posted: `intent` is `preview` (count, without saving: what the
/// Count button does without script) or `save`.
#[derive(Debug, Default, Deserialize)]
pub struct BuilderForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    definition: String,
    intent: Option<String>,
}

/// A definition's problem, at its place in the definition (`all[0].op`; empty: the whole).
#[derive(Debug, Default)]
pub struct DefinitionError {
    pub path: String,
    pub message: String,
}

/// What the builder's script offers in its choices.
#[derive(Serialize)]
struct Choices {
    operators: Vec<&'static str>,
    email: Vec<&'static str>,
    topics: Vec<(String, String)>,
    segments: Vec<(String, String)>,
}

/// A definition's count and sample, or its problem.
#[derive(Template)]
#[template(path = "segment_preview.html")]
struct PreviewPart {
    result: Result<Counted, DefinitionError>,
}

struct Counted {
    matches: u64,
    examined: u64,
    complete: bool,
    sample: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "segment_edit.html")]
struct BuilderPage {
    l: Layout,
    /// Empty for a new segment.
    id: String,
    name: String,
    definition: String,
    /// The choices for the script, as JSON.
    choices: String,
    errors: FieldErrors,
    definition_error: Option<DefinitionError>,
    preview: Option<PreviewPart>,
}

/// Splits an error into the name's or the definition's (with its place).
fn file_error(error: ApiError) -> (FieldErrors, Option<DefinitionError>) {
    let Some(field) = error.field.clone().filter(|f| f == "definition" || f.starts_with("definition.")) else {
        return (FieldErrors::from_api(error, &["name"]), None);
    };
    let message = error.message.strip_prefix(&format!("{field}: ")).unwrap_or(&error.message);
    let path = field.strip_prefix("definition").unwrap_or_default().trim_start_matches('.').to_owned();
    (FieldErrors::default(), Some(DefinitionError { path, message: capitalize(message) }))
}

/// The definition as typed, read as JSON.
fn parse_definition(text: &str) -> Result<Value, ApiError> {
    serde_json::from_str(text).map_err(|e| ApiError::invalid("definition", format!("is not JSON: {e}")))
}

async fn count(state: &SegmentsState, workspace: WorkspaceId, id: Option<SegmentId>, text: &str) -> PreviewPart {
    let counted = async {
        let value = parse_definition(text)?;
        let compiled = service::checked_definition(state, workspace, id, &value).await?;
        let preview = state.segments.preview(workspace, &compiled, PREVIEW_SAMPLE).await?;
        Ok::<_, ApiError>(Counted {
            matches: preview.matches,
            examined: preview.examined,
            complete: preview.complete,
            sample: preview
                .sample
                .iter()
                .map(|c| {
                    let label = c.email.as_ref().map(|e| e.as_str().to_owned());
                    (c.id.to_string(), label.or_else(|| c.name.clone()).unwrap_or_else(|| c.id.to_string()))
                })
                .collect(),
        })
    };
    PreviewPart { result: counted.await.map_err(|e| file_error(e).1.unwrap_or_default()) }
}

async fn builder(
    state: &SegmentsState,
    session: &Session,
    saved: Option<&SegmentRecord>,
    form: BuilderForm,
    error: Option<ApiError>,
    preview: Option<PreviewPart>,
) -> UiResult {
    let ws = session.workspace_id;
    let others = state.store.list_segments(ws).await?;
    let choices = Choices {
        operators: segment::attribute_operators(),
        email: segment::email_activities(),
        topics: state.store.list_topics(ws).await?.into_iter().map(|t| (t.id.to_string(), t.name)).collect(),
        segments: others
            .into_iter()
            .filter(|o| Some(o.id) != saved.map(|s| s.id))
            .map(|o| (o.id.to_string(), o.name))
            .collect(),
    };
    let (errors, definition_error) = error.map(file_error).unwrap_or_default();
    let status = if errors.is_empty() && definition_error.is_none() { StatusCode::OK } else { StatusCode::BAD_REQUEST };
    let title = saved.map_or_else(|| "New segment".to_owned(), |s| format!("Edit {}", s.name));
    let page = BuilderPage {
        l: Layout::new(session, "/segments", title),
        id: saved.map(|s| s.id.to_string()).unwrap_or_default(),
        name: form.name,
        definition: form.definition,
        choices: serde_json::to_string(&choices).unwrap_or_default(),
        errors,
        definition_error,
        preview,
    };
    Ok((status, render(&page)).into_response())
}

pub async fn new(State(state): State<SegmentsState>, session: Session) -> UiResult {
    let form = BuilderForm { definition: STARTER.to_owned(), ..BuilderForm::default() };
    builder(&state, &session, None, form, None, None).await
}

/// Saves the builder's segment as `saved` (a new one when `None`), or counts it.
async fn submit(
    state: &SegmentsState,
    session: &Session,
    saved: Option<&SegmentRecord>,
    form: BuilderForm,
) -> UiResult {
    let ws = session.workspace_id;
    let id = saved.map(|s| s.id);
    if form.intent.as_deref() == Some("preview") {
        let part = count(state, ws, id, &form.definition).await;
        return builder(state, session, saved, form, None, Some(part)).await;
    }
    let result = match parse_definition(&form.definition) {
        Ok(value) => service::save(state, ws, id, &form.name, value).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(s) => Ok(see_other(&format!("/segments/{}", s.id), "segment_saved")),
        Err(error) => builder(state, session, saved, form, Some(error), None).await,
    }
}

pub async fn create(State(state): State<SegmentsState>, Form(session, form): Form<BuilderForm>) -> UiResult {
    submit(&state, &session, None, form).await
}

pub async fn edit(State(state): State<SegmentsState>, session: Session, Path(id): Path<String>) -> UiResult {
    let saved = state.store.get_segment(session.workspace_id, parse_id(&id)?).await?;
    let form = BuilderForm { name: saved.name.clone(), definition: pretty(&saved.definition), intent: None };
    builder(&state, &session, Some(&saved), form, None, None).await
}

pub async fn update(
    State(state): State<SegmentsState>,
    Path(id): Path<String>,
    Form(session, form): Form<BuilderForm>,
) -> UiResult {
    let saved = state.store.get_segment(session.workspace_id, parse_id(&id)?).await?;
    submit(&state, &session, Some(&saved), form).await
}

/// The definition to count, with the segment it is for (when editing one: a reference to
/// itself is then an error).
#[derive(Debug, Deserialize)]
pub struct PreviewForm {
    #[serde(default)]
    definition: String,
    segment: Option<String>,
}

/// The live count: the builder's script posts the definition as it changes and shows this.
pub async fn preview(State(state): State<SegmentsState>, Form(session, form): Form<PreviewForm>) -> UiResult {
    let id = form.segment.as_deref().and_then(|s| s.parse().ok());
    let part = count(&state, session.workspace_id, id, &form.definition).await;
    let status = if part.result.is_ok() { StatusCode::OK } else { StatusCode::BAD_REQUEST };
    Ok((status, render(&part)).into_response())
}

#[derive(Debug, Default, Deserialize)]
pub struct MembersQuery {
    cursor: Option<String>,
    notice: Option<String>,
}

pub struct MemberRow {
    pub id: String,
    pub label: String,
    pub since: String,
}

#[derive(Template)]
#[template(path = "segment.html")]
struct SegmentPage {
    l: Layout,
    s: Row,
    definition: String,
    members: Vec<MemberRow>,
    next: Option<String>,
    chart: SizeChart,
}

/// A segment's build, as its page shows it and refreshes it.
#[derive(Template)]
#[template(path = "segment_progress.html")]
struct ProgressPart {
    s: Row,
}

pub async fn show(
    State(state): State<SegmentsState>,
    session: Session,
    Path(id): Path<String>,
    Query(q): Query<MembersQuery>,
) -> UiResult {
    let ws = session.workspace_id;
    let saved = state.store.get_segment(ws, parse_id(&id)?).await?;
    let page = state.store.list_members(ws, saved.id, PageRequest { after: cursor(&q.cursor)?, limit: MEMBERS_PAGE });
    let page = page.await?;
    let members = page
        .items
        .iter()
        .map(|m| MemberRow {
            id: m.contact.id.to_string(),
            label: m.contact.email.as_ref().map_or_else(|| m.contact.id.to_string(), |e| e.as_str().to_owned()),
            since: when(m.since),
        })
        .collect();
    let next = page.next_cursor.map(|c| list_url(&format!("/segments/{}", saved.id), &[], Some(c.as_str())));
    let sizes = state.store.segment_sizes(ws, saved.id, 366).await?;
    let notice = NoticeQuery { notice: q.notice }.message();
    let page = SegmentPage {
        l: Layout::new(&session, "/segments", saved.name.clone()).with_notice(notice),
        s: row(&saved),
        definition: pretty(&saved.definition),
        members,
        next,
        chart: SizeChart::new(&sizes, state.clock.now(), CHART_DAYS),
    };
    Ok(render(&page).into_response())
}

pub async fn progress(State(state): State<SegmentsState>, session: Session, Path(id): Path<String>) -> UiResult {
    let saved = state.store.get_segment(session.workspace_id, parse_id(&id)?).await?;
    Ok(render(&ProgressPart { s: row(&saved) }).into_response())
}

pub async fn export(State(state): State<SegmentsState>, session: Session, Path(id): Path<String>) -> UiResult {
    let saved = state.store.get_segment(session.workspace_id, parse_id(&id)?).await?;
    let csv = service::members_csv(&state.store, session.workspace_id, saved.id).await?;
    Ok(crate::web::csv_file(&format!("{}-members.csv", saved.id), csv))
}
