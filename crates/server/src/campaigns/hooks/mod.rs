//! A campaign's event webhooks: where its events (entered, exited, email sent, ...) are sent.
//! `create`, `update` and `delete` are the one way to change them, used by the API (`api`)
//! and the campaign page's webhooks section (`pages`); the calls themselves are made by
//! delivery's webhooks.

pub mod api;
pub(crate) mod form;
pub(crate) mod pages;

use std::net::IpAddr;

use herald_domain::{
    CampaignEventKind, CampaignId, CampaignWebhook, CampaignWebhookId, HookMethod, PayloadEncoding, PayloadMapping,
    WorkspaceId,
};
use herald_webhook::client::ALLOW_HTTP_SETTING;
use herald_webhook::sign::check_secret;
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::CampaignsState;
use crate::web::error::ApiError;

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
    /// characters of text. `X-Herald-Signature` is keyed with it as written (UTF-8 bytes);
    /// Standard Webhooks with a `whsec_` secret's decoded bytes, or a text secret's UTF-8
    /// bytes. Write-only. Absent or blank: keep the stored one; `null`: remove it (the
    /// workspace's keys sign again).
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
    #[schema(example = json!(["contact_entered", "email_sent", "contact_exited"]), min_items = 1)]
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

/// Adds a webhook to a campaign (the API's and the web UI's one way to).
pub async fn create(
    state: &CampaignsState,
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
    let hook = merge_input(state, blank, input)?;
    let created = state.store.create_campaign_webhook(&hook).await?;
    state.campaigns.forget_hooks(workspace, campaign);
    tracing::info!(workspace = %workspace, campaign = %campaign, webhook = %created.id, "campaign webhook created");
    Ok(created)
}

/// Changes the fields `input` gives (the API's and the web UI's one way to).
pub async fn update(
    state: &CampaignsState,
    workspace: WorkspaceId,
    campaign: CampaignId,
    hook: CampaignWebhookId,
    input: WebhookInput,
) -> Result<CampaignWebhook, ApiError> {
    let stored = state.store.get_campaign_webhook(workspace, campaign, hook).await?;
    let mut changed = merge_input(state, stored, input)?;
    changed.updated_at = state.clock.now();
    let updated = state.store.update_campaign_webhook(&changed).await?;
    state.campaigns.forget_hooks(workspace, campaign);
    Ok(updated)
}

/// Deletes a webhook (the API's and the web UI's one way to); its calls stay in the log.
pub async fn delete(
    state: &CampaignsState,
    workspace: WorkspaceId,
    campaign: CampaignId,
    hook: CampaignWebhookId,
) -> Result<(), ApiError> {
    state.store.delete_campaign_webhook(workspace, campaign, hook).await?;
    state.campaigns.forget_hooks(workspace, campaign);
    Ok(())
}
/// Applies `input` to `hook` (a stored webhook, or a blank one for create) and validates the
/// result; every refusal names its field.
/// The hook with the input's fields (those given) merged in, each checked.
fn merge_input(
    state: &CampaignsState,
    mut hook: CampaignWebhook,
    input: WebhookInput,
) -> Result<CampaignWebhook, ApiError> {
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
fn check_url(state: &CampaignsState, raw: &str) -> Result<String, ApiError> {
    let url = reqwest::Url::parse(raw).map_err(|e| ApiError::invalid("url", format!("not a URL: {e}")))?;
    let settings = &state.outbound;
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
