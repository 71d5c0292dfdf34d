//! `/api/v1/webhook-drafts`: calls held at draft webhook steps (seed 002's "draft" mode). Each
//! holds its journey until someone sends it (the call is made, retried and logged like any
//! other, and the journey moves on after it and its attribute update) or skips it (the journey
//! moves on with `last_webhook.outcome` = `skipped`).

use axum::Json;
use axum::extract::{FromRef, Path, State};
use herald_domain::{CampaignId, ContactId, DraftId, JourneyId, Timestamp, WebhookDraft};
use herald_store::webhook::DraftSelection;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{BULK_LIMIT, Decision, settle};
use crate::campaigns::CampaignsState;
use crate::web::auth::Auth;
use crate::web::error::{ApiError, ApiJson, ApiQuery, ErrorBody};
use crate::web::list::{List, ListParams};

/// A call waiting for a decision.
#[derive(Debug, Serialize, ToSchema)]
pub struct DraftDto {
    #[schema(value_type = String, example = "drf_0193a4b2c3d47e5f8a9b0c1d2e3f4a5b")]
    id: DraftId,
    #[schema(value_type = String)]
    journey_id: JourneyId,
    #[schema(value_type = String)]
    campaign_id: CampaignId,
    #[schema(value_type = String)]
    contact_id: ContactId,
    step: String,
    /// The rendered request (secret-looking header values masked).
    #[schema(value_type = Object)]
    request: Value,
    #[schema(value_type = String, format = DateTime)]
    created_at: Timestamp,
}

impl From<WebhookDraft> for DraftDto {
    fn from(d: WebhookDraft) -> Self {
        Self {
            id: d.id,
            journey_id: d.journey_id,
            campaign_id: d.campaign_id,
            contact_id: d.contact_id,
            step: d.step,
            request: d.request,
            created_at: d.created_at,
        }
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DraftParams {
    pub limit: Option<u32>,
    pub cursor: Option<String>,
    /// Only this campaign's drafts (`cmp_…`).
    pub campaign: Option<String>,
    /// Only drafts at this step (with `campaign`).
    pub step: Option<String>,
}

/// Which drafts to send or skip: `ids`, or every draft of `campaign_id` (at `step`, if given).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DraftBatch {
    #[serde(default)]
    #[schema(value_type = Vec<String>)]
    ids: Vec<String>,
    #[schema(value_type = Option<String>)]
    campaign_id: Option<String>,
    step: Option<String>,
}

/// What a send or skip did.
#[derive(Debug, Serialize, ToSchema)]
pub struct Settled {
    /// The drafts sent or skipped (at most 1000 per call: repeat while `more` is true).
    #[schema(value_type = Vec<String>)]
    ids: Vec<DraftId>,
    more: bool,
}

pub fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    CampaignsState: FromRef<S>,
{
    OpenApiRouter::new()
        .routes(routes!(list_drafts))
        .routes(routes!(send_drafts))
        .routes(routes!(skip_drafts))
        .routes(routes!(send_draft))
        .routes(routes!(skip_draft))
}

fn campaign(raw: Option<&str>, field: &str) -> Result<Option<CampaignId>, ApiError> {
    raw.map(|r| r.parse().map_err(|e| ApiError::invalid(field, e))).transpose()
}

/// Drafts waiting for a decision, oldest first.
#[utoipa::path(get, path = "/webhook-drafts", tag = "webhooks", params(DraftParams),
    responses((status = 200, body = List<DraftDto>), (status = 400, body = ErrorBody)))]
async fn list_drafts(
    State(state): State<CampaignsState>,
    Auth(p): Auth,
    ApiQuery(params): ApiQuery<DraftParams>,
) -> Result<Json<List<DraftDto>>, ApiError> {
    let selection = DraftSelection {
        ids: Vec::new(),
        campaign: campaign(params.campaign.as_deref(), "campaign")?,
        step: params.step,
    };
    let page = ListParams { limit: params.limit, cursor: params.cursor }.page()?;
    let page = state.store.list_drafts(p.workspace_id, &selection, page).await?;
    Ok(Json(List::from_page(page, DraftDto::from)))
}

async fn settle_batch(
    state: &CampaignsState,
    workspace: herald_domain::WorkspaceId,
    batch: DraftBatch,
    decision: Decision,
) -> Result<Json<Settled>, ApiError> {
    let ids = batch
        .ids
        .iter()
        .enumerate()
        .map(|(i, raw)| raw.parse().map_err(|e| ApiError::invalid(&format!("ids[{i}]"), e)))
        .collect::<Result<Vec<DraftId>, _>>()?;
    let campaign = campaign(batch.campaign_id.as_deref(), "campaign_id")?;
    if ids.is_empty() && campaign.is_none() {
        return Err(ApiError::invalid("ids", "give the drafts' ids, or a campaign_id to settle all of its drafts"));
    }
    if batch.step.is_some() && campaign.is_none() {
        return Err(ApiError::invalid("step", "needs a campaign_id"));
    }
    let limit = if ids.is_empty() { BULK_LIMIT } else { u32::try_from(ids.len()).unwrap_or(u32::MAX) };
    let settled = settle(state, workspace, DraftSelection { ids, campaign, step: batch.step }, decision, limit).await?;
    let more = campaign.is_some() && settled.len() == BULK_LIMIT as usize;
    Ok(Json(Settled { ids: settled, more }))
}

/// Send drafts: each call is made (signed, retried, logged) and its journey moves on after it.
#[utoipa::path(post, path = "/webhook-drafts/send", tag = "webhooks", request_body = DraftBatch,
    responses((status = 200, body = Settled), (status = 400, body = ErrorBody)))]
async fn send_drafts(
    State(state): State<CampaignsState>,
    Auth(p): Auth,
    ApiJson(batch): ApiJson<DraftBatch>,
) -> Result<Json<Settled>, ApiError> {
    settle_batch(&state, p.workspace_id, batch, Decision::Send).await
}

/// Skip drafts: no call; each journey moves on with `last_webhook.outcome` = `skipped`.
#[utoipa::path(post, path = "/webhook-drafts/skip", tag = "webhooks", request_body = DraftBatch,
    responses((status = 200, body = Settled), (status = 400, body = ErrorBody)))]
async fn skip_drafts(
    State(state): State<CampaignsState>,
    Auth(p): Auth,
    ApiJson(batch): ApiJson<DraftBatch>,
) -> Result<Json<Settled>, ApiError> {
    settle_batch(&state, p.workspace_id, batch, Decision::Skip).await
}

async fn settle_one(
    state: &CampaignsState,
    workspace: herald_domain::WorkspaceId,
    raw: &str,
    decision: Decision,
) -> Result<Json<Settled>, ApiError> {
    let id: DraftId = raw.parse().map_err(|e| ApiError::invalid("id", e))?;
    let selection = DraftSelection { ids: vec![id], ..DraftSelection::default() };
    let settled = settle(state, workspace, selection, decision, 1).await?;
    if settled.is_empty() {
        return Err(herald_store::StoreError::NotFound { entity: "draft" }.into());
    }
    Ok(Json(Settled { ids: settled, more: false }))
}

/// Send one draft.
#[utoipa::path(post, path = "/webhook-drafts/{id}/send", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 200, body = Settled), (status = 404, body = ErrorBody, description = "No such draft, or already sent or skipped")))]
async fn send_draft(
    State(state): State<CampaignsState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<Settled>, ApiError> {
    settle_one(&state, p.workspace_id, &id, Decision::Send).await
}

/// Skip one draft.
#[utoipa::path(post, path = "/webhook-drafts/{id}/skip", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 200, body = Settled), (status = 404, body = ErrorBody, description = "No such draft, or already sent or skipped")))]
async fn skip_draft(
    State(state): State<CampaignsState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<Settled>, ApiError> {
    settle_one(&state, p.workspace_id, &id, Decision::Skip).await
}
