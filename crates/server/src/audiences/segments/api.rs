//! `/api/v1/segments`: save (validated, then built in the background), list, read with the
//! build's progress, edit (rebuilt), delete (refused while something uses the segment),
//! preview an unsaved definition, the members (paged, or as CSV), the size by day and the
//! recent entries and exits.

use axum::Json;
use axum::extract::{FromRef, Path, State};
use axum::http::StatusCode;
use herald_domain::{ContactId, SegmentId, Timestamp};
use herald_store::StoreError;
use herald_store::segment::{REFERENCED, SegmentRecord};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{SegmentsState, service};
use crate::contacts::api::ContactDto;
use crate::web::auth::Auth;
use crate::web::error::{ApiError, ApiJson, ApiQuery, ErrorBody};
use crate::web::list::{List, ListParams};

/// Contacts a preview shows.
pub const PREVIEW_SAMPLE: usize = 10;

#[derive(Debug, Serialize, ToSchema)]
pub struct SegmentDto {
    #[schema(value_type = String, example = "seg_0193a4b2c3d47e5f8a9b0c1d2e3f4a5b")]
    id: SegmentId,
    name: String,
    /// The definition as saved.
    #[schema(value_type = Object)]
    definition: Value,
    /// `building` while a new or edited definition is computed over the contacts (members
    /// are partial meanwhile), then `ready`.
    #[schema(example = "ready")]
    status: &'static str,
    /// Contacts the current build has decided so far.
    progress: u64,
    /// Members now.
    members: u64,
    #[schema(value_type = String, format = DateTime)]
    created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    updated_at: Timestamp,
}

impl From<SegmentRecord> for SegmentDto {
    fn from(s: SegmentRecord) -> Self {
        Self {
            id: s.id,
            name: s.name,
            definition: s.definition,
            status: s.status.as_str(),
            progress: s.progress,
            members: s.members,
            created_at: s.created_at,
            updated_at: s.updated_at,
        }
    }
}

/// A segment to save.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SegmentInput {
    #[schema(example = "Active buyers")]
    name: String,
    /// A tree of `all` / `any` / `not` over tests: `{"field", "op", "value"}` on attributes
    /// (the branch conditions' operators, plus `before`, `after`, `within_last`),
    /// `performed` / `not_performed` / `first_performed` / `last_performed` an event (with
    /// `where`, `times`, `within`), `email` (`opened`, `clicked`, … with `campaign_id`),
    /// `subscribed_to` / `not_subscribed_to` a topic and `member_of` another segment.
    #[schema(value_type = Object, example = json!({"all": [
        {"field": "plan", "op": "eq", "value": "pro"},
        {"performed": "order_placed", "times": {"at_least": 2}, "within": "30d"}]}))]
    definition: Value,
}

/// A definition to try.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewInput {
    #[schema(value_type = Object)]
    definition: Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PreviewDto {
    /// Matching contacts among those examined.
    matches: u64,
    examined: u64,
    /// Whether every contact was examined (a preview examines at most 10,000).
    complete: bool,
    /// Up to 10 matching contacts.
    sample: Vec<ContactDto>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MemberDto {
    #[serde(flatten)]
    contact: ContactDto,
    /// When the contact entered.
    #[schema(value_type = String, format = DateTime)]
    member_since: Timestamp,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SizeDto {
    #[schema(example = "2026-01-31")]
    day: String,
    members: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SizesDto {
    /// The size at the end of each day (UTC) that saw a change, oldest first.
    data: Vec<SizeDto>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChangeDto {
    #[schema(value_type = String)]
    contact_id: ContactId,
    /// `entered` or `left`.
    change: &'static str,
    #[schema(value_type = String, format = DateTime)]
    at: Timestamp,
    /// What caused it: `event "order_placed"`, `time passed`, `contact updated`, `segment built`.
    reason: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryDto {
    /// The 100 most recent changes, newest first.
    data: Vec<ChangeDto>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SizeQuery {
    /// How many days back, 1–366. Default 90.
    days: Option<u32>,
}

pub fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    SegmentsState: FromRef<S>,
{
    OpenApiRouter::new()
        .routes(routes!(list_segments, create_segment))
        .routes(routes!(preview_segment))
        .routes(routes!(get_segment, update_segment, delete_segment))
        .routes(routes!(list_members))
        .routes(routes!(export_members))
        .routes(routes!(segment_sizes))
        .routes(routes!(segment_history))
}

fn parse_id(raw: &str) -> Result<SegmentId, ApiError> {
    raw.parse().map_err(|e| ApiError::invalid("id", e))
}

/// List the segments, oldest first.
#[utoipa::path(get, path = "/segments", tag = "segments", responses((status = 200, body = List<SegmentDto>)))]
async fn list_segments(State(state): State<SegmentsState>, Auth(p): Auth) -> Result<Json<List<SegmentDto>>, ApiError> {
    let segments = state.store.list_segments(p.workspace_id).await?;
    Ok(Json(List { data: segments.into_iter().map(SegmentDto::from).collect(), next_cursor: None }))
}

/// Save a segment. Its members are computed in the background (`status` is `building`, with
/// `progress`, until it is `ready`); from then on they are kept current.
#[utoipa::path(post, path = "/segments", tag = "segments", request_body = SegmentInput,
    responses((status = 201, body = SegmentDto), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn create_segment(
    State(state): State<SegmentsState>,
    Auth(p): Auth,
    ApiJson(body): ApiJson<SegmentInput>,
) -> Result<(StatusCode, Json<SegmentDto>), ApiError> {
    let segment = service::save(&state, p.workspace_id, None, &body.name, body.definition).await?;
    Ok((StatusCode::CREATED, Json(segment.into())))
}

/// How many contacts a definition matches now, with a sample, without saving it.
#[utoipa::path(post, path = "/segments/preview", tag = "segments", request_body = PreviewInput,
    responses((status = 200, body = PreviewDto), (status = 400, body = ErrorBody)))]
async fn preview_segment(
    State(state): State<SegmentsState>,
    Auth(p): Auth,
    ApiJson(body): ApiJson<PreviewInput>,
) -> Result<Json<PreviewDto>, ApiError> {
    let compiled = service::checked_definition(&state, p.workspace_id, None, &body.definition).await?;
    let preview = state.segments.preview(p.workspace_id, &compiled, PREVIEW_SAMPLE).await?;
    Ok(Json(PreviewDto {
        matches: preview.matches,
        examined: preview.examined,
        complete: preview.complete,
        sample: preview.sample.into_iter().map(ContactDto::from).collect(),
    }))
}

/// A segment, with its build's progress and its size.
#[utoipa::path(get, path = "/segments/{id}", tag = "segments", params(("id" = String, Path)),
    responses((status = 200, body = SegmentDto), (status = 404, body = ErrorBody)))]
async fn get_segment(
    State(state): State<SegmentsState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<SegmentDto>, ApiError> {
    Ok(Json(state.store.get_segment(p.workspace_id, parse_id(&id)?).await?.into()))
}

/// Change a segment's name and definition; its members are computed again in the background.
#[utoipa::path(put, path = "/segments/{id}", tag = "segments", params(("id" = String, Path)), request_body = SegmentInput,
    responses((status = 200, body = SegmentDto), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
async fn update_segment(
    State(state): State<SegmentsState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<SegmentInput>,
) -> Result<Json<SegmentDto>, ApiError> {
    let id = parse_id(&id)?;
    state.store.get_segment(p.workspace_id, id).await?;
    let segment = service::save(&state, p.workspace_id, Some(id), &body.name, body.definition).await?;
    Ok(Json(segment.into()))
}

/// Delete a segment. Refused (409) while a campaign's trigger or another segment uses it.
#[utoipa::path(delete, path = "/segments/{id}", tag = "segments", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn delete_segment(
    State(state): State<SegmentsState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = parse_id(&id)?;
    let in_use = |message: String| {
        let mut error = ApiError::new(StatusCode::CONFLICT, "in_use", message);
        error.field = Some("id".into());
        error
    };
    for campaign in state.store.live_campaigns(p.workspace_id).await? {
        let trigger = &campaign.document["trigger"];
        if trigger["type"] == "segment" && trigger["segment_id"] == id.to_string() {
            return Err(in_use(format!("id: campaign {:?} ({}) starts on this segment", campaign.name, campaign.id)));
        }
    }
    match state.store.delete_segment(p.workspace_id, id).await {
        Err(StoreError::Conflict { constraint }) if constraint == REFERENCED => {
            Err(in_use("id: another segment refers to this one (member_of)".into()))
        }
        other => other.map(|()| StatusCode::NO_CONTENT).map_err(ApiError::from),
    }
}

/// The members, by contact id.
#[utoipa::path(get, path = "/segments/{id}/members", tag = "segments", params(("id" = String, Path), ListParams),
    responses((status = 200, body = List<MemberDto>), (status = 404, body = ErrorBody)))]
async fn list_members(
    State(state): State<SegmentsState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<ListParams>,
) -> Result<Json<List<MemberDto>>, ApiError> {
    let id = parse_id(&id)?;
    state.store.get_segment(p.workspace_id, id).await?;
    let page = state.store.list_members(p.workspace_id, id, q.page()?).await?;
    Ok(Json(List::from_page(page, |m| MemberDto { contact: m.contact.into(), member_since: m.since })))
}

/// Every member as CSV: `id,email,user_id,phone,name,member_since`.
#[utoipa::path(get, path = "/segments/{id}/members.csv", tag = "segments", params(("id" = String, Path)),
    responses((status = 200, content_type = "text/csv", body = String), (status = 404, body = ErrorBody)))]
async fn export_members(
    State(state): State<SegmentsState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<axum::response::Response, ApiError> {
    let id = parse_id(&id)?;
    let segment = state.store.get_segment(p.workspace_id, id).await?;
    let csv = service::members_csv(&state.store, p.workspace_id, id).await?;
    Ok(crate::web::csv_file(&format!("{}-members.csv", segment.id), csv))
}

/// The segment's size at the end of each day that saw a change.
#[utoipa::path(get, path = "/segments/{id}/sizes", tag = "segments", params(("id" = String, Path), SizeQuery),
    responses((status = 200, body = SizesDto), (status = 404, body = ErrorBody)))]
async fn segment_sizes(
    State(state): State<SegmentsState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<SizeQuery>,
) -> Result<Json<SizesDto>, ApiError> {
    let id = parse_id(&id)?;
    let days = q.days.unwrap_or(90);
    if !(1..=366).contains(&days) {
        return Err(ApiError::invalid("days", "must be between 1 and 366"));
    }
    state.store.get_segment(p.workspace_id, id).await?;
    let sizes = state.store.segment_sizes(p.workspace_id, id, days).await?;
    Ok(Json(SizesDto { data: sizes.into_iter().map(|s| SizeDto { day: s.day, members: s.members }).collect() }))
}

/// The most recent entries and exits, and why.
#[utoipa::path(get, path = "/segments/{id}/history", tag = "segments", params(("id" = String, Path)),
    responses((status = 200, body = HistoryDto), (status = 404, body = ErrorBody)))]
async fn segment_history(
    State(state): State<SegmentsState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<HistoryDto>, ApiError> {
    let id = parse_id(&id)?;
    state.store.get_segment(p.workspace_id, id).await?;
    let changes = state.store.membership_history(p.workspace_id, Some(id), None, 100).await?;
    Ok(Json(HistoryDto {
        data: changes
            .into_iter()
            .map(|c| ChangeDto {
                contact_id: c.contact_id,
                change: if c.entered { "entered" } else { "left" },
                at: c.at,
                reason: c.reason,
            })
            .collect(),
    }))
}
