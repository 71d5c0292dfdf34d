//! A campaign's event webhooks as its page shows them: the list's rows and the webhook form,
//! shared by the campaign page (the section) and the webhook pages (create, edit).

use herald_domain::{CampaignEventKind, CampaignId, CampaignWebhook, WorkspaceId};

use super::WebhookInput;
use crate::campaigns::CampaignsState;
use crate::web::UiError;

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
    pub(super) fn of(hook: &CampaignWebhook) -> Self {
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
    pub(super) fn read(fields: &[(String, String)], stored: Option<&CampaignWebhook>) -> (Self, WebhookInput) {
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
