//! A campaign's pending drafts (webhook calls held at `draft` steps): the section of the
//! campaign page, and Send / Skip for one draft or all of them, through the same use case
//! (`drafts::settle`) as `POST /api/v1/webhook-drafts/…`.

use axum::extract::{Path, State};
use herald_domain::{CampaignId, DraftId, PageRequest, WorkspaceId};
use herald_store::webhook::DraftSelection;
use serde::Deserialize;

use super::{BULK_LIMIT, Decision, settle as settle_drafts};
use crate::campaigns::CampaignsState;
use crate::web::error::ApiError;
use crate::web::{Form, UiError, UiResult, list_url, non_blank, parse_id, see_other, when};

pub struct DraftRow {
    pub id: String,
    pub created: String,
    pub contact_id: String,
    pub step: String,
    pub request_line: String,
}

/// One page (50) of the campaign's drafts, oldest first, and the next page's link.
pub async fn section(
    state: &CampaignsState,
    workspace: WorkspaceId,
    campaign: CampaignId,
    after: Option<DraftId>,
) -> Result<(Vec<DraftRow>, Option<String>), UiError> {
    let selection = DraftSelection { campaign: Some(campaign), ..DraftSelection::default() };
    let page = state.store.list_drafts(workspace, &selection, PageRequest { after, limit: 50 }).await?;
    let rows = page
        .items
        .iter()
        .map(|d| DraftRow {
            id: d.id.to_string(),
            created: when(d.created_at),
            contact_id: d.contact_id.to_string(),
            step: d.step.clone(),
            request_line: format!(
                "{} {}",
                d.request["method"].as_str().unwrap_or("POST"),
                d.request["url"].as_str().unwrap_or_default()
            ),
        })
        .collect();
    let next = page.next_cursor.map(|c| {
        format!("{}#drafts", list_url(&format!("/campaigns/{campaign}"), &[("drafts_cursor", Some(c.as_str()))], None))
    });
    Ok((rows, next))
}

#[derive(Debug, Default, Deserialize)]
pub struct DraftForm {
    #[serde(default)]
    decision: String,
    /// One draft; absent: every draft of the campaign.
    draft: Option<String>,
}

/// Sends or skips one draft, or all of the campaign's (up to 1000 at a time).
pub async fn settle(
    State(state): State<CampaignsState>,
    Path(id): Path<String>,
    Form(session, form): Form<DraftForm>,
) -> UiResult {
    let campaign: CampaignId = parse_id(&id)?;
    let (decision, notice) = match form.decision.as_str() {
        "send" => (Decision::Send, "drafts_sent"),
        "skip" => (Decision::Skip, "drafts_skipped"),
        _ => return Err(UiError(ApiError::invalid("decision", "must be send or skip"))),
    };
    let (selection, limit) = match non_blank(&form.draft) {
        Some(raw) => {
            let draft: DraftId = raw.parse().map_err(|e| UiError(ApiError::invalid("draft", e)))?;
            (DraftSelection { ids: vec![draft], campaign: Some(campaign), step: None }, 1)
        }
        None => (DraftSelection { campaign: Some(campaign), ..DraftSelection::default() }, BULK_LIMIT),
    };
    // The campaign must be this workspace's: a page for it would 404 otherwise.
    state.store.get_campaign(session.workspace_id, campaign).await?;
    let settled = settle_drafts(&state, session.workspace_id, selection, decision, limit).await?;
    let notice = if settled.is_empty() { "no_drafts" } else { notice };
    Ok(see_other(&format!("/campaigns/{campaign}"), notice))
}
