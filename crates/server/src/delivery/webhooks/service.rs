//! Outbound webhooks' use cases, shared by their JSON handlers, the deliveries pages, the
//! settings page and the contact page (through the interface `app::wiring` implements):
//! filtering the call log (a saved action's calls included), sending a finished call again,
//! rotating the signing key, and running a saved action for one contact.

use axum::http::StatusCode;
use herald_campaign::steps_using_action;
use herald_domain::{
    ActionId, ContactId, PageRequest, SavedAction, Timestamp, WebhookDeliveryId, WebhookStatus, WorkspaceId,
};
use herald_store::StoreError;
use herald_store::webhook::{ActionCalls, DeliveryFilter};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::actions::RunError;
use super::{KEY_OVERLAP, WebhooksState};
use crate::web::error::ApiError;

/// The filters of the call log, as the API's query and the deliveries page give them.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryParams {
    pub limit: Option<u32>,
    pub cursor: Option<String>,
    /// Only this contact's calls (`ct_…`).
    pub contact: Option<String>,
    /// Only this campaign's calls (`cmp_…`).
    pub campaign: Option<String>,
    /// Only this journey's calls (`jrn_…`).
    pub journey: Option<String>,
    /// Only this campaign event webhook's calls (`cwh_…`).
    pub campaign_webhook: Option<String>,
    /// `pending`, `succeeded`, `failed` or `exhausted`.
    #[param(pattern = "^(pending|succeeded|failed|exhausted)$")]
    pub status: Option<String>,
    /// Only calls of this campaign step (its id; needs `campaign`).
    pub step: Option<String>,
    /// Only calls of this saved action (`act_…`): its runs for one contact and the calls of
    /// the campaign steps that use it (in their campaign's current version).
    pub action: Option<String>,
}

fn parse<T: std::str::FromStr>(raw: Option<&str>, field: &str) -> Result<Option<T>, ApiError>
where
    T::Err: std::fmt::Display,
{
    raw.map(|r| r.parse().map_err(|e| ApiError::invalid(field, e))).transpose()
}

/// Reads the filters of a delivery list (paging aside).
pub async fn delivery_filter(
    state: &WebhooksState,
    workspace: WorkspaceId,
    params: DeliveryParams,
) -> Result<DeliveryFilter, ApiError> {
    let campaign = parse(params.campaign.as_deref(), "campaign")?;
    if params.step.is_some() && campaign.is_none() {
        return Err(ApiError::invalid("step", "needs campaign: step ids are per campaign"));
    }
    let action = match parse(params.action.as_deref(), "action")? {
        Some(id) => Some(calls_of(state, workspace, id).await?),
        None => None,
    };
    Ok(DeliveryFilter {
        contact: parse(params.contact.as_deref(), "contact")?,
        campaign,
        journey: parse(params.journey.as_deref(), "journey")?,
        campaign_webhook: parse(params.campaign_webhook.as_deref(), "campaign_webhook")?,
        status: parse(params.status.as_deref(), "status")?,
        step: params.step,
        action,
    })
}

/// The calls of saved action `id` (deleted ones too): its runs, and those of the campaign
/// steps that use it in their campaign's current version. Reads every campaign of the
/// workspace, a page at a time: a workspace has tens of campaigns, not thousands.
async fn calls_of(state: &WebhooksState, workspace: WorkspaceId, id: ActionId) -> Result<ActionCalls, ApiError> {
    if state.store.actions_by_ids(workspace, &[id]).await?.is_empty() {
        return Err(ApiError::invalid("action", "is not a saved action of this workspace"));
    }
    let name = id.to_string();
    let mut steps = Vec::new();
    let mut after = None;
    loop {
        let page = state.store.list_campaigns(workspace, PageRequest { after, limit: 100 }).await?;
        for campaign in &page.items {
            // A stored document always reads (it was validated when saved); one that no
            // longer does names no action.
            if let Ok(document) = herald_campaign::document_from_value(campaign.document.clone()) {
                steps.extend(steps_using_action(&document, &name).into_iter().map(|step| (campaign.id, step)));
            }
        }
        match (page.next_cursor, page.items.last()) {
            (Some(_), Some(last)) => after = Some(last.id),
            _ => break,
        }
    }
    Ok(ActionCalls { action: id, steps })
}

/// Sends a finished call again (same request, same idempotency key, signed afresh); `409`
/// while it is still pending, and for a call whose request could not be rendered (nothing to
/// send).
pub async fn resend(
    state: &WebhooksState,
    workspace: WorkspaceId,
    id: WebhookDeliveryId,
) -> Result<Vec<WebhookDeliveryId>, ApiError> {
    let (delivery, _) = state.store.get_delivery(workspace, id).await?;
    if delivery.status == WebhookStatus::Pending {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "delivery_pending",
            "the call is still being delivered; resend it once it has finished",
        ));
    }
    let now = state.clock.now();
    let resent = state.store.resend_deliveries(workspace, &[id], None, now, now, 1, now).await?;
    // Finished but not resent: the store keeps no call to make for it, unless another resend
    // just made it pending.
    if resent.is_empty() && state.store.get_delivery(workspace, id).await?.0.status != WebhookStatus::Pending {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "delivery_not_rendered",
            "the call's request was never rendered (see last_error): there is nothing to send again",
        ));
    }
    Ok(resent)
}

/// A new signing key: the only time its secret is shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct RotatedKey {
    pub id: String,
    /// The secret receivers verify with, in the Standard Webhooks form (`whsec_` + base64).
    /// Standard Webhooks keys its HMAC with the decoded bytes; `X-Herald-Signature` with this
    /// whole string as UTF-8 bytes.
    pub secret: String,
    /// Until then the previous key signs too.
    #[schema(value_type = String, format = DateTime)]
    pub previous_retires_at: Timestamp,
}

/// Makes a new signing key; the previous ones keep signing for `overlap_secs` (default a day,
/// at most 30). The secret is returned once.
pub async fn rotate_key(
    state: &WebhooksState,
    workspace: WorkspaceId,
    overlap_secs: Option<u64>,
) -> Result<RotatedKey, ApiError> {
    let overlap = match overlap_secs {
        Some(secs) if secs > 30 * 86_400 => return Err(ApiError::invalid("overlap_secs", "must be at most 30 days")),
        Some(secs) => std::time::Duration::from_secs(secs),
        None => KEY_OVERLAP,
    };
    let key = state.webhooks.rotate(workspace, overlap).await?;
    tracing::info!(workspace = %workspace, key = %key.id, "webhook signing key rotated");
    Ok(RotatedKey {
        id: key.id.clone(),
        secret: key.to_standard_secret(),
        previous_retires_at: state.clock.now() + overlap,
    })
}

/// Saved action `raw` (its id as given) of the workspace, unless deleted.
pub async fn saved_action(state: &WebhooksState, workspace: WorkspaceId, raw: &str) -> Result<SavedAction, ApiError> {
    let id: ActionId = raw.parse().map_err(|e| ApiError::invalid("id", e))?;
    let found = state.store.actions_by_ids(workspace, &[id]).await?;
    found.into_iter().find(|a| a.deleted_at.is_none()).ok_or_else(|| StoreError::NotFound { entity: "action" }.into())
}

/// Runs saved action `action` (its id as given) for one contact, outside any campaign;
/// returns the call's idempotency key. `key` (the caller's `Idempotency-Key`) makes a
/// repeated run send nothing twice.
pub async fn run_action(
    state: &WebhooksState,
    workspace: WorkspaceId,
    action: &str,
    contact: ContactId,
    key: Option<&str>,
) -> Result<String, ApiError> {
    let action = saved_action(state, workspace, action).await?;
    let contact = state.store.get_contact(workspace, contact).await?;
    let unsubscribe_url = state.links.unsubscribe_url(workspace, contact.id).await?;
    state.webhooks.run_action(workspace, &action, &contact, &unsubscribe_url, key).await.map_err(|e| match e {
        RunError::Store(e) => e.into(),
        RunError::Render { field, reason } => {
            let mut error =
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "render_failed", format!("{field}: {reason}"));
            error.field = Some(field).filter(|f| !f.is_empty());
            error
        }
    })
}
