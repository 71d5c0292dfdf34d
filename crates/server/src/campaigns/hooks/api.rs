//! `/api/v1/campaigns/{id}/webhooks`: a campaign's event webhooks (seed 001). The password and
//! the secret are write-only (`password_set`, `secret_set`); a blank or absent secret on update
//! keeps the stored one. Their calls are in `/api/v1/webhook-deliveries?campaign_webhook=cwh_…`.

use axum::Json;
use axum::extract::{FromRef, Path, State};
use axum::http::StatusCode;
use herald_domain::{CampaignId, CampaignWebhook, CampaignWebhookId, Timestamp, WorkspaceId};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{WebhookInput, create, delete, update};
use crate::campaigns::CampaignsState;
use crate::web::auth::Auth;
use crate::web::error::{ApiError, ApiJson, ErrorBody};
use crate::web::list::List;

/// A campaign event webhook. The password and the secret are never shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct CampaignWebhookDto {
    #[schema(value_type = String, example = "cwh_0193a4b2c3d47e5f8a9b0c1d2e3f4a5b")]
    id: CampaignWebhookId,
    #[schema(value_type = String, example = "cmp_0193a4b2c3d47e5f8a9b0c1d2e3f4a5b")]
    campaign_id: CampaignId,
    #[schema(example = "https://api.example.com/webhooks/campaign-events")]
    url: String,
    /// `json` or `form`.
    #[schema(example = "json")]
    content_type: &'static str,
    /// `POST` or `GET` (the payload as query parameters).
    #[schema(example = "POST")]
    method: &'static str,
    /// `none` or `basic`.
    #[schema(example = "none")]
    auth: &'static str,
    username: Option<String>,
    password_set: bool,
    /// Whether the webhook has its own signing secret (else the workspace's keys sign).
    secret_set: bool,
    log_response_body: bool,
    active: bool,
    #[schema(example = json!(["contact_entered", "email_sent", "contact_exited"]))]
    events: Vec<&'static str>,
    /// The custom payload's field mappings; `null` sends the default payload.
    #[schema(value_type = Option<Object>)]
    payload: Option<Value>,
    #[schema(value_type = String, format = DateTime)]
    created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    updated_at: Timestamp,
}

impl From<CampaignWebhook> for CampaignWebhookDto {
    fn from(h: CampaignWebhook) -> Self {
        Self {
            id: h.id,
            campaign_id: h.campaign_id,
            url: h.url,
            content_type: h.content_type.as_str(),
            method: h.method.as_str(),
            auth: if h.basic_auth.is_some() { "basic" } else { "none" },
            username: h.basic_auth.as_ref().map(|(user, _)| user.clone()),
            password_set: h.basic_auth.as_ref().is_some_and(|(_, password)| !password.is_empty()),
            secret_set: h.secret.is_some(),
            log_response_body: h.log_response_body,
            active: h.active,
            events: h.events.iter().map(|e| e.as_str()).collect(),
            payload: h.payload.map(|p| json!(p)),
            created_at: h.created_at,
            updated_at: h.updated_at,
        }
    }
}

pub fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    CampaignsState: FromRef<S>,
{
    OpenApiRouter::new().routes(routes!(list_webhooks, create_webhook)).routes(routes!(
        get_webhook,
        update_webhook,
        delete_webhook
    ))
}

fn campaign_id(raw: &str) -> Result<CampaignId, ApiError> {
    raw.parse().map_err(|e| ApiError::invalid("id", e))
}

fn ids(campaign: &str, hook: &str) -> Result<(CampaignId, CampaignWebhookId), ApiError> {
    Ok((campaign_id(campaign)?, hook.parse().map_err(|e| ApiError::invalid("webhook_id", e))?))
}

/// The campaign must exist in the caller's workspace.
async fn campaign_of(state: &CampaignsState, workspace: WorkspaceId, id: CampaignId) -> Result<(), ApiError> {
    state.store.get_campaign(workspace, id).await?;
    Ok(())
}

/// A campaign's event webhooks, oldest first.
#[utoipa::path(get, path = "/campaigns/{id}/webhooks", tag = "campaign-webhooks",
    params(("id" = String, Path, description = "Campaign id (`cmp_…`)")),
    responses((status = 200, body = List<CampaignWebhookDto>), (status = 404, body = ErrorBody)))]
async fn list_webhooks(
    State(state): State<CampaignsState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<List<CampaignWebhookDto>>, ApiError> {
    let campaign = campaign_id(&id)?;
    campaign_of(&state, p.workspace_id, campaign).await?;
    let hooks = state.store.list_campaign_webhooks(p.workspace_id, Some(campaign)).await?;
    Ok(Json(List { data: hooks.into_iter().map(CampaignWebhookDto::from).collect(), next_cursor: None }))
}

/// Add an event webhook to a campaign.
///
/// Each subscribed event sends one request, signed like every Herald webhook (`webhook-id`,
/// `webhook-timestamp`, `webhook-signature`, `X-Herald-Timestamp`, `X-Herald-Signature`,
/// `Idempotency-Key`) with the webhook's own `secret` if it has one, else the workspace's
/// keys; retried, logged and resendable like every delivery. The idempotency key is the same
/// for the same webhook, event and occurrence, however often the event is recorded.
///
/// The default payload (JSON; as form or query parameters in bracket notation,
/// `contact[email]=…`):
///
/// ```json
/// {"event": "email_sent", "timestamp": "2026-06-17T09:30:00Z",
///  "campaign": {"id": "cmp_…", "name": "Summer Promotion"}, "journey_id": "jrn_…",
///  "contact": {"id": "ct_…", "email": "user@example.com", "user_id": "u_42", "phone": null,
///              "attributes": {"plan": "pro"}},
///  "data": {"message_id": "msg_…", "step": "welcome", "to": "user@example.com",
///           "subject": "Welcome", "status": "sent", "reason": null}}
/// ```
///
/// `data` by event: `contact_entered` `{event_id}` (the trigger event, `null` when enrolled
/// through the API); `email_sent`, `email_failed`, `email_suppressed` `{message_id, step, to,
/// subject, status, reason}`; `webhook_failed` `{delivery_id, step, url, status (failed or
/// exhausted), attempts, last_status, error}`; `contact_converted` `{event_id, goal, exited}`;
/// `contact_exited` `{reason}` (`completed`, `exit_step` or `converted`);
/// `contact_unsubscribed` `{email, reason, detail}`.
#[utoipa::path(post, path = "/campaigns/{id}/webhooks", tag = "campaign-webhooks",
    params(("id" = String, Path, description = "Campaign id (`cmp_…`)")),
    request_body(content = WebhookInput, examples(
        ("default payload" = (value = json!({
            "url": "https://api.example.com/webhooks/campaign-events",
            "events": ["contact_entered", "email_sent", "contact_exited"],
            "secret": "a-long-random-shared-secret"
        }))),
        ("custom payload, form, basic auth" = (value = json!({
            "url": "https://crm.example.com/hooks/herald",
            "content_type": "form",
            "method": "POST",
            "auth": "basic", "username": "herald", "password": "s3cret",
            "events": ["email_sent", "contact_unsubscribed"],
            "payload": {
                "email": {"from": "contact.email"},
                "campaign_name": {"from": "campaign.name"},
                "source": {"value": "webhook"}
            },
            "log_response_body": true
        })))
    )),
    responses((status = 201, body = CampaignWebhookDto), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn create_webhook(
    State(state): State<CampaignsState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<WebhookInput>,
) -> Result<(StatusCode, Json<CampaignWebhookDto>), ApiError> {
    let created = create(&state, p.workspace_id, campaign_id(&id)?, input).await?;
    Ok((StatusCode::CREATED, Json(created.into())))
}

#[utoipa::path(get, path = "/campaigns/{id}/webhooks/{webhook_id}", tag = "campaign-webhooks",
    params(("id" = String, Path, description = "Campaign id (`cmp_…`)"),
           ("webhook_id" = String, Path, description = "Webhook id (`cwh_…`)")),
    responses((status = 200, body = CampaignWebhookDto), (status = 404, body = ErrorBody)))]
async fn get_webhook(
    State(state): State<CampaignsState>,
    Auth(p): Auth,
    Path((id, webhook_id)): Path<(String, String)>,
) -> Result<Json<CampaignWebhookDto>, ApiError> {
    let (campaign, hook) = ids(&id, &webhook_id)?;
    Ok(Json(state.store.get_campaign_webhook(p.workspace_id, campaign, hook).await?.into()))
}

/// Change an event webhook: absent fields keep their value, a blank or absent `secret` or
/// `password` keeps the stored one.
#[utoipa::path(patch, path = "/campaigns/{id}/webhooks/{webhook_id}", tag = "campaign-webhooks",
    params(("id" = String, Path, description = "Campaign id (`cmp_…`)"),
           ("webhook_id" = String, Path, description = "Webhook id (`cwh_…`)")),
    request_body(content = WebhookInput, example = json!({"active": false, "secret": ""})),
    responses((status = 200, body = CampaignWebhookDto), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn update_webhook(
    State(state): State<CampaignsState>,
    Auth(p): Auth,
    Path((id, webhook_id)): Path<(String, String)>,
    ApiJson(input): ApiJson<WebhookInput>,
) -> Result<Json<CampaignWebhookDto>, ApiError> {
    let (campaign, hook) = ids(&id, &webhook_id)?;
    Ok(Json(update(&state, p.workspace_id, campaign, hook, input).await?.into()))
}

/// Delete an event webhook; its past calls stay in the delivery log.
#[utoipa::path(delete, path = "/campaigns/{id}/webhooks/{webhook_id}", tag = "campaign-webhooks",
    params(("id" = String, Path, description = "Campaign id (`cmp_…`)"),
           ("webhook_id" = String, Path, description = "Webhook id (`cwh_…`)")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn delete_webhook(
    State(state): State<CampaignsState>,
    Auth(p): Auth,
    Path((id, webhook_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let (campaign, hook) = ids(&id, &webhook_id)?;
    delete(&state, p.workspace_id, campaign, hook).await?;
    Ok(StatusCode::NO_CONTENT)
}
