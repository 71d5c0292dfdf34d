//! The broadcasts screen: the composer (a draft to a segment, a topic's subscribers or
//! everyone), and each broadcast with its live progress and its send, pause, resume and
//! cancel buttons.

use askama::Template;
use axum::Router;
use axum::extract::{FromRef, Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use herald_domain::{BroadcastId, Tracking};
use herald_store::broadcast::{Audience, Broadcast, Progress};
use serde::Deserialize;

use super::service::{self, Fields, When};
use super::{Content, HORIZON, spacing};
use crate::delivery::email::EmailState;
use crate::web::error::ApiError;
use crate::web::{
    Empty, FieldErrors, Form, Layout, NoticeQuery, Session, UiError, UiResult, WebState, parse_id, render, see_other,
};

pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    EmailState: FromRef<S>,
    WebState: FromRef<S>,
{
    Router::new().route("/broadcasts", get(list).post(create)).route("/broadcasts/{id}/{action}", post(act))
}

/// One choice of a select: its value and label.
#[derive(Debug)]
pub struct Choice {
    pub value: String,
    pub label: String,
}

#[derive(Debug)]
pub struct BroadcastRow {
    pub id: String,
    pub name: String,
    pub state: &'static str,
    pub audience: String,
    pub progress: Progress,
    pub sent: u64,
    pub opened: u64,
    pub clicked: u64,
}

#[derive(Debug, Default, Deserialize)]
pub struct Composer {
    #[serde(default)]
    name: String,
    /// `everyone`, `segment:<id>` or `topic:<id>`.
    #[serde(default)]
    audience: String,
    /// A topic id, or empty for transactional mail.
    #[serde(default)]
    topic: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    html: String,
    #[serde(default)]
    rate_per_hour: String,
}

#[derive(Template)]
#[template(path = "broadcasts.html")]
struct BroadcastsPage {
    l: Layout,
    rows: Vec<BroadcastRow>,
    audiences: Vec<Choice>,
    topics: Vec<Choice>,
    form: Composer,
    errors: FieldErrors,
}

fn audience_label(audience: Audience, audiences: &[Choice]) -> String {
    let value = match audience {
        Audience::Segment(id) => format!("segment:{id}"),
        Audience::Topic(id) => format!("topic:{id}"),
        Audience::Everyone => "everyone".into(),
    };
    audiences.iter().find(|c| c.value == value).map_or(value, |c| c.label.clone())
}

async fn row(state: &EmailState, broadcast: Broadcast, audiences: &[Choice]) -> Result<BroadcastRow, UiError> {
    let (progress, numbers) = service::numbers(state, &broadcast).await?;
    Ok(BroadcastRow {
        id: broadcast.id.to_string(),
        name: broadcast.name,
        state: broadcast.state.as_str(),
        audience: audience_label(broadcast.audience, audiences),
        progress,
        sent: numbers.counts.sent,
        opened: numbers.counts.opened,
        clicked: numbers.counts.clicked,
    })
}

async fn page(
    state: &EmailState,
    session: &Session,
    notice: Option<String>,
    form: Composer,
    errors: FieldErrors,
) -> UiResult {
    let workspace = session.workspace_id;
    let topics = state.store.list_topics(workspace).await?;
    let mut audiences = vec![Choice { value: "everyone".into(), label: "Everyone subscribed".into() }];
    for segment in state.store.list_segments(workspace).await? {
        audiences
            .push(Choice { value: format!("segment:{}", segment.id), label: format!("Segment: {}", segment.name) });
    }
    for topic in &topics {
        audiences
            .push(Choice { value: format!("topic:{}", topic.id), label: format!("Subscribers of {}", topic.name) });
    }
    let topics = topics.into_iter().map(|t| Choice { value: t.id.to_string(), label: t.name }).collect();
    let listed = state.store.list_broadcasts(workspace, herald_domain::PageRequest::first(50)).await?;
    let mut rows = Vec::with_capacity(listed.items.len());
    for broadcast in listed.items {
        rows.push(row(state, broadcast, &audiences).await?);
    }
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::BAD_REQUEST };
    let l = Layout::new(session, "/broadcasts", "Broadcasts").with_notice(notice);
    Ok((status, render(&BroadcastsPage { l, rows, audiences, topics, form, errors })).into_response())
}

pub async fn list(State(state): State<EmailState>, session: Session, Query(q): Query<NoticeQuery>) -> UiResult {
    page(&state, &session, q.message(), Composer::default(), FieldErrors::default()).await
}

/// The composer's fields as the use cases read them.
fn fields(form: &Composer) -> Result<Fields, ApiError> {
    let (audience, audience_id) = match form.audience.split_once(':') {
        Some((kind, id)) => (kind.to_owned(), Some(id.to_owned())),
        None => (form.audience.clone(), None),
    };
    let topic = match form.topic.trim() {
        "" => None,
        id => Some(id.parse().map_err(|e| ApiError::invalid("topic", e))?),
    };
    let rate_per_hour = match form.rate_per_hour.trim() {
        "" => None,
        rate => Some(rate.parse().map_err(|_| ApiError::invalid("rate_per_hour", "give a whole number"))?),
    };
    let content = Content {
        subject: Some(form.subject.clone()),
        html: Some(form.html.clone()),
        from: form.from.clone(),
        topic,
        tracking: Tracking { opens: true, clicks: true },
        ..Content::default()
    };
    Ok(Fields { name: form.name.clone(), audience, audience_id, content, rate_per_hour })
}

pub async fn create(State(state): State<EmailState>, Form(session, form): Form<Composer>) -> UiResult {
    let workspace = session.workspace_id;
    let checked = match fields(&form) {
        Ok(fields) => service::check(&state, workspace, fields).await,
        Err(e) => Err(e),
    };
    match checked {
        Ok(draft) => {
            state.store.create_broadcast(workspace, &draft, state.clock.now()).await?;
            Ok(see_other("/broadcasts", "broadcast_saved"))
        }
        Err(error) => {
            let known = ["name", "audience.id", "audience.kind", "topic", "from", "subject", "html", "rate_per_hour"];
            page(&state, &session, None, form, FieldErrors::from_api(error, &known)).await
        }
    }
}

/// A button of a broadcast: `send` (now), `pause`, `resume` or `cancel`.
pub async fn act(
    State(state): State<EmailState>,
    Path((id, action)): Path<(String, String)>,
    Form(session, Empty {}): Form<Empty>,
) -> UiResult {
    let (workspace, now) = (session.workspace_id, state.clock.now());
    let id: BroadcastId = parse_id(&id)?;
    let notice = match action.as_str() {
        "send" => {
            if let Err(error) = service::start(&state, workspace, id, When::Now).await {
                return page(&state, &session, None, Composer::default(), FieldErrors::from_api(error, &[])).await;
            }
            "broadcast_started"
        }
        "pause" => {
            state.store.pause_broadcast(workspace, id, now).await?;
            "broadcast_paused"
        }
        "resume" => {
            let rate = state.store.get_broadcast(workspace, id).await?.rate_per_hour;
            state.store.resume_broadcast(workspace, id, spacing(rate), HORIZON, now).await?;
            "broadcast_resumed"
        }
        "cancel" => {
            state.store.cancel_broadcast(workspace, id, now).await?;
            "broadcast_cancelled"
        }
        _ => return Err(UiError(ApiError::not_found("page"))),
    };
    Ok(see_other("/broadcasts", notice))
}
