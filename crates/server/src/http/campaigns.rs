//! `/api/v1/campaigns`: campaign documents (versioned), their life cycle, enrolment and
//! statistics. The document format is `herald_campaign::document`; every save is validated
//! and a document with problems is refused with all of them, each naming its place.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use herald_campaign::document::Trigger;
use herald_campaign::{CompiledCampaign, compile, document_from_value};
use herald_domain::{Campaign, CampaignId, CampaignState, ContactId, EmailAddress, JourneyId, Timestamp, WorkspaceId};
use herald_store::ContactFilter;
use herald_store::campaign::CampaignStats;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::Auth;
use super::error::{ApiError, ApiJson, ApiQuery, ErrorBody};
use super::list::{List, ListParams};

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
    /// The campaign document (see `POST /campaigns`).
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
        document: c.document,
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

#[derive(Debug, Serialize, ToSchema)]
pub struct Enrolled {
    #[schema(value_type = String)]
    journey_id: JourneyId,
}

pub fn router() -> OpenApiRouter<AppState> {
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
}

fn parse_id(raw: &str) -> Result<CampaignId, ApiError> {
    raw.parse().map_err(|e| ApiError::invalid("id", e))
}

/// Validates a document; the normalised document (step ids filled in) is what gets stored.
async fn validate(state: &AppState, workspace: WorkspaceId, body: Value) -> Result<CompiledCampaign, ApiError> {
    let document = document_from_value(body).map_err(|e| {
        let mut error = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_campaign", e.to_string());
        error.field = Some(e.path).filter(|p| !p.is_empty());
        error
    })?;
    let compiled = compile(document).map_err(|errors| {
        let mut error =
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_campaign", crate::campaigns::join(&errors));
        error.field = errors.first().map(|e| e.path.clone()).filter(|p| !p.is_empty());
        error
    })?;
    if let Trigger::Source { source_id } = &compiled.document.trigger {
        state.store.get_source(workspace, *source_id).await.map_err(|_| {
            let mut error = ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_campaign",
                format!("trigger.source_id: no source {source_id} in this workspace"),
            );
            error.field = Some("trigger.source_id".into());
            error
        })?;
    }
    Ok(compiled)
}

fn stored(compiled: &CompiledCampaign) -> Result<Value, ApiError> {
    serde_json::to_value(&compiled.document)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))
}

/// List campaigns, oldest first.
#[utoipa::path(get, path = "/campaigns", tag = "campaigns", params(ListParams),
    responses((status = 200, body = List<CampaignDto>), (status = 400, body = ErrorBody)))]
async fn list_campaigns(
    State(state): State<AppState>,
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
/// `email` (`from`, `reply_to`, `subject`, `html`, `text`: Liquid templates), `branch`
/// (`condition`, `then`: [steps], `else`: [steps]), `set_attribute` (`attribute`, `value`,
/// `scope`: `contact` or `custom_variables`), `unset_attribute`, `exit`. Conditions and
/// filters: `{"field": "event.data.cart_value", "op": "gt", "value": 50}` with ops `eq`, `ne`,
/// `gt`, `gte`, `lt`, `lte`, `contains`, `not_contains`, `exists`, `not_exists`, `in`,
/// `not_in`, combined with `{"all": [...]}` / `{"any": [...]}`.
#[utoipa::path(post, path = "/campaigns", tag = "campaigns",
    request_body(content = Object, example = json!({
        "name": "Onboarding",
        "trigger": {"type": "event", "event": "user_signed_up"},
        "entry": "once",
        "goal": {"event": "subscription_started", "within": "30d", "exit": true},
        "steps": [
            {"id": "welcome", "type": "email", "from": "Acme <hello@acme.test>",
             "subject": "Welcome, {{ first_name | default: \"there\" }}!", "html": "<p>Glad you're here.</p>"},
            {"id": "day-2", "type": "wait", "duration": "2d"},
            {"id": "plan", "type": "branch", "condition": {"field": "contact.plan", "op": "eq", "value": "free"},
             "then": [{"type": "email", "from": "hello@acme.test", "subject": "Try Pro", "html": "<p>...</p>"}],
             "else": []},
            {"id": "tag", "type": "set_attribute", "attribute": "onboarded", "value": true}
        ]
    })),
    responses((status = 201, body = CampaignDto), (status = 422, body = ErrorBody)))]
async fn create_campaign(
    State(state): State<AppState>,
    Auth(p): Auth,
    ApiJson(body): ApiJson<Value>,
) -> Result<(StatusCode, Json<CampaignDto>), ApiError> {
    let compiled = validate(&state, p.workspace_id, body).await?;
    let document = stored(&compiled)?;
    let campaign = state
        .store
        .create_campaign(p.workspace_id, compiled.document.name.trim(), &document, state.clock.now())
        .await?;
    Ok((StatusCode::CREATED, Json(dto(campaign))))
}

/// Import a campaign exported with `GET /campaigns/{id}/export` (created in `draft`).
#[utoipa::path(post, path = "/campaigns/import", tag = "campaigns", request_body = Object,
    responses((status = 201, body = CampaignDto), (status = 422, body = ErrorBody)))]
async fn import_campaign(
    state: State<AppState>,
    auth: Auth,
    body: ApiJson<Value>,
) -> Result<(StatusCode, Json<CampaignDto>), ApiError> {
    create_campaign(state, auth, body).await
}

#[utoipa::path(get, path = "/campaigns/{id}", tag = "campaigns", params(("id" = String, Path)),
    responses((status = 200, body = CampaignDto), (status = 404, body = ErrorBody)))]
async fn get_campaign(
    State(state): State<AppState>,
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
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<CampaignDto>, ApiError> {
    let id = parse_id(&id)?;
    let compiled = validate(&state, p.workspace_id, body).await?;
    let document = stored(&compiled)?;
    let campaign = state
        .store
        .update_campaign(p.workspace_id, id, compiled.document.name.trim(), &document, state.clock.now())
        .await?;
    Ok(Json(dto(campaign)))
}

/// Delete a campaign with its journeys and messages (archive it to keep its history).
#[utoipa::path(delete, path = "/campaigns/{id}", tag = "campaigns", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn delete_campaign(
    State(state): State<AppState>,
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
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let campaign = state.store.get_campaign(p.workspace_id, parse_id(&id)?).await?;
    let body = serde_json::to_string_pretty(&campaign.document)
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
    state: &AppState,
    workspace: WorkspaceId,
    id: &str,
    from: &[CampaignState],
    to: CampaignState,
) -> Result<Json<CampaignDto>, ApiError> {
    let id = parse_id(id)?;
    let campaign =
        state.store.set_campaign_state(workspace, id, from, to, state.clock.now()).await.map_err(|e| match e {
            herald_store::StoreError::Conflict { .. } => ApiError::new(
                StatusCode::CONFLICT,
                "invalid_state",
                format!(
                    "the campaign must be {} to become {to}",
                    from.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" or ")
                ),
            ),
            other => other.into(),
        })?;
    // Released journeys have jobs due now.
    state.wake.notify_waiters();
    Ok(Json(dto(campaign)))
}

/// draft → active: triggers start enrolling contacts.
#[utoipa::path(post, path = "/campaigns/{id}/activate", tag = "campaigns", params(("id" = String, Path)),
    responses((status = 200, body = CampaignDto), (status = 409, body = ErrorBody)))]
async fn activate_campaign(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<CampaignDto>, ApiError> {
    transition(&state, p.workspace_id, &id, &[CampaignState::Draft], CampaignState::Active).await
}

/// active → paused: nobody enters; journeys hold at their next step.
#[utoipa::path(post, path = "/campaigns/{id}/pause", tag = "campaigns", params(("id" = String, Path)),
    responses((status = 200, body = CampaignDto), (status = 409, body = ErrorBody)))]
async fn pause_campaign(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<CampaignDto>, ApiError> {
    transition(&state, p.workspace_id, &id, &[CampaignState::Active], CampaignState::Paused).await
}

/// paused → active: held journeys continue where they stopped.
#[utoipa::path(post, path = "/campaigns/{id}/resume", tag = "campaigns", params(("id" = String, Path)),
    responses((status = 200, body = CampaignDto), (status = 409, body = ErrorBody)))]
async fn resume_campaign(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<CampaignDto>, ApiError> {
    transition(&state, p.workspace_id, &id, &[CampaignState::Paused], CampaignState::Active).await
}

/// → archived: running journeys exit; the campaign and its history stay readable.
#[utoipa::path(post, path = "/campaigns/{id}/archive", tag = "campaigns", params(("id" = String, Path)),
    responses((status = 200, body = CampaignDto), (status = 409, body = ErrorBody)))]
async fn archive_campaign(
    State(state): State<AppState>,
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
    State(state): State<AppState>,
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
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Enroll>,
) -> Result<(StatusCode, Json<Enrolled>), ApiError> {
    let campaign = state.store.get_campaign(p.workspace_id, parse_id(&id)?).await?;
    if campaign.state != CampaignState::Active {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "invalid_state",
            format!("the campaign is {}; only an active campaign enrols contacts", campaign.state),
        ));
    }
    let contact = match (body.contact_id, body.email) {
        (Some(raw), None) => {
            let id: ContactId = raw.parse().map_err(|e| ApiError::invalid("contact_id", e))?;
            state.store.get_contact(p.workspace_id, id).await?
        }
        (None, Some(raw)) => {
            let email = EmailAddress::parse(&raw).map_err(|e| ApiError::invalid("email", e))?;
            let filter = ContactFilter { email: Some(email), ..ContactFilter::default() };
            let page = state
                .store
                .list_contacts(p.workspace_id, &filter, herald_domain::PageRequest { after: None, limit: 1 })
                .await?;
            page.items.into_iter().next().ok_or_else(|| ApiError::not_found("contact"))?
        }
        _ => return Err(ApiError::invalid("contact_id", "give either contact_id or email")),
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
        Ok(journey_id) => {
            state.wake.notify_waiters();
            Ok((StatusCode::CREATED, Json(Enrolled { journey_id })))
        }
        Err(why) => Err(ApiError::new(StatusCode::CONFLICT, "not_enrolled", why)),
    }
}
