//! Webhook drafts: calls a journey held for someone to send or skip (a step in `draft` mode).
//! `settle` is the one way to decide on them, used by the drafts API (`api`) and the campaign
//! page's drafts section (`pages`).

pub mod api;
pub(crate) mod pages;

use herald_domain::{DraftId, NewJob, Timestamp, WebhookDraft};
use herald_store::webhook::{DraftSelection, webhook_job};

use super::{Campaigns, CampaignsState};
use crate::web::error::ApiError;

/// Most drafts one bulk call settles; call again for the rest.
pub const BULK_LIMIT: u32 = 1000;

#[derive(Debug, Clone, Copy)]
pub enum Decision {
    Send,
    Skip,
}

/// The job that carries out a decision: the call, or the journey moved on.
fn decision_job(campaigns: &Campaigns, decision: Decision, draft: &WebhookDraft, now: Timestamp) -> NewJob {
    match (decision, campaigns.draft_step_index(draft)) {
        (Decision::Skip, Some(step)) => crate::campaigns::skip_job(draft.journey_id, step, now),
        // A call that no longer reads is sent and fails in the delivery log, where it shows.
        (Decision::Send, _) | (Decision::Skip, None) => webhook_job(draft.call.clone(), now),
    }
}

pub async fn settle(
    state: &CampaignsState,
    workspace: herald_domain::WorkspaceId,
    selection: DraftSelection,
    decision: Decision,
    limit: u32,
) -> Result<Vec<DraftId>, ApiError> {
    let now = state.clock.now();
    let campaigns = &*state.campaigns;
    let job = move |draft: &WebhookDraft| decision_job(campaigns, decision, draft, now);
    let settled = state.store.settle_drafts(workspace, &selection, limit, &job, now).await?;
    Ok(settled.into_iter().map(|d| d.id).collect())
}
