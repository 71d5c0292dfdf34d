//! `/api/v1/campaigns`: campaign documents (versioned), their life cycle, enrolment and
//! statistics. The document format is `herald_campaign::document`; every save is validated
//! and a document with problems is refused with all of them, each naming its place.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{FromRef, Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use herald_domain::{Campaign, CampaignId, CampaignState, ContactId, EmailAddress, JourneyId, Timestamp, WorkspaceId};
use herald_store::ContactFilter;
use herald_store::campaign::CampaignStats;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::CampaignsState;
use super::service::{
    InlineContact, PreviewPart, compile_error, contact_event, inline_contact, preview_event, render_preview,
    save_campaign, set_state, some_contact,
};
use crate::campaigns::{compile_document, secrets};
use crate::web::auth::Auth;
use crate::web::error::{ApiError, ApiJson, ApiQuery, ErrorBody};
use crate::web::list::{List, ListParams};

/// A campaign with the document of its newest version.
#[derive(Debug, Serialize, ToSchema)]
pub struct CampaignDto {
    #[schema(value_type = String, example = "cmp_0193a4b2c3d47e5f8a9b0c1d2e3f4a5b")]
    id: CampaignId,
    #[schema(example = "Onboarding")]
    name: String,
    /// `draft`, `active`, `paused` or `archived`.
    #[schema(value_type = String, example = "active")]
    state: CampaignState,
    /// The newest version: new journeys start on it; running journeys finish on theirs.
    version: u32,
    /// The campaign document (see `POST /campaigns`). Secrets of inline webhook steps (the
    /// Basic password, values of headers such as `Authorization` or `X-Api-Key`) read `***`;
    /// a document saved with `***` there keeps the stored secret of the same step.
    #[schema(value_type = Object)]
    document: Value,
    #[schema(value_type = String, format = DateTime)]
    created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    updated_at: Timestamp,
}

fn dto(c: Campaign) -> CampaignDto {
    CampaignDto {
        id: c.id,
        name: c.name,
        state: c.state,
        version: c.version,
        document: secrets::masked(&c.document),
        created_at: c.created_at,
        updated_at: c.updated_at,
    }
}

/// Who to enrol: a contact id or an email address, with optional custom variables.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Enroll {
    #[schema(value_type = Option<String>)]
    contact_id: Option<String>,
    email: Option<String>,
    /// Available to the journey as `custom_variables.*`.
    #[schema(value_type = Option<Object>)]
    custom_variables: Option<Map<String, Value>>,
}

/// A contact and a timeline of events to run a campaign against, writing nothing.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Simulate {
    /// An existing contact (its current fields and attributes) ...
    #[schema(value_type = Option<String>)]
    contact_id: Option<String>,
    /// ... or one described inline: `email`, `user_id`, `phone`, `name`, `first_name`,
    /// `last_name`, `attributes`.
    #[schema(value_type = Option<Object>)]
    contact: Option<InlineContact>,
    /// Events as a source would receive them (`event`, `data`, ...) plus `at`, the time they
    /// arrive (RFC 3339). At most 1,000.
    #[schema(value_type = Vec<Object>, example = json!([
        {"event": "checkout_started", "data": {"cart_value": "149.00"}, "at": "2026-11-23T09:00:00Z"}
    ]))]
    events: Vec<Map<String, Value>>,
    /// Simulate until (default: 90 days after the last event).
    #[schema(value_type = Option<String>, format = DateTime)]
    until: Option<Timestamp>,
    /// Which version (default: the newest, which may be a draft).
    version: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Enrolled {
    #[schema(value_type = String)]
    journey_id: JourneyId,
}

pub fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    CampaignsState: FromRef<S>,
{
    OpenApiRouter::new()
        .routes(routes!(list_campaigns, create_campaign))
        .routes(routes!(import_campaign))
        .routes(routes!(get_campaign, update_campaign, delete_campaign))
        .routes(routes!(export_campaign))
        .routes(routes!(activate_campaign))
        .routes(routes!(pause_campaign))
        .routes(routes!(resume_campaign))
        .routes(routes!(archive_campaign))
        .routes(routes!(campaign_stats))
        .routes(routes!(enroll_contact))
        .routes(routes!(simulate_campaign))
        .routes(routes!(preview_templates))
}

pub(super) fn parse_id(raw: &str) -> Result<CampaignId, ApiError> {
    raw.parse().map_err(|e| ApiError::invalid("id", e))
}

/// List campaigns, oldest first.
#[utoipa::path(get, path = "/campaigns", tag = "campaigns", params(ListParams),
    responses((status = 200, body = List<CampaignDto>), (status = 400, body = ErrorBody)))]
async fn list_campaigns(
    State(state): State<CampaignsState>,
    Auth(p): Auth,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<List<CampaignDto>>, ApiError> {
    let page = state.store.list_campaigns(p.workspace_id, params.page()?).await?;
    Ok(Json(List::from_page(page, dto)))
}

/// Create a campaign (in `draft`) from a campaign document.
///
/// The document: `name`; `trigger` — `{"type": "event", "event": "user_signed_up", "filter":
/// {...}, "occurrence": {"nth": 3, "within": "7d"}}`, `{"type": "drop_off", "event":
/// "checkout_started", "missing": "checkout_completed", "within": "24h"}`, `{"type":
/// "inactivity", "after": "14d", "events": [...]}`, `{"type": "source", "source_id": "src_..."}`
/// or `{"type": "manual"}`; `entry` — `once` (default), `once_at_a_time` or `every_time`;
/// optional `goal` — `{"event": "purchase_completed", "within": "30d", "exit": true}`; optional
/// `timezone`; and `steps`, each with an optional `id` and a `type`: `wait` (`duration` such
/// as `"2d"`, or `until: {"time": "09:00", "weekdays": ["mon"]}` in the contact's `timezone`),
/// `email` (`from`, `reply_to`, `subject`, `html`, `text`: Liquid templates; `track_opens`,
/// `track_clicks`: booleans, default `true`), `branch`
/// (`condition`, `then`: [steps], `else`: [steps]), `set_attribute` (`attribute`, `value`,
/// `scope`: `contact` or `custom_variables`), `unset_attribute`, `exit`. Conditions and
/// filters: `{"field": "event.data.cart_value", "op": "gt", "value": 50}` with ops `eq`, `ne`,
/// `gt`, `gte`, `lt`, `lte`, `contains`, `not_contains`, `exists`, `not_exists`, `in`,
/// `not_in`, combined with `{"all": [...]}` / `{"any": [...]}`.
#[utoipa::path(post, path = "/campaigns", tag = "campaigns",
    request_body(content = Object, examples(
        ("event" = (summary = "Event trigger with a filter and an Nth occurrence; email, wait, branch, set attribute, exit",
            value = json!({
                "name": "Pricing nudge",
                "trigger": {"type": "event", "event": "pricing_page_viewed", "occurrence": {"nth": 3, "within": "7d"},
                            "filter": {"all": [{"field": "contact.plan", "op": "in", "value": ["free", "trial"]},
                                               {"field": "event.data.seats", "op": "gte", "value": 5}]}},
                "entry": "once",
                "goal": {"event": "subscription_started", "within": "30d", "exit": true},
                "steps": [
                    {"id": "nudge", "type": "email", "from": "Acme <hello@acme.test>", "reply_to": "sales@acme.test",
                     "subject": "{{ first_name | default: \"Hi\" }}, questions about pricing?",
                     "html": "<p>You looked at {{ event.data.seats }} seats.</p>",
                     "text": "You looked at {{ event.data.seats }} seats."},
                    {"id": "two-days", "type": "wait", "duration": "2d"},
                    {"id": "still-free", "type": "branch",
                     "condition": {"field": "contact.plan", "op": "eq", "value": "free"},
                     "then": [{"id": "offer", "type": "email", "from": "hello@acme.test", "subject": "20% off",
                               "html": "<p>Code {{ custom_variables.code | default: \"WELCOME\" }}</p>",
                               "track_opens": false}],
                     "else": [{"id": "done", "type": "exit"}]},
                    {"id": "mark", "type": "set_attribute", "attribute": "nudged_at", "value": "{{ event.occurred_at }}"}
                ]
            }))),
        ("drop_off" = (summary = "Drop-off: checkout started, not completed within 24 hours; wait until a weekday and time",
            value = json!({
                "name": "Cart recovery",
                "trigger": {"type": "drop_off", "event": "checkout_started", "missing": "checkout_completed", "within": "24h",
                            "filter": {"field": "event.data.cart_value", "op": "gt", "value": 50}},
                "entry": "every_time",
                "timezone": "Europe/Paris",
                "steps": [
                    {"id": "morning", "type": "wait", "until": {"time": "09:00", "weekdays": ["mon", "tue", "wed", "thu", "fri"]}},
                    {"id": "reminder", "type": "email", "from": "Shop <shop@acme.test>",
                     "subject": "Your cart of {{ event.data.cart_value }} is waiting", "html": "<p>Come back!</p>"},
                    {"id": "clear", "type": "unset_attribute", "attribute": "cart_reminder_pending"}
                ]
            }))),
        ("inactivity" = (summary = "Inactivity: no event for 14 days; a custom variable set by a step",
            value = json!({
                "name": "Win back",
                "trigger": {"type": "inactivity", "after": "14d", "events": ["session_started", "page_viewed"]},
                "entry": "once_at_a_time",
                "steps": [
                    {"id": "code", "type": "set_attribute", "scope": "custom_variables", "attribute": "code",
                     "value": "BACK-{{ id | slice: -6, 6 | upcase }}"},
                    {"id": "miss-you", "type": "email", "from": "hello@acme.test", "subject": "We miss you",
                     "html": "<p>Here is {{ custom_variables.code }}.</p>"}
                ]
            }))),
        ("source" = (summary = "Every request on one source (its fields become custom_variables)",
            value = json!({
                "name": "Webinar follow-up",
                "trigger": {"type": "source", "source_id": "src_0193a4b2c3d47e5f8a9b0c1d2e3f4a5b"},
                "entry": "every_time",
                "steps": [{"id": "thanks", "type": "email", "from": "events@acme.test",
                           "subject": "Thanks for joining {{ custom_variables.webinar_title }}",
                           "html": "<p>The recording: {{ custom_variables.recording_url }}</p>"}]
            }))),
        ("manual" = (summary = "Only POST /campaigns/{id}/enroll",
            value = json!({
                "name": "Account review",
                "trigger": {"type": "manual"},
                "steps": [{"id": "review", "type": "email", "from": "success@acme.test",
                           "subject": "Your account review", "html": "<p>Hi {{ customer.first_name }}</p>"}]
            })))
    )),
    responses((status = 201, body = CampaignDto), (status = 422, body = ErrorBody)))]
async fn create_campaign(
    State(state): State<CampaignsState>,
    Auth(p): Auth,
    ApiJson(body): ApiJson<Value>,
) -> Result<(StatusCode, Json<CampaignDto>), ApiError> {
    let campaign = save_campaign(&state, p.workspace_id, None, body).await?;
    Ok((StatusCode::CREATED, Json(dto(campaign))))
}

/// Import a campaign exported with `GET /campaigns/{id}/export` (created in `draft`).
#[utoipa::path(post, path = "/campaigns/import", tag = "campaigns", request_body = Object,
    responses((status = 201, body = CampaignDto), (status = 422, body = ErrorBody)))]
async fn import_campaign(
    state: State<CampaignsState>,
    auth: Auth,
    body: ApiJson<Value>,
) -> Result<(StatusCode, Json<CampaignDto>), ApiError> {
    create_campaign(state, auth, body).await
}

#[utoipa::path(get, path = "/campaigns/{id}", tag = "campaigns", params(("id" = String, Path)),
    responses((status = 200, body = CampaignDto), (status = 404, body = ErrorBody)))]
async fn get_campaign(
    State(state): State<CampaignsState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<CampaignDto>, ApiError> {
    Ok(Json(dto(state.store.get_campaign(p.workspace_id, parse_id(&id)?).await?)))
}

/// Save a new version of the document. Running journeys finish on the version they started
/// on; new journeys start on this one.
#[utoipa::path(put, path = "/campaigns/{id}", tag = "campaigns", params(("id" = String, Path)), request_body = Object,
    responses((status = 200, body = CampaignDto), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn update_campaign(
    State(state): State<CampaignsState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<CampaignDto>, ApiError> {
    let campaign = save_campaign(&state, p.workspace_id, Some(parse_id(&id)?), body).await?;
    Ok(Json(dto(campaign)))
}

/// Delete a campaign with its journeys and messages (archive it to keep its history).
#[utoipa::path(delete, path = "/campaigns/{id}", tag = "campaigns", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn delete_campaign(
    State(state): State<CampaignsState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.store.delete_campaign(p.workspace_id, parse_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The campaign's document as a file, for `POST /campaigns/import` (campaigns as code).
#[utoipa::path(get, path = "/campaigns/{id}/export", tag = "campaigns", params(("id" = String, Path)),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody)))]
async fn export_campaign(
    State(state): State<CampaignsState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let campaign = state.store.get_campaign(p.workspace_id, parse_id(&id)?).await?;
    let body = serde_json::to_string_pretty(&secrets::masked(&campaign.document))
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
    let file: String = campaign
        .name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c.to_ascii_lowercase() } else { '-' })
        .collect();
    Ok((
        [
            (header::CONTENT_TYPE, "application/json".to_owned()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{file}.campaign.json\"")),
        ],
        body,
    ))
}

async fn transition(
    state: &CampaignsState,
    workspace: WorkspaceId,
    id: &str,
    from: &[CampaignState],
    to: CampaignState,
) -> Result<Json<CampaignDto>, ApiError> {
    Ok(Json(dto(set_state(state, workspace, parse_id(id)?, from, to).await?)))
}

/// draft → active: triggers start enrolling contacts.
#[utoipa::path(post, path = "/campaigns/{id}/activate", tag = "campaigns", params(("id" = String, Path)),
    responses((status = 200, body = CampaignDto), (status = 409, body = ErrorBody)))]
async fn activate_campaign(
    State(state): State<CampaignsState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<CampaignDto>, ApiError> {
    transition(&state, p.workspace_id, &id, &[CampaignState::Draft], CampaignState::Active).await
}

/// active → paused: nobody enters; journeys hold at their next step.
#[utoipa::path(post, path = "/campaigns/{id}/pause", tag = "campaigns", params(("id" = String, Path)),
    responses((status = 200, body = CampaignDto), (status = 409, body = ErrorBody)))]
async fn pause_campaign(
    State(state): State<CampaignsState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<CampaignDto>, ApiError> {
    transition(&state, p.workspace_id, &id, &[CampaignState::Active], CampaignState::Paused).await
}

/// paused → active: held journeys continue where they stopped.
#[utoipa::path(post, path = "/campaigns/{id}/resume", tag = "campaigns", params(("id" = String, Path)),
    responses((status = 200, body = CampaignDto), (status = 409, body = ErrorBody)))]
async fn resume_campaign(
    State(state): State<CampaignsState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<CampaignDto>, ApiError> {
    transition(&state, p.workspace_id, &id, &[CampaignState::Paused], CampaignState::Active).await
}

/// → archived: running journeys exit; the campaign and its history stay readable.
#[utoipa::path(post, path = "/campaigns/{id}/archive", tag = "campaigns", params(("id" = String, Path)),
    responses((status = 200, body = CampaignDto), (status = 409, body = ErrorBody)))]
async fn archive_campaign(
    State(state): State<CampaignsState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<CampaignDto>, ApiError> {
    let from = [CampaignState::Draft, CampaignState::Active, CampaignState::Paused];
    transition(&state, p.workspace_id, &id, &from, CampaignState::Archived).await
}

/// Journeys entered, active, completed, exited and converted; per step, how many runs ended
/// how (`sent`, `failed`, `waited`, `then`, `else`, `set`, ...).
#[utoipa::path(get, path = "/campaigns/{id}/stats", tag = "campaigns", params(("id" = String, Path)),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody)))]
async fn campaign_stats(
    State(state): State<CampaignsState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<CampaignStats>, ApiError> {
    Ok(Json(state.store.campaign_stats(p.workspace_id, parse_id(&id)?).await?))
}

/// Enrol one contact now, whatever the trigger, under the campaign's entry rule.
#[utoipa::path(post, path = "/campaigns/{id}/enroll", tag = "campaigns", params(("id" = String, Path)),
    request_body = Enroll,
    responses((status = 201, body = Enrolled), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn enroll_contact(
    State(state): State<CampaignsState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Enroll>,
) -> Result<(StatusCode, Json<Enrolled>), ApiError> {
    // The request first (400), then the campaign (404, 409), then the contact (404).
    enum Who {
        Id(ContactId),
        Email(EmailAddress),
    }
    let who = match (body.contact_id, body.email) {
        (Some(raw), None) => Who::Id(raw.parse().map_err(|e| ApiError::invalid("contact_id", e))?),
        (None, Some(raw)) => Who::Email(EmailAddress::parse(&raw).map_err(|e| ApiError::invalid("email", e))?),
        _ => return Err(ApiError::invalid("contact_id", "give either contact_id or email")),
    };
    let campaign = state.store.get_campaign(p.workspace_id, parse_id(&id)?).await?;
    if campaign.state != CampaignState::Active {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "invalid_state",
            format!("the campaign is {}; only an active campaign enrols contacts", campaign.state),
        ));
    }
    let contact = match who {
        Who::Id(id) => state.store.get_contact(p.workspace_id, id).await?,
        Who::Email(email) => {
            let filter = ContactFilter { email: Some(email), ..ContactFilter::default() };
            let page = state
                .store
                .list_contacts(p.workspace_id, &filter, herald_domain::PageRequest { after: None, limit: 1 })
                .await?;
            page.items.into_iter().next().ok_or_else(|| ApiError::not_found("contact"))?
        }
    };
    let outcome =
        state.campaigns.enroll_now(&campaign, &contact, body.custom_variables.unwrap_or_default()).await.map_err(
            |e| match e {
                crate::campaigns::CampaignJobError::Store(e) => ApiError::from(e),
                crate::campaigns::CampaignJobError::Invalid(message) => {
                    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
                }
            },
        )?;
    match outcome {
        Ok(journey_id) => Ok((StatusCode::CREATED, Json(Enrolled { journey_id }))),
        Err(why) => Err(ApiError::new(StatusCode::CONFLICT, "not_enrolled", why)),
    }
}

const MAX_SIMULATED_EVENTS: usize = 1000;

/// What the campaign would do for one contact and a timeline of events, and when: entries
/// (and why not), waits, branches taken and why, rendered messages, conversions. Uses the
/// live engine's code on a virtual clock; writes nothing, sends nothing; works on drafts.
#[utoipa::path(post, path = "/campaigns/{id}/simulate", tag = "campaigns", params(("id" = String, Path)),
    request_body = Simulate,
    responses((status = 200, body = Object), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn simulate_campaign(
    State(state): State<CampaignsState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Simulate>,
) -> Result<Json<herald_campaign::simulate::Simulation>, ApiError> {
    use herald_campaign::simulate::{SimEvent, simulate};
    let now = state.clock.now();
    let campaign = state.store.get_campaign(p.workspace_id, parse_id(&id)?).await?;
    let version = body.version.unwrap_or(campaign.version);
    let document = if version == campaign.version {
        campaign.document.clone()
    } else {
        state.store.campaign_version(p.workspace_id, campaign.id, version).await?
    };
    let compiled = compile_document(&state.store, p.workspace_id, document, true).await.map_err(compile_error)?;
    let contact = match (body.contact_id, body.contact) {
        (Some(raw), None) => {
            let id: ContactId = raw.parse().map_err(|e| ApiError::invalid("contact_id", e))?;
            state.store.get_contact(p.workspace_id, id).await?
        }
        (None, inline) => inline_contact(inline.unwrap_or_default(), p.workspace_id, now)?,
        (Some(_), Some(_)) => return Err(ApiError::invalid("contact", "give contact_id or contact, not both")),
    };
    if body.events.len() > MAX_SIMULATED_EVENTS {
        return Err(ApiError::invalid("events", format!("at most {MAX_SIMULATED_EVENTS} events")));
    }
    let mut events = Vec::with_capacity(body.events.len());
    for (i, mut raw) in body.events.into_iter().enumerate() {
        let field = |name: &str| format!("events[{i}].{name}");
        let at: Timestamp = match raw.remove("at") {
            Some(value) => serde_json::from_value(value).map_err(|e| ApiError::invalid(&field("at"), e))?,
            None => return Err(ApiError::invalid(&field("at"), "is required (RFC 3339)")),
        };
        let data = contact_event(raw, &contact, &format!("events[{i}]"))?;
        events.push(SimEvent { event: preview_event(p.workspace_id, contact.id, &data, at), data });
    }
    events.sort_by_key(|e| e.event.received_at);
    let last = events.last().map_or(now, |e| e.event.received_at);
    let until = body.until.unwrap_or(last + std::time::Duration::from_secs(90 * 86_400));
    let info = herald_campaign::CampaignInfo { id: campaign.id, name: campaign.name.clone(), version };
    let limits = herald_template::Limits::default();
    let timezone = state.store.get_workspace(p.workspace_id).await?.timezone;
    Ok(Json(simulate(&compiled, &info, &limits, timezone.as_deref(), contact, &events, until)))
}

/// Templates to render, with whom.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Preview {
    /// Templates by name (`subject`, `html`, `text`, anything): `html` is HTML-escaped, the
    /// others are text.
    #[schema(value_type = Object, example = json!({"subject": "Hi {{ first_name | default: \"there\" }}", "html": "<p>{{ event.data.plan }}</p>"}))]
    templates: BTreeMap<String, String>,
    #[schema(value_type = Option<String>)]
    contact_id: Option<String>,
    #[schema(value_type = Option<Object>)]
    contact: Option<InlineContact>,
    /// An event as a source would receive it (`event`, `data`, ...), seen as `event.*`.
    #[schema(value_type = Option<Object>)]
    event: Option<Map<String, Value>>,
    #[schema(value_type = Option<Object>)]
    custom_variables: Option<Map<String, Value>>,
}

/// Render templates for a contact and an event, without sending anything. A template that
/// does not compile is refused with its line and column.
#[utoipa::path(post, path = "/templates/preview", tag = "campaigns", request_body = Preview,
    responses((status = 200, body = BTreeMap<String, PreviewPart>), (status = 400, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn preview_templates(
    State(state): State<CampaignsState>,
    Auth(p): Auth,
    ApiJson(body): ApiJson<Preview>,
) -> Result<Json<BTreeMap<String, PreviewPart>>, ApiError> {
    let now = state.clock.now();
    let contact = some_contact(&state, p.workspace_id, body.contact_id, body.contact, now).await?;
    let event = match body.event {
        Some(raw) => Some(preview_event(p.workspace_id, contact.id, &contact_event(raw, &contact, "event")?, now)),
        None => None,
    };
    let custom_variables = body.custom_variables.unwrap_or_default();
    let scope = herald_campaign::context::Scope {
        contact: &contact,
        event: event.as_ref(),
        custom_variables: &custom_variables,
        campaign: None,
        unsubscribe_url: "",
        emails: &[],
    };
    Ok(Json(render_preview(&scope, body.templates, now)?))
}
