//! `/api/v1/campaigns/{id}/webhooks`: a campaign's event webhooks (seed 001). The password and
//! the secret are write-only (`password_set`, `secret_set`); a blank or absent secret on update
//! keeps the stored one. Their calls are in `/api/v1/webhook-deliveries?campaign_webhook=cwh_…`.

use std::net::IpAddr;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use herald_domain::{
    CampaignEventKind, CampaignId, CampaignWebhook, CampaignWebhookId, HookMethod, PayloadEncoding, PayloadMapping,
    Timestamp, WorkspaceId,
};
use herald_webhook::client::ALLOW_HTTP_SETTING;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::state::AppState;
use crate::web::auth::Auth;
use crate::web::error::{ApiError, ApiJson, ErrorBody};
use crate::web::list::List;
use crate::webhooks::campaign_events::check_secret;

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

/// A webhook to create, or the fields to change (absent fields keep their value).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookInput {
    /// HTTPS only (plain `http://` only when the operator sets `HERALD_WEBHOOK_ALLOW_HTTP`).
    /// Required on create.
    #[schema(example = "https://api.example.com/webhooks/campaign-events")]
    pub(crate) url: Option<String>,
    /// `json` (default, `application/json`) or `form` (`application/x-www-form-urlencoded`,
    /// nested fields as `contact[email]`).
    #[schema(example = "json")]
    pub(crate) content_type: Option<String>,
    /// `POST` (default) or `GET`, which sends the payload as query parameters and no body.
    #[schema(example = "POST")]
    pub(crate) method: Option<String>,
    /// `none` or `basic` (POST only); `basic` by default when a username is given.
    #[schema(example = "none")]
    pub(crate) auth: Option<String>,
    pub(crate) username: Option<String>,
    /// Write-only. Absent or blank: keep the stored one.
    #[serde(default, deserialize_with = "crate::web::present")]
    #[schema(value_type = Option<String>)]
    pub(crate) password: Option<Option<String>>,
    /// Signs the calls instead of the workspace's keys: a `whsec_` secret or 16 to 256
    /// characters of text (whose UTF-8 bytes are the HMAC key). Write-only. Absent or blank:
    /// keep the stored one; `null`: remove it (the workspace's keys sign again).
    #[serde(default, deserialize_with = "crate::web::present")]
    #[schema(value_type = Option<String>)]
    pub(crate) secret: Option<Option<String>>,
    /// Keep response bodies (up to 64 KiB) in the delivery log. Default false.
    pub(crate) log_response_body: Option<bool>,
    /// Default true; an inactive webhook sends nothing.
    pub(crate) active: Option<bool>,
    /// Required on create, at least one of `contact_entered`, `email_sent`, `email_failed`,
    /// `email_suppressed`, `webhook_failed`, `contact_converted`, `contact_exited`,
    /// `contact_unsubscribed`.
    #[schema(example = json!(["contact_entered", "email_sent", "contact_exited"]))]
    pub(crate) events: Option<Vec<String>>,
    /// A custom payload: field name → `{"from": path}` or `{"value": any JSON}`. Paths:
    /// `event`, `timestamp`, `journey_id`, `campaign.id`, `campaign.name`, `contact.id`,
    /// `contact.email`, `contact.user_id`, `contact.phone`, `contact.attributes[.name…]`,
    /// `data[.field…]` (a path absent in an event gives `null`). `null` or absent on create:
    /// the default payload.
    #[serde(default, deserialize_with = "crate::web::present")]
    #[schema(value_type = Option<Object>, example = json!({
        "email": {"from": "contact.email"},
        "campaign_name": {"from": "campaign.name"},
        "source": {"value": "webhook"}
    }))]
    pub(crate) payload: Option<Option<Value>>,
}

pub fn router() -> OpenApiRouter<AppState> {
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

/// Applies `input` to `hook` (a stored webhook, or a blank one for create) and validates the
/// result; every refusal names its field.
fn apply(state: &AppState, mut hook: CampaignWebhook, input: WebhookInput) -> Result<CampaignWebhook, ApiError> {
    if let Some(url) = input.url {
        hook.url = check_url(state, url.trim())?;
    }
    if hook.url.is_empty() {
        return Err(ApiError::invalid("url", "is required"));
    }
    if let Some(content_type) = input.content_type {
        hook.content_type = match content_type.trim().to_ascii_lowercase().as_str() {
            "json" | "application/json" => PayloadEncoding::Json,
            "form" | "application/x-www-form-urlencoded" => PayloadEncoding::Form,
            _ => return Err(ApiError::invalid("content_type", "must be json or form")),
        };
    }
    if let Some(method) = input.method {
        hook.method = method
            .trim()
            .to_ascii_uppercase()
            .parse()
            .map_err(|_| ApiError::invalid("method", "must be POST or GET"))?;
    }
    let basic = match input.auth.as_deref().map(str::trim) {
        Some("basic") => true,
        Some("none") => false,
        Some(_) => return Err(ApiError::invalid("auth", "must be none or basic")),
        None => input.username.is_some() || hook.basic_auth.is_some(),
    };
    hook.basic_auth = if basic {
        if hook.method != HookMethod::Post {
            return Err(ApiError::invalid("auth", "Basic authentication is only available with method POST"));
        }
        let (stored_user, stored_password) = hook.basic_auth.take().unzip();
        let user = input.username.or(stored_user).filter(|u| !u.trim().is_empty());
        let user = user.ok_or_else(|| ApiError::invalid("username", "is required with Basic authentication"))?;
        if user.contains(':') {
            return Err(ApiError::invalid("username", "must not contain ':'"));
        }
        let password = match input.password {
            Some(Some(password)) if !password.is_empty() => Some(password),
            Some(None) => None,
            _ => stored_password,
        };
        let password =
            password.ok_or_else(|| ApiError::invalid("password", "is required with Basic authentication"))?;
        Some((user, password))
    } else {
        if input.username.is_some() || matches!(input.password, Some(Some(_))) {
            let field = if input.username.is_some() { "username" } else { "password" };
            return Err(ApiError::invalid(field, "is only used with auth basic"));
        }
        None
    };
    match input.secret {
        Some(Some(secret)) if !secret.trim().is_empty() => {
            check_secret(&secret).map_err(|reason| ApiError::invalid("secret", reason))?;
            hook.secret = Some(secret);
        }
        Some(None) => hook.secret = None,
        // Blank or absent: the stored secret stays (seed 001).
        _ => {}
    }
    if let Some(flag) = input.log_response_body {
        hook.log_response_body = flag;
    }
    if let Some(flag) = input.active {
        hook.active = flag;
    }
    if let Some(events) = input.events {
        let mut kinds: Vec<CampaignEventKind> = Vec::with_capacity(events.len());
        for (i, name) in events.iter().enumerate() {
            let kind = name.parse().map_err(|_| {
                let known: Vec<&str> = CampaignEventKind::ALL.iter().map(|k| k.as_str()).collect();
                ApiError::invalid(
                    &format!("events[{i}]"),
                    format!("unknown event {name:?}; one of {}", known.join(", ")),
                )
            })?;
            if !kinds.contains(&kind) {
                kinds.push(kind);
            }
        }
        hook.events = kinds;
    }
    if hook.events.is_empty() {
        return Err(ApiError::invalid("events", "subscribe to at least one event"));
    }
    if let Some(payload) = input.payload {
        hook.payload = payload
            .map(|p| PayloadMapping::parse(&p, "payload"))
            .transpose()
            .map_err(|e| ApiError::invalid(&e.path, e.reason))?;
    }
    Ok(hook)
}

/// HTTPS (or http when the operator allows it), a host, no credentials or fragment, and not an
/// IP address the outbound policy refuses (names are checked again on every call, where they
/// resolve).
fn check_url(state: &AppState, raw: &str) -> Result<String, ApiError> {
    let url = reqwest::Url::parse(raw).map_err(|e| ApiError::invalid("url", format!("not a URL: {e}")))?;
    let settings = state.webhooks.client_settings();
    match url.scheme() {
        "https" => {}
        "http" if settings.allow_http => {}
        "http" => {
            return Err(ApiError::invalid(
                "url",
                format!("must use https:// (plain http:// is refused unless the operator sets {ALLOW_HTTP_SETTING})"),
            ));
        }
        other => return Err(ApiError::invalid("url", format!("unsupported scheme {other}:; use https://"))),
    }
    let host = url.host_str().filter(|h| !h.is_empty()).ok_or_else(|| ApiError::invalid("url", "has no host"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ApiError::invalid("url", "must not carry credentials; use auth basic"));
    }
    if url.fragment().is_some() {
        return Err(ApiError::invalid("url", "must not have a #fragment"));
    }
    if let Ok(ip) = host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
        settings.policy.check(ip).map_err(|refusal| ApiError::invalid("url", refusal))?;
    }
    Ok(url.to_string())
}

/// The campaign must exist in the caller's workspace.
async fn campaign_of(state: &AppState, workspace: WorkspaceId, id: CampaignId) -> Result<(), ApiError> {
    state.store.get_campaign(workspace, id).await?;
    Ok(())
}

/// A campaign's event webhooks, oldest first.
#[utoipa::path(get, path = "/campaigns/{id}/webhooks", tag = "campaign-webhooks",
    params(("id" = String, Path, description = "Campaign id (`cmp_…`)")),
    responses((status = 200, body = List<CampaignWebhookDto>), (status = 404, body = ErrorBody)))]
async fn list_webhooks(
    State(state): State<AppState>,
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
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<WebhookInput>,
) -> Result<(StatusCode, Json<CampaignWebhookDto>), ApiError> {
    let created = create(&state, p.workspace_id, campaign_id(&id)?, input).await?;
    Ok((StatusCode::CREATED, Json(created.into())))
}

/// Adds a webhook to a campaign (the API's and the web UI's one way to).
pub(crate) async fn create(
    state: &AppState,
    workspace: WorkspaceId,
    campaign: CampaignId,
    input: WebhookInput,
) -> Result<CampaignWebhook, ApiError> {
    let now = state.clock.now();
    let blank = CampaignWebhook {
        id: CampaignWebhookId::from_uuid(herald_store::new_uuid(now)),
        workspace_id: workspace,
        campaign_id: campaign,
        url: String::new(),
        content_type: PayloadEncoding::Json,
        method: HookMethod::Post,
        basic_auth: None,
        secret: None,
        log_response_body: false,
        active: true,
        events: Vec::new(),
        payload: None,
        created_at: now,
        updated_at: now,
    };
    let hook = apply(state, blank, input)?;
    let created = state.store.create_campaign_webhook(&hook).await?;
    state.campaigns.forget_hooks(workspace, campaign);
    tracing::info!(workspace = %workspace, campaign = %campaign, webhook = %created.id, "campaign webhook created");
    Ok(created)
}

#[utoipa::path(get, path = "/campaigns/{id}/webhooks/{webhook_id}", tag = "campaign-webhooks",
    params(("id" = String, Path, description = "Campaign id (`cmp_…`)"),
           ("webhook_id" = String, Path, description = "Webhook id (`cwh_…`)")),
    responses((status = 200, body = CampaignWebhookDto), (status = 404, body = ErrorBody)))]
async fn get_webhook(
    State(state): State<AppState>,
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
    State(state): State<AppState>,
    Auth(p): Auth,
    Path((id, webhook_id)): Path<(String, String)>,
    ApiJson(input): ApiJson<WebhookInput>,
) -> Result<Json<CampaignWebhookDto>, ApiError> {
    let (campaign, hook) = ids(&id, &webhook_id)?;
    Ok(Json(update(&state, p.workspace_id, campaign, hook, input).await?.into()))
}

/// Changes the fields `input` gives (the API's and the web UI's one way to).
pub(crate) async fn update(
    state: &AppState,
    workspace: WorkspaceId,
    campaign: CampaignId,
    hook: CampaignWebhookId,
    input: WebhookInput,
) -> Result<CampaignWebhook, ApiError> {
    let stored = state.store.get_campaign_webhook(workspace, campaign, hook).await?;
    let mut changed = apply(state, stored, input)?;
    changed.updated_at = state.clock.now();
    let updated = state.store.update_campaign_webhook(&changed).await?;
    state.campaigns.forget_hooks(workspace, campaign);
    Ok(updated)
}

/// Delete an event webhook; its past calls stay in the delivery log.
#[utoipa::path(delete, path = "/campaigns/{id}/webhooks/{webhook_id}", tag = "campaign-webhooks",
    params(("id" = String, Path, description = "Campaign id (`cmp_…`)"),
           ("webhook_id" = String, Path, description = "Webhook id (`cwh_…`)")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn delete_webhook(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path((id, webhook_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let (campaign, hook) = ids(&id, &webhook_id)?;
    delete(&state, p.workspace_id, campaign, hook).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes a webhook (the API's and the web UI's one way to); its calls stay in the log.
pub(crate) async fn delete(
    state: &AppState,
    workspace: WorkspaceId,
    campaign: CampaignId,
    hook: CampaignWebhookId,
) -> Result<(), ApiError> {
    state.store.delete_campaign_webhook(workspace, campaign, hook).await?;
    state.campaigns.forget_hooks(workspace, campaign);
    Ok(())
}
