//! The event log: newest first, filtered by source, event name, contact and outcome, refreshed every
//! few seconds on its first page; one event with its parsed fields, its outcome in words and
//! the raw request, pretty-printed.

use askama::Template;
use axum::Router;
use axum::extract::{FromRef, Path, Query, State};
use axum::response::IntoResponse;
use axum::routing::get;
use base64::Engine;
use herald_domain::contact::IdentityConflict;
use herald_domain::{ContactAction, Cursor, Event, EventId, PageRequest, SourceId};
use herald_store::EventFilter;
use serde::Deserialize;

use super::EventsState;
use super::{OUTCOMES, outcome_param};
use crate::web::error::ApiError;
use crate::web::{
    Layout, SelectOption, Session, UiError, UiResult, WebState, non_blank, parse_id, pretty, render, when,
};

/// The events pages.
pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    EventsState: FromRef<S>,
    WebState: FromRef<S>,
{
    Router::new().route("/events", get(list)).route("/events/{id}", get(show))
}

pub struct EventRow {
    pub id: String,
    pub name: String,
    pub received: String,
    pub contact_id: Option<String>,
    pub source: String,
    pub summary: String,
}

/// The outcome in words, one sentence each.
pub fn outcome_sentences(event: &Event) -> Vec<String> {
    let o = &event.outcome;
    let mut out = vec![
        match o.contact {
            ContactAction::Created => "Contact created.",
            ContactAction::Updated => "Contact updated.",
            ContactAction::Unchanged => "Contact matched; nothing about them changed.",
            ContactAction::Skipped => "No contact: the event is logged without one.",
        }
        .to_owned(),
    ];
    for conflict in &o.conflicts {
        out.push(match conflict {
            IdentityConflict::HeldByOther { field, value, contact } => {
                format!("The {field} {value:?} belongs to another contact ({contact}); it was not applied.")
            }
            IdentityConflict::Differs { field, value, kept } => {
                format!("The contact already has {field} {kept:?}; the event's {value:?} was not applied.")
            }
        });
    }
    out.extend(o.notes.iter().cloned());
    for reaction in &o.campaigns {
        let detail = if reaction.detail.is_empty() { String::new() } else { format!(": {}", reaction.detail) };
        out.push(match reaction.action {
            herald_domain::campaign::ReactionKind::Started => {
                format!("Campaign '{}' started{detail}.", reaction.campaign)
            }
            herald_domain::campaign::ReactionKind::Scheduled => {
                format!("Campaign '{}' opened a drop-off window{detail}.", reaction.campaign)
            }
            herald_domain::campaign::ReactionKind::Converted => {
                format!("Campaign '{}': goal reached{detail}.", reaction.campaign)
            }
            herald_domain::campaign::ReactionKind::Exited => {
                format!("Campaign '{}': journey exited{detail}.", reaction.campaign)
            }
            herald_domain::campaign::ReactionKind::Skipped => {
                format!("Campaign '{}' did not start{detail}.", reaction.campaign)
            }
        });
    }
    out
}

fn summary(event: &Event) -> String {
    let sentences = outcome_sentences(event);
    let mut text = sentences[0].clone();
    let started: Vec<&str> = event
        .outcome
        .campaigns
        .iter()
        .filter(|r| r.action == herald_domain::campaign::ReactionKind::Started)
        .map(|r| r.campaign.as_str())
        .collect();
    if !started.is_empty() {
        text.push_str(&format!(" Started: {}.", started.join(", ")));
    }
    text
}

#[derive(Debug, Default, Deserialize)]
pub struct EventQuery {
    source: Option<String>,
    name: Option<String>,
    contact: Option<String>,
    /// What the event did (`contact_created`, …; see `events::OUTCOMES`).
    outcome: Option<String>,
    cursor: Option<String>,
    /// `rows`: only the table rows (for polling).
    partial: Option<String>,
}

pub struct SourceOption {
    pub id: String,
    pub name: String,
    pub selected: bool,
}

#[derive(Template)]
#[template(path = "events.html")]
struct EventsPage {
    l: Layout,
    rows: Vec<EventRow>,
    sources: Vec<SourceOption>,
    outcomes: Vec<SelectOption>,
    name: String,
    contact: String,
    filtered: bool,
    poll: Option<String>,
    next: Option<String>,
    contact_error: Option<String>,
}

#[derive(Template)]
#[template(path = "event_rows.html")]
struct EventRows {
    rows: Vec<EventRow>,
    filtered: bool,
}

pub async fn list(State(state): State<EventsState>, session: Session, Query(q): Query<EventQuery>) -> UiResult {
    let ws = session.workspace_id;
    let source: Option<SourceId> = non_blank(&q.source).and_then(|s| s.parse().ok());
    let name = non_blank(&q.name).map(str::to_owned);
    // Unknown values are ignored like an unknown source: the select offers only known ones.
    let outcome_name = non_blank(&q.outcome).filter(|o| OUTCOMES.iter().any(|(name, _, _)| name == o));
    let outcome = outcome_param(outcome_name)?;
    let (contact, contact_error) = match non_blank(&q.contact) {
        Some(raw) => match crate::web::contact_filter(&state.store, session.workspace_id, raw).await {
            Ok(id) => (id, None),
            Err(e) => (None, Some(e)),
        },
        None => (None, None),
    };
    let after = non_blank(&q.cursor)
        .map(Cursor::decode::<EventId>)
        .transpose()
        .map_err(|_| UiError(ApiError::invalid("cursor", "is not a cursor")))?;
    let filtered = source.is_some() || name.is_some() || contact.is_some() || outcome.is_some();
    let rows_and_next = if contact_error.is_some() {
        (Vec::new(), None)
    } else {
        let filter = EventFilter { contact, name: name.clone(), source, from: None, until: None, outcome };
        let page = state.store.list_events(ws, &filter, PageRequest { after, limit: 50 }).await?;
        // Source names for the rows and the filter: the first 100 sources.
        (page.items, page.next_cursor.map(|c| c.as_str().to_owned()))
    };
    let (events, next) = rows_and_next;
    let all_sources = state.store.list_sources(ws, PageRequest { after: None, limit: 100 }).await?.items;
    let rows: Vec<EventRow> = events
        .iter()
        .map(|e| EventRow {
            id: e.id.to_string(),
            name: e.name.clone().unwrap_or_default(),
            received: when(e.received_at),
            contact_id: e.contact_id.map(|c| c.to_string()),
            source: e
                .source_id
                .map(|id| all_sources.iter().find(|s| s.id == id).map_or_else(|| id.to_string(), |s| s.name.clone()))
                .unwrap_or_else(|| "API".to_owned()),
            summary: summary(e),
        })
        .collect();
    if q.partial.as_deref() == Some("rows") {
        return Ok(render(&EventRows { rows, filtered }).into_response());
    }
    let mut query: Vec<(&str, String)> = Vec::new();
    if let Some(s) = source {
        query.push(("source", s.to_string()));
    }
    if let Some(n) = &name {
        query.push(("name", n.clone()));
    }
    if let Some(c) = non_blank(&q.contact) {
        query.push(("contact", c.to_owned()));
    }
    if let Some(o) = outcome_name {
        query.push(("outcome", o.to_owned()));
    }
    let base = serde_urlencoded::to_string(&query).unwrap_or_default();
    let poll = (after.is_none() && contact_error.is_none()).then(|| format!("/events?{base}&partial=rows"));
    let next = next.map(|c| {
        let mut q = query.clone();
        q.push(("cursor", c));
        format!("/events?{}", serde_urlencoded::to_string(&q).unwrap_or_default())
    });
    let page = EventsPage {
        l: Layout::new(&session, "/events", "Event log"),
        rows,
        sources: all_sources
            .iter()
            .map(|s| SourceOption { id: s.id.to_string(), name: s.name.clone(), selected: Some(s.id) == source })
            .collect(),
        outcomes: OUTCOMES
            .iter()
            .map(|(value, label, _)| SelectOption {
                value: (*value).to_owned(),
                label: (*label).to_owned(),
                selected: outcome_name == Some(*value),
            })
            .collect(),
        name: name.unwrap_or_default(),
        contact: non_blank(&q.contact).unwrap_or_default().to_owned(),
        filtered,
        poll,
        next,
        contact_error,
    };
    Ok(render(&page))
}

#[derive(Template)]
#[template(path = "event.html")]
struct EventPage {
    l: Layout,
    id: String,
    name: Option<String>,
    contact_id: Option<String>,
    source: Option<(String, String)>,
    occurred: String,
    received: String,
    idempotency_key: Option<String>,
    properties: String,
    outcome: Vec<String>,
    method: Option<String>,
    content_type: Option<String>,
    body: Option<String>,
    body_note: Option<&'static str>,
}

pub async fn show(State(state): State<EventsState>, session: Session, Path(id): Path<String>) -> UiResult {
    let id: EventId = parse_id(&id)?;
    let mut event = state.store.get_event(session.workspace_id, id).await?;
    let source = match event.source_id {
        Some(sid) => match state.store.get_source(session.workspace_id, sid).await {
            Ok(s) => Some((sid.to_string(), s.name)),
            Err(herald_store::StoreError::NotFound { .. }) => Some((sid.to_string(), format!("{sid} (deleted)"))),
            Err(e) => return Err(e.into()),
        },
        None => None,
    };
    let request = event.request.take();
    let (body, body_note) = match &request {
        None => (None, None),
        Some(r) => match std::str::from_utf8(&r.body) {
            Ok(text) => match serde_json::from_str::<serde_json::Value>(text) {
                Ok(json) => (Some(pretty(&json)), Some("JSON, indented for reading")),
                Err(_) => (Some(text.to_owned()), Some("as received")),
            },
            Err(_) => {
                (Some(base64::engine::general_purpose::STANDARD.encode(&r.body)), Some("not UTF-8: shown as base64"))
            }
        },
    };
    let page = EventPage {
        l: Layout::new(&session, "/events", event.name.clone().unwrap_or_else(|| "Event".into())),
        id: event.id.to_string(),
        outcome: outcome_sentences(&event),
        name: event.name,
        contact_id: event.contact_id.map(|c| c.to_string()),
        source,
        occurred: when(event.occurred_at),
        received: when(event.received_at),
        idempotency_key: event.idempotency_key,
        properties: pretty(&serde_json::Value::Object(event.properties)),
        method: request.as_ref().map(|r| r.method.clone()),
        content_type: request.as_ref().and_then(|r| r.content_type.clone()),
        body,
        body_note,
    };
    Ok(render(&page))
}
