//! A campaign's event webhooks: the section of the campaign page (list, new-webhook form),
//! the edit page and delete, through the same `http::campaign_webhooks` helpers and
//! validation as `/api/v1/campaigns/{id}/webhooks`. The Basic password and the signing secret
//! are write-only: the forms say whether one is set, never what it is, and a blank field keeps
//! the stored value. A custom payload is kept as it is (set it through the API).

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use herald_domain::{CampaignEventKind, CampaignId, CampaignWebhook, CampaignWebhookId, WorkspaceId};

use super::{self as service, WebhookInput};
use crate::campaigns::CampaignsState;
use crate::campaigns::pages::CampaignPage;
use crate::web::{Empty, FieldErrors, Form, Layout, Session, UiError, UiResult, parse_id, render, see_other};

pub struct HookRow {
    pub id: String,
    pub url: String,
    pub method: &'static str,
    pub content_type: &'static str,
    pub auth: &'static str,
    pub events: String,
    pub active: bool,
    pub signed_by_own_secret: bool,
}

/// The campaign's webhooks for its page, oldest first (a campaign has a handful).
pub async fn rows(
    state: &CampaignsState,
    workspace: WorkspaceId,
    campaign: CampaignId,
) -> Result<Vec<HookRow>, UiError> {
    let hooks = state.store.list_campaign_webhooks(workspace, Some(campaign)).await?;
    Ok(hooks
        .iter()
        .map(|h| HookRow {
            id: h.id.to_string(),
            url: h.url.clone(),
            method: h.method.as_str(),
            content_type: h.content_type.as_str(),
            auth: if h.basic_auth.is_some() { "Basic" } else { "none" },
            events: h.events.iter().map(|e| e.as_str()).collect::<Vec<_>>().join(", "),
            active: h.active,
            signed_by_own_secret: h.secret.is_some(),
        })
        .collect())
}

/// The webhook form's fields as typed (secrets never: they are write-only).
#[derive(Debug)]
pub struct HookForm {
    pub url: String,
    pub content_type: String,
    pub method: String,
    pub auth: String,
    pub username: String,
    pub log_response_body: bool,
    pub active: bool,
    /// Every event kind: (name, checked).
    pub events: Vec<(&'static str, bool)>,
    pub password_set: bool,
    pub secret_set: bool,
}

/// A blank form: JSON, POST, no auth, active, no events.
impl Default for HookForm {
    fn default() -> Self {
        Self {
            url: String::new(),
            content_type: "json".into(),
            method: "POST".into(),
            auth: "none".into(),
            username: String::new(),
            log_response_body: false,
            active: true,
            events: CampaignEventKind::ALL.iter().map(|e| (e.as_str(), false)).collect(),
            password_set: false,
            secret_set: false,
        }
    }
}

impl HookForm {
    fn of(hook: &CampaignWebhook) -> Self {
        Self {
            url: hook.url.clone(),
            content_type: hook.content_type.as_str().into(),
            method: hook.method.as_str().into(),
            auth: if hook.basic_auth.is_some() { "basic" } else { "none" }.into(),
            username: hook.basic_auth.as_ref().map(|(user, _)| user.clone()).unwrap_or_default(),
            log_response_body: hook.log_response_body,
            active: hook.active,
            events: CampaignEventKind::ALL.iter().map(|e| (e.as_str(), hook.events.contains(e))).collect(),
            password_set: hook.basic_auth.as_ref().is_some_and(|(_, p)| !p.is_empty()),
            secret_set: hook.secret.is_some(),
        }
    }

    /// Reads a posted form (its fields repeat: one `events` per ticked box). Returns what to
    /// show again if it fails and the API input.
    fn read(fields: &[(String, String)], stored: Option<&CampaignWebhook>) -> (Self, WebhookInput) {
        let one = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.trim().to_owned());
        let ticked = |name: &str| fields.iter().any(|(k, _)| k == name);
        let events: Vec<String> = fields.iter().filter(|(k, _)| k == "events").map(|(_, v)| v.clone()).collect();
        let auth = one("auth").unwrap_or_else(|| "none".into());
        let basic = auth == "basic";
        let password = one("password").filter(|p| !p.is_empty());
        let secret = one("secret").filter(|s| !s.is_empty());
        let input = WebhookInput {
            url: Some(one("url").unwrap_or_default()),
            content_type: one("content_type"),
            method: one("method"),
            auth: Some(auth.clone()),
            username: one("username").filter(|_| basic),
            password: password.clone().filter(|_| basic).map(Some),
            secret: if ticked("remove_secret") { Some(None) } else { secret.map(Some) },
            log_response_body: Some(ticked("log_response_body")),
            active: Some(ticked("active")),
            events: Some(events.clone()),
            payload: None,
        };
        let shown = Self {
            url: one("url").unwrap_or_default(),
            content_type: one("content_type").unwrap_or_default(),
            method: one("method").unwrap_or_default(),
            username: one("username").unwrap_or_default(),
            log_response_body: ticked("log_response_body"),
            active: ticked("active"),
            events: CampaignEventKind::ALL
                .iter()
                .map(|e| (e.as_str(), events.iter().any(|v| v == e.as_str())))
                .collect(),
            password_set: stored.is_some_and(|h| h.basic_auth.is_some()),
            secret_set: stored.is_some_and(|h| h.secret.is_some()),
            auth,
        };
        (shown, input)
    }
}

/// The fields an API error may name; `events[2]` goes to `events`.
const FIELDS: [&str; 8] = ["url", "content_type", "method", "auth", "username", "password", "secret", "events"];

fn errors(mut error: crate::web::error::ApiError) -> FieldErrors {
    if error.field.as_deref().is_some_and(|f| f.starts_with("events[")) {
        error.field = Some("events".into());
    }
    FieldErrors::from_api(error, &FIELDS)
}

pub async fn create(
    State(state): State<CampaignsState>,
    Path(id): Path<String>,
    Form(session, fields): Form<Vec<(String, String)>>,
) -> UiResult {
    let campaign: CampaignId = parse_id(&id)?;
    let (shown, input) = HookForm::read(&fields, None);
    match service::create(&state, session.workspace_id, campaign, input).await {
        Ok(_) => Ok(see_other(&format!("/campaigns/{campaign}"), "webhook_saved")),
        Err(e) if e.status == StatusCode::NOT_FOUND => Err(e.into()),
        Err(e) => {
            let mut page = CampaignPage::load(&state, &session, campaign, None).await?;
            page.hook_form = shown;
            page.hook_errors = errors(e);
            Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)).into_response())
        }
    }
}

#[derive(Template)]
#[template(path = "campaign_webhook.html")]
struct EditPage {
    l: Layout,
    campaign_id: String,
    id: String,
    hook_form: HookForm,
    hook_errors: FieldErrors,
}

fn ids(campaign: &str, hook: &str) -> Result<(CampaignId, CampaignWebhookId), UiError> {
    Ok((parse_id(campaign)?, parse_id(hook)?))
}

pub async fn edit(
    State(state): State<CampaignsState>,
    session: Session,
    Path((id, hook)): Path<(String, String)>,
) -> UiResult {
    let (campaign, hook) = ids(&id, &hook)?;
    let stored = state.store.get_campaign_webhook(session.workspace_id, campaign, hook).await?;
    let page = EditPage {
        l: Layout::new(&session, "/campaigns", "Edit webhook"),
        campaign_id: campaign.to_string(),
        id: hook.to_string(),
        hook_form: HookForm::of(&stored),
        hook_errors: FieldErrors::default(),
    };
    Ok(render(&page))
}

pub async fn update(
    State(state): State<CampaignsState>,
    Path((id, hook)): Path<(String, String)>,
    Form(session, fields): Form<Vec<(String, String)>>,
) -> UiResult {
    let (campaign, hook) = ids(&id, &hook)?;
    let stored = state.store.get_campaign_webhook(session.workspace_id, campaign, hook).await?;
    let (shown, input) = HookForm::read(&fields, Some(&stored));
    match service::update(&state, session.workspace_id, campaign, hook, input).await {
        Ok(_) => Ok(see_other(&format!("/campaigns/{campaign}"), "webhook_saved")),
        Err(e) if e.status == StatusCode::NOT_FOUND => Err(e.into()),
        Err(e) => {
            let page = EditPage {
                l: Layout::new(&session, "/campaigns", "Edit webhook"),
                campaign_id: campaign.to_string(),
                id: hook.to_string(),
                hook_form: shown,
                hook_errors: errors(e),
            };
            Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)).into_response())
        }
    }
}

pub async fn delete(
    State(state): State<CampaignsState>,
    Path((id, hook)): Path<(String, String)>,
    Form(session, Empty {}): Form<Empty>,
) -> UiResult {
    let (campaign, hook) = ids(&id, &hook)?;
    service::delete(&state, session.workspace_id, campaign, hook).await?;
    Ok(see_other(&format!("/campaigns/{campaign}"), "webhook_deleted"))
}
