//! `/api/v1/broadcasts`: drafts (create, list, read, change, delete), their start (`/send`),
//! `/pause`, `/resume`, `/cancel`, a preview for a contact, a test send, and the progress and
//! email numbers in every read.

use axum::Json;
use axum::extract::{FromRef, Path, State};
use axum::http::StatusCode;
use herald_domain::{BroadcastId, ContactId, MessageId, TemplateId, Timestamp, TopicId, Tracking};
use herald_store::broadcast::{Audience, Broadcast, Progress};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::service::{self, Fields, When};
use super::{Content, HORIZON, spacing};
use crate::delivery::email::EmailState;
use crate::templates::service::RenderedEmail;
use crate::web::auth::Auth;
use crate::web::error::{ApiError, ApiJson, ApiQuery, ErrorBody};
use crate::web::list::{List, ListParams};

/// Who a broadcast goes to.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AudienceDto {
    /// `segment` (its members), `topic` (its subscribers) or `everyone` (every contact with
    /// an email who is not suppressed).
    #[schema(example = "segment")]
    kind: String,
    /// The segment (`seg_…`) or topic (`top_…`); none for `everyone`.
    id: Option<String>,
}

/// A broadcast to save as a draft.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "name": "December newsletter", "audience": {"kind": "topic", "id": "top_0193a4b2c3d47e5f8a9b0c1d2e3f4a5b"},
    "from": "Acme <news@mail.acme.test>", "topic": "top_0193a4b2c3d47e5f8a9b0c1d2e3f4a5b",
    "subject": "What's new, {{ contact.first_name }}", "html": "<p>Hello</p>", "rate_per_hour": 36000
}))]
pub struct BroadcastInput {
    name: String,
    audience: AudienceDto,
    /// A saved template (`tpl_…`), sent inside its layout; or give `subject` and `html`.
    template: Option<String>,
    subject: Option<String>,
    html: Option<String>,
    text: Option<String>,
    /// A layout (`tpl_…`) around inline `html`.
    layout: Option<String>,
    /// `Name <address>` on a verified sending domain of the workspace.
    from: String,
    reply_to: Option<String>,
    /// The subscription topic (`top_…`) recipients can leave; or `transactional: true`.
    topic: Option<String>,
    /// Mail about no topic (leaving a topic does not stop it).
    #[serde(default)]
    transactional: bool,
    /// An event that counts as a conversion when a recipient performs it after the send.
    goal: Option<String>,
    /// Messages per hour at most; none for as fast as delivery goes.
    rate_per_hour: Option<i64>,
    #[serde(default = "yes")]
    track_opens: bool,
    #[serde(default = "yes")]
    track_clicks: bool,
}

fn yes() -> bool {
    true
}

/// When a broadcast starts: now (neither field), at `at`, or at `local` time in each
/// contact's time zone.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendInput {
    #[schema(value_type = Option<String>, format = DateTime)]
    at: Option<Timestamp>,
    local: Option<LocalTime>,
}

/// A local time: `time` on `date` in each contact's `timezone` attribute, or in `timezone`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LocalTime {
    #[schema(example = "2026-12-10")]
    date: String,
    #[schema(example = "09:00")]
    time: String,
    #[schema(example = "Europe/Paris")]
    timezone: String,
}

/// Addresses to send a test to.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestInput {
    /// 1 to 10 addresses.
    to: Vec<String>,
}

/// The messages a test send made.
#[derive(Debug, Serialize, ToSchema)]
pub struct TestSent {
    #[schema(value_type = Vec<String>)]
    messages: Vec<MessageId>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PreviewQuery {
    /// The contact (`con_…`) to render for.
    contact_id: String,
}

/// A broadcast, with its progress and numbers.
#[derive(Debug, Serialize, ToSchema)]
pub struct BroadcastDto {
    #[schema(value_type = String, example = "brd_0193a4b2c3d47e5f8a9b0c1d2e3f4a5b")]
    id: BroadcastId,
    name: String,
    /// `draft`, `scheduled`, `sending`, `paused`, `finished` or `cancelled`.
    state: &'static str,
    audience: AudienceDto,
    #[schema(value_type = Option<String>)]
    template: Option<TemplateId>,
    /// The template's version sent (fixed when the broadcast starts).
    template_version: Option<u32>,
    subject: Option<String>,
    html: Option<String>,
    text: Option<String>,
    #[schema(value_type = Option<String>)]
    layout: Option<TemplateId>,
    from: String,
    reply_to: Option<String>,
    #[schema(value_type = Option<String>)]
    topic: Option<TopicId>,
    transactional: bool,
    goal: Option<String>,
    rate_per_hour: Option<u32>,
    track_opens: bool,
    track_clicks: bool,
    /// When the first message may go (set when started).
    #[schema(value_type = Option<String>, format = DateTime)]
    start_at: Option<Timestamp>,
    /// Contacts in the audience when it started.
    audience_size: u64,
    #[schema(value_type = Object)]
    progress: Progress,
    /// Sent, delivered, opened, clicked, bounced, complained, unsubscribed (with rates), and
    /// converted against the goal.
    #[schema(value_type = Object)]
    numbers: herald_store::email::EmailNumbers,
    #[schema(value_type = String, format = DateTime)]
    created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    updated_at: Timestamp,
}

pub fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    EmailState: FromRef<S>,
{
    OpenApiRouter::new()
        .routes(routes!(list_broadcasts, create_broadcast))
        .routes(routes!(get_broadcast, update_broadcast, delete_broadcast))
        .routes(routes!(send_broadcast))
        .routes(routes!(pause_broadcast))
        .routes(routes!(resume_broadcast))
        .routes(routes!(cancel_broadcast))
        .routes(routes!(preview_broadcast))
        .routes(routes!(test_broadcast))
}

fn parse_id(raw: &str) -> Result<BroadcastId, ApiError> {
    raw.parse().map_err(|e| ApiError::invalid("id", e))
}

/// The input as the use cases read it; ids parsed, each refusal naming its field.
fn fields(input: BroadcastInput) -> Result<Fields, ApiError> {
    let id = |field: &str, raw: Option<String>| -> Result<Option<TemplateId>, ApiError> {
        raw.map(|r| r.parse().map_err(|e| ApiError::invalid(field, e))).transpose()
    };
    let topic: Option<TopicId> =
        input.topic.map(|t| t.parse().map_err(|e| ApiError::invalid("topic", e))).transpose()?;
    if topic.is_some() == input.transactional {
        return Err(ApiError::invalid(
            "topic",
            "name the topic recipients can leave, or mark the broadcast transactional",
        ));
    }
    let content = Content {
        template: id("template", input.template)?,
        subject: input.subject,
        html: input.html,
        text: input.text,
        layout: id("layout", input.layout)?,
        from: input.from,
        reply_to: input.reply_to,
        topic,
        goal: input.goal,
        tracking: Tracking { opens: input.track_opens, clicks: input.track_clicks },
        started: None,
    };
    Ok(Fields {
        name: input.name,
        audience: input.audience.kind,
        audience_id: input.audience.id,
        content,
        rate_per_hour: input.rate_per_hour,
    })
}

async fn dto(state: &EmailState, broadcast: Broadcast) -> Result<BroadcastDto, ApiError> {
    let (progress, numbers) = service::numbers(state, &broadcast).await?;
    let content = Content::of(&broadcast).unwrap_or_default();
    let audience = AudienceDto {
        kind: broadcast.audience.kind().into(),
        id: match broadcast.audience {
            Audience::Segment(id) => Some(id.to_string()),
            Audience::Topic(id) => Some(id.to_string()),
            Audience::Everyone => None,
        },
    };
    Ok(BroadcastDto {
        id: broadcast.id,
        name: broadcast.name,
        state: broadcast.state.as_str(),
        audience,
        template: content.template,
        template_version: content.started.as_ref().and_then(|s| s.template_version),
        subject: content.subject,
        html: content.html,
        text: content.text,
        layout: content.layout,
        from: content.from,
        reply_to: content.reply_to,
        transactional: content.topic.is_none(),
        topic: content.topic,
        goal: content.goal,
        rate_per_hour: broadcast.rate_per_hour,
        track_opens: content.tracking.opens,
        track_clicks: content.tracking.clicks,
        start_at: broadcast.start_at,
        audience_size: broadcast.audience_size,
        progress,
        numbers,
        created_at: broadcast.created_at,
        updated_at: broadcast.updated_at,
    })
}

/// The workspace's broadcasts, newest first, each with its progress and numbers.
#[utoipa::path(get, path = "/broadcasts", tag = "broadcasts", params(ListParams),
    responses((status = 200, body = List<BroadcastDto>)))]
async fn list_broadcasts(
    State(state): State<EmailState>,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<ListParams>,
) -> Result<Json<List<BroadcastDto>>, ApiError> {
    let page = state.store.list_broadcasts(p.workspace_id, q.page()?).await?;
    let next_cursor = page.next_cursor.map(|c| c.as_str().to_owned());
    let mut data = Vec::with_capacity(page.items.len());
    for broadcast in page.items {
        data.push(dto(&state, broadcast).await?);
    }
    Ok(Json(List { data, next_cursor }))
}

/// Save a draft broadcast. Nothing is sent until `/send`.
#[utoipa::path(post, path = "/broadcasts", tag = "broadcasts", request_body = BroadcastInput,
    responses((status = 201, body = BroadcastDto), (status = 400, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "A template that does not compile")))]
async fn create_broadcast(
    State(state): State<EmailState>,
    Auth(p): Auth,
    ApiJson(input): ApiJson<BroadcastInput>,
) -> Result<(StatusCode, Json<BroadcastDto>), ApiError> {
    let draft = service::check(&state, p.workspace_id, fields(input)?).await?;
    let created = state.store.create_broadcast(p.workspace_id, &draft, state.clock.now()).await?;
    Ok((StatusCode::CREATED, Json(dto(&state, created).await?)))
}

/// A broadcast with its progress (queued, sent, failed, suppressed, cancelled, left) and
/// email numbers.
#[utoipa::path(get, path = "/broadcasts/{id}", tag = "broadcasts", params(("id" = String, Path)),
    responses((status = 200, body = BroadcastDto), (status = 404, body = ErrorBody)))]
async fn get_broadcast(
    State(state): State<EmailState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<BroadcastDto>, ApiError> {
    let broadcast = state.store.get_broadcast(p.workspace_id, parse_id(&id)?).await?;
    Ok(Json(dto(&state, broadcast).await?))
}

/// Replace a draft (409 once started).
#[utoipa::path(put, path = "/broadcasts/{id}", tag = "broadcasts", params(("id" = String, Path)),
    request_body = BroadcastInput,
    responses((status = 200, body = BroadcastDto), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn update_broadcast(
    State(state): State<EmailState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<BroadcastInput>,
) -> Result<Json<BroadcastDto>, ApiError> {
    let id = parse_id(&id)?;
    let draft = service::check(&state, p.workspace_id, fields(input)?).await?;
    let updated = state.store.update_broadcast(p.workspace_id, id, &draft, state.clock.now()).await?;
    Ok(Json(dto(&state, updated).await?))
}

/// Delete a draft (409 once started).
#[utoipa::path(delete, path = "/broadcasts/{id}", tag = "broadcasts", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn delete_broadcast(
    State(state): State<EmailState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.store.delete_broadcast(p.workspace_id, parse_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Start a draft: now, at `at`, or at a `local` time in each contact's time zone. Its
/// template's current version is the one sent. Refused for an empty or deleted segment, a
/// time in the past, or a local time with a rate limit.
#[utoipa::path(post, path = "/broadcasts/{id}/send", tag = "broadcasts", params(("id" = String, Path)),
    request_body = SendInput,
    responses((status = 200, body = BroadcastDto), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "Not a draft")))]
async fn send_broadcast(
    State(state): State<EmailState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<SendInput>,
) -> Result<Json<BroadcastDto>, ApiError> {
    let when = match (input.at, input.local) {
        (None, None) => When::Now,
        (Some(at), None) => When::At(at),
        (None, Some(l)) => When::Local { date: l.date, time: l.time, timezone: l.timezone },
        (Some(_), Some(_)) => return Err(ApiError::invalid("local", "give `at` or `local`, not both")),
    };
    let started = service::start(&state, p.workspace_id, parse_id(&id)?, when).await?;
    Ok(Json(dto(&state, started).await?))
}

/// Pause: nothing more is written out and queued messages are held until resumed.
#[utoipa::path(post, path = "/broadcasts/{id}/pause", tag = "broadcasts", params(("id" = String, Path)),
    responses((status = 200, body = BroadcastDto), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn pause_broadcast(
    State(state): State<EmailState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<BroadcastDto>, ApiError> {
    let paused = state.store.pause_broadcast(p.workspace_id, parse_id(&id)?, state.clock.now()).await?;
    Ok(Json(dto(&state, paused).await?))
}

/// Resume where it stopped: held messages are due again from now, within the rate limit.
#[utoipa::path(post, path = "/broadcasts/{id}/resume", tag = "broadcasts", params(("id" = String, Path)),
    responses((status = 200, body = BroadcastDto), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn resume_broadcast(
    State(state): State<EmailState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<BroadcastDto>, ApiError> {
    let id = parse_id(&id)?;
    let rate = state.store.get_broadcast(p.workspace_id, id).await?.rate_per_hour;
    let resumed = state.store.resume_broadcast(p.workspace_id, id, spacing(rate), HORIZON, state.clock.now()).await?;
    Ok(Json(dto(&state, resumed).await?))
}

/// Cancel: nothing more is sent; queued messages are withdrawn.
#[utoipa::path(post, path = "/broadcasts/{id}/cancel", tag = "broadcasts", params(("id" = String, Path)),
    responses((status = 200, body = BroadcastDto), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn cancel_broadcast(
    State(state): State<EmailState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<BroadcastDto>, ApiError> {
    let cancelled = state.store.cancel_broadcast(p.workspace_id, parse_id(&id)?, state.clock.now()).await?;
    Ok(Json(dto(&state, cancelled).await?))
}

/// The broadcast rendered for one contact.
#[utoipa::path(get, path = "/broadcasts/{id}/preview", tag = "broadcasts", params(("id" = String, Path), PreviewQuery),
    responses((status = 200, body = RenderedEmail), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn preview_broadcast(
    State(state): State<EmailState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<PreviewQuery>,
) -> Result<Json<RenderedEmail>, ApiError> {
    let contact: ContactId = q.contact_id.parse().map_err(|e| ApiError::invalid("contact_id", e))?;
    Ok(Json(service::preview(&state, p.workspace_id, parse_id(&id)?, contact).await?))
}

/// Send the broadcast's email to the given addresses as a test: they are not recipients and
/// the tests count in none of its numbers.
#[utoipa::path(post, path = "/broadcasts/{id}/test", tag = "broadcasts", params(("id" = String, Path)),
    request_body = TestInput,
    responses((status = 202, body = TestSent), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn test_broadcast(
    State(state): State<EmailState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<TestInput>,
) -> Result<(StatusCode, Json<TestSent>), ApiError> {
    let messages = service::test_send(&state, p.workspace_id, parse_id(&id)?, &input.to).await?;
    Ok((StatusCode::ACCEPTED, Json(TestSent { messages })))
}
