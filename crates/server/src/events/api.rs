//! `/api/v1/events`: the event log. Lists are newest first and leave bodies out; one event
//! comes with its request exactly as received and its outcome explained.

use axum::Json;
use axum::extract::{FromRef, Path, State};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use herald_domain::{EventId, Timestamp};
use herald_store::EventFilter;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{EventDto, EventsState, outcome_param};
use crate::web::auth::Auth;
use crate::web::error::{ApiError, ApiQuery, ErrorBody};
use crate::web::list::{List, ListParams};

/// The request an event came from.
#[derive(Debug, Serialize, ToSchema)]
pub struct RequestDto {
    method: String,
    content_type: Option<String>,
    /// `utf8` (body is the text) or `base64` (body is not valid UTF-8).
    body_encoding: &'static str,
    body: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventDetail {
    #[serde(flatten)]
    event: EventDto,
    request: Option<RequestDto>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventQuery {
    contact_id: Option<String>,
    /// Exact, case-sensitive.
    name: Option<String>,
    source_id: Option<String>,
    /// Received at or after (RFC 3339).
    from: Option<String>,
    /// Received before (RFC 3339).
    until: Option<String>,
    /// What the event did: `contact_created`, `contact_updated`, `started_campaign` (a
    /// campaign started a journey with it) or `nothing`.
    outcome: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

pub fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    EventsState: FromRef<S>,
{
    OpenApiRouter::new().routes(routes!(list_events)).routes(routes!(get_event))
}

fn time_param(value: Option<&str>, name: &str) -> Result<Option<Timestamp>, ApiError> {
    value
        .map(|v| {
            OffsetDateTime::parse(v, &Rfc3339)
                .map(Timestamp::from_offset_date_time)
                .map_err(|_| ApiError::invalid(name, "must be an RFC 3339 date-time such as 2026-01-31T12:00:00Z"))
        })
        .transpose()
}

/// The event log, newest first.
#[utoipa::path(get, path = "/events", tag = "events", params(EventQuery),
    responses((status = 200, body = List<EventDto>), (status = 400, body = ErrorBody)))]
async fn list_events(
    State(state): State<EventsState>,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<EventQuery>,
) -> Result<Json<List<EventDto>>, ApiError> {
    let page = ListParams { limit: q.limit, cursor: q.cursor }.page()?;
    let filter = EventFilter {
        contact: q.contact_id.as_deref().map(str::parse).transpose().map_err(|e| ApiError::invalid("contact_id", e))?,
        name: q.name,
        source: q.source_id.as_deref().map(str::parse).transpose().map_err(|e| ApiError::invalid("source_id", e))?,
        from: time_param(q.from.as_deref(), "from")?,
        until: time_param(q.until.as_deref(), "until")?,
        outcome: outcome_param(q.outcome.as_deref())?,
    };
    let events = state.store.list_events(p.workspace_id, &filter, page).await?;
    Ok(Json(List::from_page(events, EventDto::from)))
}

/// One event with the request as received.
#[utoipa::path(get, path = "/events/{id}", tag = "events", params(("id" = String, Path)),
    responses((status = 200, body = EventDetail), (status = 404, body = ErrorBody)))]
async fn get_event(
    State(state): State<EventsState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<EventDetail>, ApiError> {
    let id: EventId = id.parse().map_err(|e| ApiError::invalid("id", e))?;
    let mut event = state.store.get_event(p.workspace_id, id).await?;
    let request = event.request.take().map(|r| {
        let (body_encoding, body) = match String::from_utf8(r.body) {
            Ok(text) => ("utf8", text),
            Err(e) => ("base64", STANDARD.encode(e.into_bytes())),
        };
        RequestDto { method: r.method, content_type: r.content_type, body_encoding, body }
    });
    Ok(Json(EventDetail { event: event.into(), request }))
}
