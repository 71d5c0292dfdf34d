//! A campaign's event webhooks: the section of the campaign page (list, new-webhook form),
//! the edit page and delete, through the same use cases (`hooks/mod.rs`) and
//! validation as `/api/v1/campaigns/{id}/webhooks`. The Basic password and the signing secret
//! are write-only: the forms say whether one is set, never what it is, and a blank field keeps
//! the stored value. A custom payload is kept as it is (set it through the API).

use askama::Template;
use axum::Router;
use axum::extract::{FromRef, Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use herald_domain::{CampaignId, CampaignWebhookId};

use super::form::HookForm;
use super::{self as service};
use crate::campaigns::CampaignsState;
use crate::campaigns::pages::CampaignPage;
use crate::web::{Empty, FieldErrors, Form, Layout, Session, UiError, UiResult, WebState, parse_id, render, see_other};

/// The webhook routes of a campaign's page: create, edit, update, delete.
pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    CampaignsState: FromRef<S>,
    WebState: FromRef<S>,
{
    Router::new()
        .route("/campaigns/{id}/webhooks", post(create))
        .route("/campaigns/{id}/webhooks/{hook}", get(edit).post(update))
        .route("/campaigns/{id}/webhooks/{hook}/delete", post(delete))
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
