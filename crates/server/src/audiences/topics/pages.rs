//! The topics screen: the workspace's subscription topics, adding one, deleting one.

use askama::Template;
use axum::Router;
use axum::extract::{FromRef, Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use herald_domain::{Topic, TopicId};
use serde::Deserialize;

use super::{TopicsState, service};
use crate::web::{
    Empty, FieldErrors, Form, Layout, NoticeQuery, Session, UiResult, WebState, parse_id, render, see_other, when,
};

pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    TopicsState: FromRef<S>,
    WebState: FromRef<S>,
{
    Router::new().route("/topics", get(list).post(create)).route("/topics/{id}/delete", post(delete))
}

pub struct TopicRow {
    pub id: String,
    pub name: String,
    pub description: String,
    pub created: String,
}

fn row(t: &Topic) -> TopicRow {
    TopicRow {
        id: t.id.to_string(),
        name: t.name.clone(),
        description: t.description.clone(),
        created: when(t.created_at),
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct NewTopic {
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
}

#[derive(Template)]
#[template(path = "topics.html")]
struct TopicsPage {
    l: Layout,
    rows: Vec<TopicRow>,
    form: NewTopic,
    errors: FieldErrors,
}

async fn list_page(
    state: &TopicsState,
    session: &Session,
    notice: Option<String>,
    form: NewTopic,
    errors: FieldErrors,
) -> UiResult {
    // A workspace has a handful of topics: the store lists them whole.
    let topics = state.store.list_topics(session.workspace_id).await?;
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::BAD_REQUEST };
    let l = Layout::new(session, "/topics", "Topics").with_notice(notice);
    Ok((status, render(&TopicsPage { l, rows: topics.iter().map(row).collect(), form, errors })).into_response())
}

pub async fn list(State(state): State<TopicsState>, session: Session, Query(q): Query<NoticeQuery>) -> UiResult {
    list_page(&state, &session, q.message(), NewTopic::default(), FieldErrors::default()).await
}

pub async fn create(State(state): State<TopicsState>, Form(session, form): Form<NewTopic>) -> UiResult {
    let now = state.clock.now();
    match service::create(&state.store, session.workspace_id, &form.name, &form.description, now).await {
        Ok(_) => Ok(see_other("/topics", "topic_created")),
        Err(error) => {
            let errors = FieldErrors::from_api(error, &["name", "description"]);
            list_page(&state, &session, None, form, errors).await
        }
    }
}

pub async fn delete(
    State(state): State<TopicsState>,
    Path(id): Path<String>,
    Form(session, Empty {}): Form<Empty>,
) -> UiResult {
    let id: TopicId = parse_id(&id)?;
    state.store.delete_topic(session.workspace_id, id, state.clock.now()).await?;
    Ok(see_other("/topics", "topic_deleted"))
}
